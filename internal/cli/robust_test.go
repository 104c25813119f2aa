package cli_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/geo"
	"github.com/pacswatch/pacswatch/internal/geo/geotest"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/sqlite"
)

// hasCommand reports whether the binary knows a subcommand.
func hasCommand(name string) bool {
	return exec.Command(binary, name, "--help").Run() == nil
}

// robustFixtures writes the malformed files of TestRobustInput into dir and returns their paths.
func robustFixtures(t *testing.T, dir string) map[string]string {
	t.Helper()
	p := func(name string) string { return filepath.Join(dir, name) }
	files := map[string][]byte{
		"garbage.bin":  randomBytes(1, 4096),
		"nul.txt":      []byte("127.0.0.1\n\x00\x01\x02\n"),
		"escape.txt":   []byte("# a terminal escape in a target\n\x1b[31mFAKE^LEAK\x1b[0m\n"),
		"badline.txt":  []byte("# fine\n127.0.0.1\n10.0.0.300\n"),
		"longline.txt": bytes.Repeat([]byte("1"), 70000),
		"empty.txt":    nil,
		"random.db":    randomBytes(2, 4096),
		"header.db":    []byte("SQLite format 3\x00"),
		"empty.mmdb":   nil,
		"random.mmdb":  randomBytes(3, 4096),
		// The metadata marker, then a map claiming more entries than there are bytes.
		"metadata.mmdb": append(randomBytes(4, 64), "\xab\xcd\xefMaxMind.com\xff\xff\xff\xff\xff"...),
	}
	out := map[string]string{}
	for name, b := range files {
		if err := os.WriteFile(p(name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		out[name] = p(name)
	}
	if err := os.Mkdir(p("dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	out["dir"] = p("dir")

	// A pacswatch store with one scan, cut short to make a truncated one.
	ctx := context.Background()
	st, err := sqlite.Open(ctx, p("store.db"))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := st.CreateScan(ctx, store.Scan{ID: "s1", Targets: []string{"127.0.0.1"}, Total: 1})
	if err == nil {
		err = st.PutResults(ctx, sc.ID, []probe.Result{{IP: netip.MustParseAddr("127.0.0.1"), Port: 104, Time: time.Now(), Status: probe.StatusClosed}}, store.Progress{Done: 1})
	}
	if err == nil {
		err = st.FinishScan(ctx, sc.ID, time.Now())
	}
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	out["store.db"] = p("store.db")
	for name, n := range map[string]int{"truncated.db": 2048, "truncated100.db": 100} {
		b, err := os.ReadFile(p("store.db"))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) <= n {
			t.Fatalf("store of %d bytes: too small to truncate to %d", len(b), n)
		}
		if err := os.WriteFile(p(name), b[:n], 0o644); err != nil {
			t.Fatal(err)
		}
		out[name] = p(name)
	}
	// Another application's SQLite database.
	db, err := sql.Open("sqlite", p("other.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE patients (name TEXT)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	out["other.db"] = p("other.db")

	// A city database, and the same cut in half.
	err = geotest.WriteCity(p("city.mmdb"), "GeoLite2-City", geo.LayoutMaxMind, []geotest.Place{
		{Prefix: netip.MustParsePrefix("127.0.0.0/8"), Location: geo.Location{Country: "IN", CountryName: "India", Region: "Maharashtra"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p("city.mmdb"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p("half.mmdb"), b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	out["city.mmdb"], out["half.mmdb"] = p("city.mmdb"), p("half.mmdb")
	return out
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestRobustInput: malformed targets, ports, AE titles, target and exclusion lists, AE
// dictionaries, stores and MaxMind DB files (cases TestBadInput does not cover), each one line on
// stderr that names the problem, with what came from a file escaped, and exit 2; a bad input
// found before any store is opened leaves none behind. Rows of commands this binary does not
// have yet are skipped.
func TestRobustInput(t *testing.T) {
	attr := isolation(t)
	if attr == nil {
		t.Log("no network namespace available: the rows run in the test's own (each is malformed by construction)")
	}
	f := robustFixtures(t, t.TempDir())
	long := strings.Repeat("a", 300) + ".example"
	commands := map[string]bool{}
	for _, tc := range []struct {
		name string
		args []string
		want string // in the error line
	}{
		// Targets.
		{"empty target", []string{"scan", ""}, `bad target "": empty`},
		{"blank target", []string{"scan", " "}, `bad target " "`},
		{"prefix without bits", []string{"scan", "127.0.0.1/"}, `"127.0.0.1/"`},
		{"negative prefix", []string{"scan", "127.0.0.1/-1"}, `"127.0.0.1/-1"`},
		{"two prefixes", []string{"scan", "1.2.3.4/24/8"}, `"1.2.3.4/24/8"`},
		{"open range", []string{"scan", "1.2.3.4-"}, `"1.2.3.4-"`},
		{"range across families", []string{"scan", "10.0.0.1-::5"}, "mixes IPv4 and IPv6"},
		{"IPv6 in brackets without port", []string{"scan", "[::1]"}, `"[::1]"`},
		{"empty port after IPv6", []string{"scan", "[::1]:"}, `"[::1]:"`},
		{"empty port", []string{"scan", "127.0.0.1:"}, `"127.0.0.1:"`},
		{"port zero in target", []string{"scan", "127.0.0.1:0"}, "port 0 out of range"},
		{"port too large in target", []string{"scan", "127.0.0.1:65536"}, "port 65536 out of range"},
		{"two ports in target", []string{"scan", "127.0.0.1:104:104"}, `"127.0.0.1:104:104"`},
		{"zone on IPv4", []string{"scan", "10.0.0.1%eth0"}, `"10.0.0.1%eth0"`},
		{"full-width digit", []string{"scan", "127.0.0.１"}, `"127.0.0.１"`},
		{"control character", []string{"scan", "127.0.0.1\x01"}, `"127.0.0.1\x01"`},
		{"terminal escape", []string{"scan", "\x1b[2J127.0.0.1"}, `"\x1b[2J127.0.0.1"`},
		{"long hostname", []string{"scan", long}, "bad target"},
		{"empty hostname label", []string{"scan", "a..b"}, `"a..b"`},
		{"space in hostname", []string{"scan", "exa mple.org"}, `"exa mple.org"`},
		{"huge number", []string{"scan", "999999999999999999999"}, `"999999999999999999999"`},
		{"IPv6 space too large", []string{"scan", "::/0"}, "too large"},
		// Ports.
		{"empty port list", []string{"scan", "-p", "", "127.0.0.1"}, "empty port list"},
		{"comma only", []string{"scan", "-p", ",", "127.0.0.1"}, `","`},
		{"open port range", []string{"scan", "-p", "104-", "127.0.0.1"}, `"104-"`},
		{"reversed port range", []string{"scan", "-p", "200-100", "127.0.0.1"}, "ends before it starts"},
		{"port range past 65535", []string{"scan", "-p", "1-65536", "127.0.0.1"}, "65536"},
		{"empty port in list", []string{"scan", "-p", "104,,11112", "127.0.0.1"}, `"104,,11112"`},
		{"hex port", []string{"scan", "-p", "0x68", "127.0.0.1"}, `"0x68"`},
		{"word port", []string{"scan", "-p", "dicom", "127.0.0.1"}, `"dicom"`},
		{"huge port", []string{"scan", "-p", "99999999999999999999", "127.0.0.1"}, "out of range"},
		{"bad web port", []string{"scan", "--web", "--web-ports", "80,x", "127.0.0.1"}, "--web-ports"},
		{"web ports without web", []string{"scan", "--web-ports", "80", "127.0.0.1"}, "--web"},
		// AE titles (PS3.5 §6.2: AE, 16 characters of the default repertoire).
		{"empty calling AE", []string{"scan", "--calling-ae", "", "127.0.0.1"}, "--calling-ae: AE title is empty"},
		{"spaces as calling AE", []string{"scan", "--calling-ae", "    ", "127.0.0.1"}, "--calling-ae: AE title is empty"},
		{"backslash in calling AE", []string{"scan", "--calling-ae", `A\B`, "127.0.0.1"}, "repertoire"},
		{"tab in calling AE", []string{"scan", "--calling-ae", "A\tB", "127.0.0.1"}, `"A\tB"`},
		{"emoji in calling AE", []string{"scan", "--calling-ae", "PACS😀", "127.0.0.1"}, "repertoire"},
		{"long called AE", []string{"scan", "--called-ae", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "127.0.0.1"}, "longer than 16"},
		{"16 bytes of 8 non-ASCII letters", []string{"scan", "--called-ae", "ÄÄÄÄÄÄÄÄ", "127.0.0.1"}, "repertoire"},
		{"escape in called AE", []string{"scan", "--called-ae", "\x1b[31mX", "127.0.0.1"}, `"\x1b[31mX"`},
		// Target, exclusion and AE dictionary files.
		{"binary target list", []string{"scan", "-iL", f["garbage.bin"]}, f["garbage.bin"] + ":1: bad target"},
		{"target list with NUL", []string{"scan", "-iL", f["nul.txt"]}, `nul.txt:2: bad target "\x00\x01\x02"`},
		{"target list with escape", []string{"scan", "-iL", f["escape.txt"]}, `escape.txt:2: bad target "\x1b[31mFAKE^LEAK\x1b[0m"`},
		{"target list with a bad line", []string{"scan", "-iL", f["badline.txt"]}, "badline.txt:3"},
		{"target list with a huge line", []string{"scan", "-iL", f["longline.txt"]}, "longer than 65536 bytes"},
		{"empty target list", []string{"scan", "-iL", f["empty.txt"]}, "no targets"},
		{"directory as target list", []string{"scan", "-iL", f["dir"]}, "is a directory"},
		{"bad exclusion", []string{"scan", "--exclude", "300.1.1.1", "127.0.0.1"}, `bad exclusion "300.1.1.1"`},
		{"bad exclusion file", []string{"scan", "--exclude-file", f["badline.txt"], "127.0.0.1"}, "badline.txt:3"},
		{"directory as exclusion file", []string{"scan", "--exclude-file", f["dir"], "127.0.0.1"}, "is a directory"},
		{"binary AE dictionary", []string{"scan", "--ae-dict", f["garbage.bin"], "127.0.0.1"}, "--ae-dict: " + f["garbage.bin"]},
		{"empty AE dictionary", []string{"scan", "--ae-dict", f["empty.txt"], "127.0.0.1"}, "no AE titles"},
		{"directory as AE dictionary", []string{"scan", "--ae-dict", f["dir"], "127.0.0.1"}, "is a directory"},
		// Stores.
		{"directory as store", []string{"scan", "--db", f["dir"], "127.0.0.1", "-p", "1"}, "is a directory"},
		{"random bytes as store", []string{"scan", "--db", f["random.db"], "127.0.0.1", "-p", "1"}, "not a pacswatch database"},
		{"SQLite header only", []string{"scan", "--db", f["header.db"], "127.0.0.1", "-p", "1"}, "not a pacswatch database"},
		{"truncated store", []string{"scan", "--db", f["truncated.db"], "127.0.0.1", "-p", "1"}, "malformed"},
		{"store cut at 100 bytes", []string{"scan", "--db", f["truncated100.db"], "127.0.0.1", "-p", "1"}, "malformed"},
		{"another application's database", []string{"scan", "--db", f["other.db"], "127.0.0.1", "-p", "1"}, "another application's tables"},
		{"store in a missing directory", []string{"scan", "--db", "/nonexistent/dir/p.db", "127.0.0.1", "-p", "1"}, "/nonexistent/dir"},
		{"resume a truncated store", []string{"scan", "--resume", "--db", f["truncated.db"]}, "malformed"},
		{"resume random bytes", []string{"scan", "--resume", "--db", f["random.db"]}, "not a pacswatch database"},
		{"resume a directory", []string{"scan", "--resume", "--db", f["dir"]}, "is a directory"},
		{"resume a finished scan", []string{"scan", "--resume", "--db", f["store.db"]}, "no unfinished scan"},
		{"resume with targets", []string{"scan", "--resume", "--db", f["store.db"], "127.0.0.1"}, "takes no targets"},
		// Reports and diffs over bad stores and MaxMind DB files.
		{"report: random bytes as store", []string{"report", "--db", f["random.db"]}, "not a pacswatch database"},
		{"report: truncated store", []string{"report", "--db", f["truncated.db"]}, "malformed"},
		{"report: directory as store", []string{"report", "--db", f["dir"]}, "is a directory"},
		{"report: another application's database", []string{"report", "--db", f["other.db"]}, "another application's tables"},
		{"report: random bytes as geo", []string{"report", "--db", f["store.db"], "--geo", f["random.mmdb"]}, "--geo: geo: not a MaxMind DB file"},
		{"report: empty geo", []string{"report", "--db", f["store.db"], "--geo", f["empty.mmdb"]}, "--geo"},
		{"report: truncated geo", []string{"report", "--db", f["store.db"], "--geo", f["half.mmdb"]}, "--geo"},
		{"report: corrupt geo metadata", []string{"report", "--db", f["store.db"], "--geo", f["metadata.mmdb"]}, "--geo"},
		{"report: directory as geo", []string{"report", "--db", f["store.db"], "--geo", f["dir"]}, "--geo"},
		{"report: random bytes as asn", []string{"report", "--db", f["store.db"], "--asn", f["random.mmdb"]}, "--asn"},
		{"report: truncated asn", []string{"report", "--db", f["store.db"], "--asn", f["half.mmdb"]}, "--asn"},
		{"diff: random bytes as store", []string{"diff", "--db", f["random.db"], "a", "b"}, "not a pacswatch database"},
		{"diff: truncated store", []string{"diff", "--db", f["truncated.db"], "a", "b"}, "malformed"},
		{"diff: random bytes as geo", []string{"diff", "--db", f["store.db"], "--geo", f["random.mmdb"], "s1", "s1"}, "--geo"},
		{"diff: truncated asn", []string{"diff", "--db", f["store.db"], "--asn", f["half.mmdb"], "s1", "s1"}, "--asn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			has, known := commands[tc.args[0]]
			if !known {
				has = hasCommand(tc.args[0])
				commands[tc.args[0]] = has
			}
			if !has {
				t.Skipf("this pacswatch has no %s command yet (%s --help fails)", tc.args[0], tc.args[0])
			}
			dir := t.TempDir()
			cmd := exec.Command(binary, tc.args...)
			cmd.Dir = dir
			cmd.SysProcAttr = attr
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			done := make(chan error, 1)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatalf("still running after 20 s: the input was taken")
			}
			code, got := cmd.ProcessState.ExitCode(), stderr.String()
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr %q", code, got)
			}
			line, rest, _ := strings.Cut(got, "\n")
			if rest != "" || !strings.HasPrefix(line, "pacswatch: ") || !strings.Contains(line, tc.want) {
				t.Errorf("stderr %q: want one line naming %q", got, tc.want)
			}
			if i := strings.IndexFunc(line, func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
				t.Errorf("stderr carries a raw control character at %d: %q", i, line)
			}
			if strings.Contains(got, "goroutine") || strings.Contains(got, "panic") {
				t.Errorf("stack trace on stderr: %s", got)
			}
			if ents, _ := os.ReadDir(dir); len(ents) > 0 {
				t.Errorf("bad input left %s behind", ents[0].Name())
			}
		})
	}
	// The files the rows named as stores are not modified.
	for _, name := range []string{"random.db", "header.db", "other.db"} {
		b, err := os.ReadFile(f[name])
		if err != nil {
			t.Fatal(err)
		}
		if name == "random.db" && !bytes.Equal(b, randomBytes(2, 4096)) || name == "header.db" && string(b) != "SQLite format 3\x00" {
			t.Errorf("%s was modified", name)
		}
	}
}

// TestServerBytesNotPrinted: a web server that sends bytes nobody asked for on a connection the
// HTTP client keeps idle makes Go's net/http print them through the standard logger ("Unsolicited
// response received on idle HTTP channel starting with ..."). pacswatch discards that logger: what
// a server sends never reaches stderr, whatever it holds.
func TestServerBytesNotPrinted(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.6:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(func() { l.Close() })
	var served sync.Map
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			served.Store(c, true)
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				// One answer, and what looks like a patient's name after it, unasked.
				c.Write(bytes.Repeat([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokFAKE^LEAK "), 3))
				io.Copy(io.Discard, c)
			})
		}
	})
	port := l.Addr().(*net.TCPAddr).Port
	stdout, stderr, code := pacswatch(t, "", "scan", "127.0.0.6", "-p", "1", "--web", "--web-ports", fmt.Sprint(port),
		"--timeout", "2s", "-o", "-", "-q", "--db", filepath.Join(t.TempDir(), "p.db"))
	if code > 1 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, fmt.Sprintf(`"port":%d`, port)) {
		t.Fatalf("no result for the web port: %s", stdout)
	}
	n := 0
	served.Range(func(any, any) bool { n++; return true })
	if n == 0 {
		t.Fatal("the web server saw no connection")
	}
	for _, out := range []string{stdout, stderr} {
		if strings.Contains(out, "FAKE") || strings.Contains(out, "Unsolicited") {
			t.Errorf("what the server sent got printed:\n%s", out)
		}
	}
}
