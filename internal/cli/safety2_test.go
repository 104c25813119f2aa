package cli_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"

	"github.com/pacswatch/pacswatch/internal/dicom/dicomtest"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/sqlite"
)

// finishedStore writes a store with one finished scan holding rs.
func finishedStore(t *testing.T, db string, rs ...probe.Result) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sc, err := st.CreateScan(ctx, store.Scan{Name: "s", Targets: []string{"127.0.0.0/8"}, Total: uint64(len(rs))})
	if err == nil {
		err = st.PutResults(ctx, sc.ID, rs, store.Progress{Done: uint64(len(rs))})
	}
	if err == nil {
		err = st.FinishScan(ctx, sc.ID, time.Now())
	}
	if err != nil {
		t.Fatal(err)
	}
}

// exposed returns an accepted, queryable DICOM result for addr:104 with the given version name.
func exposed(addr, version string) probe.Result {
	return probe.Result{
		IP: netip.MustParseAddr(addr), Port: 104, Time: time.Now(), Status: probe.StatusOpen,
		DICOM: &probe.DICOM{Association: probe.AssociationAccepted, CalledAE: "ANY-SCP", CallingAE: "PACSWATCH",
			ImplementationVersion: version, Services: probe.Services{Echo: true, FindStudy: true}},
		Exposure: &probe.Exposure{Level: probe.LevelQuery, Studies: 3, StudiesExact: true, Instances: 9, InstancesSource: probe.InstancesSourceStudyAttr, Retrieve: probe.RetrieveRefused},
	}
}

// TestReadOnlyReports (issue 10 item 7): report, diff and scans work on a store that is read-only
// (file 0444 in a 0555 directory, run as the unprivileged user 65534 when root) and leave no
// -wal or -shm file.
func TestReadOnlyReports(t *testing.T) {
	dir, err := os.MkdirTemp("", "pacswatch-ro-report-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755); os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	db := filepath.Join(dir, "ro.db")
	finishedStore(t, db, exposed("127.0.0.5", "X_1"))
	finishedStore(t, db, exposed("127.0.0.5", "X_1"), exposed("127.0.0.6", "X_2"))
	bin := filepath.Join(dir, "pacswatch")
	if err := copyExecutable(bin, binary); err != nil {
		t.Fatal(err)
	}
	os.Chmod(db, 0o444)
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	before := fileSums(t, dir)
	for _, args := range [][]string{
		{"report", "--db", db, "--format", "md"},
		{"report", "--db", db, "--format", "json"},
		{"diff", "1", "2", "--db", db},
		{"scans", "--db", db},
	} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		if os.Geteuid() == 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Errorf("%v on a read-only store: %v: %s", args, err, stderr.String())
			continue
		}
		if !strings.Contains(stdout.String(), "127.0.0.6") && !strings.Contains(stdout.String(), "2") {
			t.Errorf("%v: output %q shows nothing of the store", args, stdout.String())
		}
	}
	if after := fileSums(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("the read-only directory changed:\nbefore %v\nafter  %v", fileNames(before), fileNames(after))
	}
}

func fileNames(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestMarkdownServerLink (issue 10 item 14): a version name such as https://evil.example/login,
// stored from a scanned server, is text in the Markdown report: a GFM renderer makes no link.
func TestMarkdownServerLink(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "p.db")
	finishedStore(t, db, exposed("127.0.0.5", "https://evil.example/login"), exposed("127.0.0.6", "[x](https://evil.example)"))
	stdout, stderr, code := pacswatchIn(t, dir, "", "report", "--db", db, "--format", "md")
	if code != 0 {
		t.Fatalf("report: exit %d: %s", code, stderr)
	}
	var html bytes.Buffer
	if err := goldmark.New(goldmark.WithExtensions(extension.GFM)).Convert([]byte(stdout), &html); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html.String(), "<a ") || !strings.Contains(html.String(), "evil.example/login") {
		t.Errorf("rendered Markdown report links the server's string, or lost it:\n%s", html.String())
	}
}

