package cli_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// countingListener accepts on addr and counts connections, closing each at once.
func countingListener(t *testing.T, addr string) (port int, count *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	count = new(atomic.Int64)
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			count.Add(1)
			c.Close()
		}
	})
	return l.Addr().(*net.TCPAddr).Port, count
}

func TestExcludedNeverConnected(t *testing.T) {
	port, kept := countingListener(t, "127.0.0.2:0")
	_, excluded := countingListener(t, fmt.Sprintf("127.0.0.3:%d", port))
	_, excludedFile := countingListener(t, fmt.Sprintf("127.0.0.4:%d", port))
	xf := filepath.Join(t.TempDir(), "exclude.txt")
	if err := os.WriteFile(xf, []byte("# no\n127.0.0.4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := scanJSON(t, "127.0.0.2-127.0.0.4", "-p", fmt.Sprint(port), "--exclude", "127.0.0.3/32", "--exclude-file", xf, "--depth", "connect")
	if n := excluded.Load() + excludedFile.Load(); n != 0 {
		t.Errorf("excluded addresses got %d connections", n)
	}
	if kept.Load() != 1 {
		t.Errorf("127.0.0.2 got %d connections, want 1", kept.Load())
	}
	if len(got) != 1 {
		t.Errorf("got %d results, want 1: %v", len(got), got)
	}
}

// TestBadInput: every malformed input is one line on stderr, exit 2, and no store left behind.
func TestBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // in the error line
	}{
		{"unknown flag", []string{"scan", "--rat", "5", "127.0.0.1"}, "unknown flag"},
		{"unknown command", []string{"scna"}, "unknown command"},
		{"bad cidr", []string{"scan", "10.0.0.0/33"}, "10.0.0.0/33"},
		{"bad address", []string{"scan", "10.0.0.300"}, "10.0.0.300"},
		{"reversed range", []string{"scan", "10.0.0.9-10.0.0.1"}, "10.0.0.9-10.0.0.1"},
		{"bad port", []string{"scan", "-p", "104,70000", "127.0.0.1"}, "70000"},
		{"port zero", []string{"scan", "-p", "0", "127.0.0.1"}, "0"},
		{"bad shard", []string{"scan", "--shard", "3/2", "127.0.0.1"}, "3/2"},
		{"bad depth", []string{"scan", "--depth", "deep", "127.0.0.1"}, "depth"},
		{"long calling AE", []string{"scan", "--calling-ae", "ABCDEFGHIJKLMNOPQ", "127.0.0.1"}, "longer than 16"},
		{"non-ascii called AE", []string{"scan", "--called-ae", "ÄRCHIV", "127.0.0.1"}, "repertoire"},
		{"missing ae dict", []string{"scan", "--ae-dict", "/nonexistent/dict.txt", "127.0.0.1"}, "/nonexistent/dict.txt"},
		{"missing target list", []string{"scan", "-iL", "/nonexistent/targets.txt"}, "/nonexistent/targets.txt"},
		{"no targets", []string{"scan"}, "no targets"},
		{"bad rate", []string{"scan", "--rate", "-1", "127.0.0.1"}, "--rate"},
		{"bad timeout", []string{"scan", "--timeout", "soon", "127.0.0.1"}, "timeout"},
		{"bad log format", []string{"scan", "--log-format", "xml", "127.0.0.1"}, "xml"},
		{"resume nothing", []string{"scan", "--resume"}, "no store"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			_, stderr, code := pacswatchIn(t, dir, "", tc.args...)
			if ents, _ := os.ReadDir(dir); len(ents) > 0 {
				t.Errorf("bad input left %s behind", ents[0].Name())
			}
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr %q", code, stderr)
			}
			lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "pacswatch: ") || !strings.Contains(lines[0], tc.want) {
				t.Errorf("stderr %q: want one line naming %q", stderr, tc.want)
			}
			if strings.Contains(stderr, "goroutine") || strings.Contains(stderr, "panic") {
				t.Errorf("stack trace on stderr: %s", stderr)
			}
		})
	}
}

func TestCorruptStore(t *testing.T) {
	db := filepath.Join(t.TempDir(), "not-a-store.db")
	if err := os.WriteFile(db, []byte("this is not sqlite at all, just text that is long enough"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := pacswatch(t, "", "scan", "--db", db, "127.0.0.1", "-p", "1")
	if code != 2 || !strings.Contains(stderr, db) || strings.Count(stderr, "\n") != 1 {
		t.Errorf("exit %d stderr %q: want exit 2 and one line naming %s", code, stderr, db)
	}
	b, _ := os.ReadFile(db)
	if !strings.HasPrefix(string(b), "this is not sqlite") {
		t.Error("the foreign file was modified")
	}
}
