package cli_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/dicomtest"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store/sqlite"
)

// fleet starts n in-process SCPs with a mix of personalities on addresses of 127.3.0.0/20, all on
// one port, and returns that port. The rest of the /20 is closed.
func fleet(t *testing.T, n int) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	first, err := net.Listen("tcp", "127.3.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := first.Addr().(*net.TCPAddr).Port
	addr := netip.MustParseAddr("127.3.0.1")
	for i := range n {
		l := first
		if i > 0 {
			for range 13 { // spread them out: every 13th address
				addr = addr.Next()
			}
			if l, err = net.Listen("tcp", netip.AddrPortFrom(addr, uint16(port)).String()); err != nil {
				t.Fatal(err)
			}
		}
		cfg := dicomtest.Config{Tree: dicomtest.NewTree(uint64(i), 1+i%5), ComputedCounts: i%2 == 0}
		switch i % 4 {
		case 1:
			cfg.CheckCalled, cfg.AETitle = true, "ORTHANC"
		case 2:
			cfg.AllowedCalling = []string{"TRUSTED"}
		case 3:
			cfg.Refused = dicomtest.Services{Find: true, Get: true, Move: true}
		}
		s := dicomtest.New(cfg)
		go s.Serve(ctx, l)
		t.Cleanup(func() { s.Close() })
	}
	return port
}

// stored reads a store's results as comparable lines (time left out), keyed by ip:port.
func stored(t *testing.T, db string) map[string]string {
	t.Helper()
	st, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sc, err := st.LatestScan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sc.Finished.IsZero() {
		t.Errorf("%s: scan %s not finished", db, sc.ID)
	}
	out := map[string]string{}
	err = st.Results(context.Background(), sc.ID, func(r probe.Result) error {
		key := netip.AddrPortFrom(r.IP, r.Port).String()
		if _, dup := out[key]; dup {
			return fmt.Errorf("%s stored twice", key)
		}
		r.Time, r.ScanID = time.Time{}, ""
		b, _ := json.Marshal(r)
		out[key] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestKillAndResume kills a scan of 4,096 loopback targets (300 test SCPs, the rest closed) with
// SIGKILL halfway, resumes it, and compares the results with an uninterrupted run's.
func TestKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("kill-and-resume scans 4,096 targets three times; skipped with -short")
	}
	port := fleet(t, 300)
	args := []string{"scan", "127.3.0.0/20", "-p", fmt.Sprint(port), "--seed", "7", "--timeout", "2s", "-q"}
	dir := t.TempDir()

	whole := filepath.Join(dir, "whole.db")
	if _, stderr, code := pacswatchIn(t, dir, "", append(args, "--db", whole, "--rate", "0")...); code > 1 {
		t.Fatalf("uninterrupted scan exited %d: %s", code, stderr)
	}
	want := stored(t, whole)
	if len(want) != 4096 {
		t.Fatalf("uninterrupted scan stored %d results, want 4096", len(want))
	}
	accepted, rejected := 0, 0
	for _, js := range want {
		accepted += strings.Count(js, `"association":"accepted"`)
		rejected += strings.Count(js, `"association":"rejected"`)
	}
	if accepted < 200 || rejected < 50 {
		t.Fatalf("uninterrupted scan saw %d accepted and %d rejected associations of 300 SCPs", accepted, rejected)
	}

	killed := filepath.Join(dir, "killed.db")
	jsonl := filepath.Join(dir, "killed.jsonl")
	cmd := exec.Command(binary, append(args, "--db", killed, "--rate", "1500", "-o", jsonl)...)
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for lines(jsonl) < 1500 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	before := lines(jsonl)
	if before < 1 || before >= 4096 {
		t.Fatalf("kill landed at %d of 4096 results: not halfway", before)
	}
	if _, stderr, code := pacswatchIn(t, dir, "", "scan", "--resume", "--db", killed, "-q"); code > 1 {
		t.Fatalf("resumed scan exited %d: %s", code, stderr)
	}
	got := stored(t, killed)
	if len(got) != len(want) {
		t.Errorf("resumed scan stored %d results, want %d", len(got), len(want))
	}
	diffs := 0
	for k, w := range want {
		if got[k] != w {
			if diffs++; diffs <= 5 {
				t.Errorf("%s:\n got %s\nwant %s", k, got[k], w)
			}
		}
	}
	if diffs > 0 {
		t.Errorf("%d results differ after kill at %d and resume", diffs, before)
	}
	// The JSON Lines of the resumed scan hold every result once.
	seen := map[string]bool{}
	f, err := os.Open(jsonl)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r probe.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("bad line in resumed JSON Lines: %v", err)
		}
		k := netip.AddrPortFrom(r.IP, r.Port).String()
		if seen[k] {
			t.Fatalf("%s twice in the JSON Lines", k)
		}
		seen[k] = true
	}
	if len(seen) != 4096 {
		t.Errorf("resumed JSON Lines hold %d results, want 4096", len(seen))
	}
	t.Logf("killed after %d of 4096 results; resumed to %d, identical to the uninterrupted run", before, len(got))
}

func lines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\n")
}