// TestResumeWholeTotals (issue 10 item 10): the summary after --resume counts the whole scan, as
// an uninterrupted scan of the same fleet does. The fleet is a sim inside the test's namespace.
func TestResumeWholeTotals(t *testing.T) {
	ns := newNetns(t)
	dir := t.TempDir()
	sim, simErr := ns.start(t, dir, "sim", "--hosts", "60", "--seed", "5", "--cidr", "127.9.0.0/24", "-p", "11112", "--mix", "hostile=0,slow=0")
	t.Cleanup(func() { sim.Process.Kill(); sim.Wait() })
	for i := 0; !strings.Contains(simErr.String(), "ready"); i++ {
		if i == 500 {
			t.Fatalf("sim not ready: %s", simErr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	args := []string{"127.9.0.0/24", "-p", "11112", "--seed", "5", "--timeout", "2s"}
	_, whole, code := ns.run(t, dir, append([]string{"scan", "--db", "whole.db", "--rate", "0"}, args...)...)
	if code > 1 {
		t.Fatalf("uninterrupted scan: exit %d: %s", code, whole)
	}
	interrupt(t, ns, dir, filepath.Join(dir, "cut.db"), append(args, "--rate", "60")...)
	_, resumed, code := ns.run(t, dir, "scan", "--resume", "--db", "cut.db", "--rate", "0")
	if code > 1 {
		t.Fatalf("resume: exit %d: %s", code, resumed)
	}
	totals := regexp.MustCompile(`: [\d,]+ targets, .*\n`)
	w, r := totals.FindString(whole), totals.FindString(resumed)
	if w == "" || w != r || !strings.Contains(w, " open") || strings.Contains(w, " 0 open") {
		t.Errorf("summary after resume %q, uninterrupted %q: want the same whole-scan totals, some open", r, w)
	}
}

// TestRatePerConnection (issue 10 item 12): --rate counts every new connection, AE guesses
// included: a server that refuses every called AE sees at most rate+1 connections in any second.
func TestRatePerConnection(t *testing.T) {
	var mu sync.Mutex
	var times []time.Time
	srv := dicomtest.New(dicomtest.Config{CheckCalled: true, AETitle: "NOBODY_GUESSES"})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go srv.Serve(ctx, timedListener{l, func() { mu.Lock(); times = append(times, time.Now()); mu.Unlock() }})
	port := l.Addr().(*net.TCPAddr).Port
	_, stderr, code := pacswatch(t, "", "scan", fmt.Sprintf("127.0.0.1:%d", port), "--rate", "4", "--max-ae-tries", "8", "--db", filepath.Join(t.TempDir(), "p.db"), "-q")
	if code > 1 {
		t.Fatalf("scan: exit %d: %s", code, stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(times) < 8 {
		t.Fatalf("%d connections: the AE guesses did not happen", len(times))
	}
	for i := range times {
		n := 0
		for _, u := range times[i:] {
			if u.Sub(times[i]) < time.Second {
				n++
			}
		}
		if n > 5 {
			t.Fatalf("%d connections within one second from connection %d of %d at --rate 4", n, i, len(times))
		}
	}
}

type timedListener struct {
	net.Listener
	count func()
}

func (c timedListener) Accept() (net.Conn, error) {
	conn, err := c.Listener.Accept()
	if err == nil {
		c.count()
	}
	return conn, err
}

// TestDescriptorBudget (issue 10 item 13): with a descriptor limit far below --concurrency, a scan
// of 2,048 refused targets stores no error result, with either connect stage: our own limits are
// never a target's result.
func TestDescriptorBudget(t *testing.T) {
	ns := newNetns(t)
	for _, syn := range []string{"auto", "off"} {
		dir := t.TempDir()
		cmd := ns.command("sh", "-c", `ulimit -n 96 && exec "$0" "$@"`, binary, "scan", "127.10.0.0/21", "-p", "9",
			"--concurrency", "2000", "--rate", "0", "--db", "p.db", "-o", "-", "-q", "--syn", syn)
		cmd.Dir = dir
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		if code := cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("--syn %s: scan under ulimit -n 96: exit %d: %s", syn, code, stderr.String())
		}
		lines := strings.Count(stdout.String(), "\n")
		errs := strings.Count(stdout.String(), `"status":"error"`)
		if errs > 0 || strings.Contains(stdout.String(), `"error":"error"`) {
			t.Errorf("--syn %s: %d of %d results are errors under a low descriptor limit", syn, errs, lines)
		}
		_, sum := scanState(t, filepath.Join(dir, "p.db"))
		if sum.Errors != 0 {
			t.Errorf("--syn %s: store: %d error results", syn, sum.Errors)
		}
	}
}

// TestVerboseLogFiltered (issue 10 item 14): a server-chosen 20 kB transfer syntax reaches
// neither the -v nor the -vv log of the binary, in text or JSON; what shows is its length.
func TestVerboseLogFiltered(t *testing.T) {
	huge := "1.2." + strings.Repeat("9", 20000)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	reply := (&ul.AAssociateAC{
		ProtocolVersion: 1, CalledAE: "ANY-SCP", CallingAE: "PACSWATCH", ApplicationContext: ul.ApplicationContext,
		PresentationContexts: []ul.PresentationContextAC{{ID: 1, Result: ul.PCAcceptance, TransferSyntax: huge}},
		UserInfo:             ul.UserInfo{MaxLength: 16384, ImplementationClassUID: "1.2.3.4", ImplementationVersionName: "SCRIPTED"},
	}).Append(nil)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := ul.ReadPDU(c, 1<<20); err == nil {
					c.Write(reply)
				}
			})
		}
	})
	for _, args := range [][]string{{"-v"}, {"-vv"}, {"-vv", "--log-format", "json"}} {
		_, stderr, code := pacswatch(t, "", append([]string{"scan", ln.Addr().String(), "--tls", "off", "--timeout", "2s",
			"--db", filepath.Join(t.TempDir(), "p.db")}, args...)...)
		if code > 1 {
			t.Fatalf("%v: exit %d: %.500s", args, code, stderr)
		}
		if strings.Contains(stderr, huge[:70]) {
			t.Errorf("%v: the log holds the server's transfer syntax", args)
		}
		for _, line := range strings.Split(stderr, "\n") {
			if len(line) > 2048 {
				t.Errorf("%v: a log line of %d bytes: %.200s…", args, len(line), line)
			}
		}
		if !strings.Contains(stderr, "invalid (") {
			t.Errorf("%v: the log does not say what was filtered:\n%.3000s", args, stderr)
		}
	}
}
