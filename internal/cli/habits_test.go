package cli_test

import (
	"bytes"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHabits (issue 18 item 6): -v means verbose, --version the version; mistyped commands and
// flags get the closest one named, in one line.
func TestHabits(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-v"}, 2, "the version is pacswatch --version"},
		{[]string{"--version"}, 0, "pacswatch version "},
		{[]string{"scna", "127.0.0.1"}, 2, `unknown command "scna"; did you mean "scan"?`},
		{[]string{"raport"}, 2, `did you mean "report"?`},
		{[]string{"scan", "--rat", "5", "127.0.0.1"}, 2, "unknown flag --rat; did you mean --rate?"},
		{[]string{"scan", "--exlude", "10.0.0.1", "127.0.0.1"}, 2, "did you mean --exclude?"},
		{[]string{"report", "--gro", "country"}, 2, "did you mean --group?"},
		{[]string{"xyzzy"}, 2, `unknown command "xyzzy" (pacswatch --help lists the commands)`},
		{[]string{"scan", "127.0.0.1", "--memory-budget", "10"}, 2, "--memory-budget: 10 MiB is below the least, 256 MiB"},
	} {
		stdout, stderr, code := pacswatch(t, "", tc.args...)
		out := stdout + stderr
		if code != tc.code || !strings.Contains(out, tc.want) || strings.Count(out, "\n") != 1 {
			t.Errorf("%v: exit %d, output %q; want exit %d and one line holding %q", tc.args, code, out, tc.code, tc.want)
		}
	}
}

// TestNothingToScan (issue 18 item 5): a scan whose every target is excluded says so, exit 2,
// and creates no store.
func TestNothingToScan(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "p.db")
	excl := filepath.Join(dir, "x.txt")
	os.WriteFile(excl, []byte("127.0.0.0/8\n"), 0o600)
	for _, args := range [][]string{
		{"scan", "127.0.0.5", "--exclude", "127.0.0.0/24"},
		{"scan", "127.0.0.5", "-p", "9", "--exclude-file", excl},
		{"scan", "198.51.100.0/24", "--exclude", "198.51.100.0/24"},
		{"scan", "127.0.0.5", "-p", "9", "--shard", "3/4", "--seed", "1"},
	} {
		_, stderr, code := pacswatch(t, "", append(args, "--db", db)...)
		if code != 2 || !strings.Contains(stderr, "nothing to scan") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, %q; want exit 2 and one line saying there is nothing to scan", args, code, stderr)
		}
		if _, err := os.Stat(db); err == nil {
			t.Fatalf("%v: a store was created", args)
		}
	}
}

// TestDBNotAStore (issue 18 item 4): --db naming a file that is not a pacswatch store (empty,
// text, another SQLite database, one without tables) is refused in one line and left as it was;
// a store is created only where no file is.
func TestDBNotAStore(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{"empty.db": nil, "notes.txt": []byte("my notes\n")}
	for name, b := range files {
		os.WriteFile(filepath.Join(dir, name), b, 0o644)
	}
	for name, setup := range map[string]string{"other.db": "CREATE TABLE patients (name TEXT)", "bare.db": "PRAGMA user_version = 0"} {
		db, err := sql.Open("sqlite", filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(setup); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	for _, name := range []string{"empty.db", "notes.txt", "other.db", "bare.db"} {
		path := filepath.Join(dir, name)
		before, _ := os.ReadFile(path)
		_, stderr, code := pacswatch(t, "", "scan", "127.0.0.1", "-p", "9", "--db", path, "-q")
		if code != 2 || !strings.Contains(stderr, "not a pacswatch database") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("--db %s: exit %d, %q; want exit 2 and one line", name, code, stderr)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
			t.Errorf("--db %s: the file changed", name)
		}
		for _, side := range []string{"-wal", "-shm", "-journal"} {
			if _, err := os.Stat(path + side); err == nil {
				t.Errorf("--db %s: left %s", name, side)
			}
		}
	}
}

// TestWebHostPort (issue 18 item 3): with --web, a host:port target's host is probed on the web
// ports too (it was silently skipped).
func TestWebHostPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) })}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	web := l.Addr().(*net.TCPAddr).Port
	stdout, stderr, code := pacswatch(t, "", "scan", "127.0.0.1:9", "--web", "--web-ports", fmt.Sprint(web), "--all-targets",
		"--db", filepath.Join(t.TempDir(), "p.db"), "-o", "-", "-q", "--timeout", "2s")
	if code > 1 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, fmt.Sprintf(`"port":%d`, web)) || !strings.Contains(stdout, `"port":9,`) {
		t.Errorf("results %s: want the named port 9 and the web port %d", stdout, web)
	}
}
