package cli_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
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
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/sqlite"
)

// fleet starts n in-process SCPs with a mix of personalities on addresses of 127.3.0.0/20, one
// every stride addresses from 127.3.0.1, all on one port, and returns that port. The other
// addresses are closed.
func fleet(t *testing.T, n, stride int) int {
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
			for range stride {
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
		if r.Exposure != nil { // a digest under each store's own secret: compared by the counts
			e := *r.Exposure
			e.StudySet = ""
			r.Exposure = &e
		}
		b, _ := json.Marshal(r)
		out[key] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// storeState returns the latest scan of a store that may be unfinished, and how many results it
// holds.
func storeState(t *testing.T, db string) (store.Scan, int) {
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
	n := 0
	if err := st.Done(context.Background(), sc.ID, func(netip.Addr, uint16) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return sc, n
}

// sameResults reports every difference between two stores' results, the first few in full.
func sameResults(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d results, want %d", what, len(got), len(want))
	}
	diffs := 0
	for k, w := range want {
		if got[k] != w {
			if diffs++; diffs <= 3 {
				t.Errorf("%s: %s:\n got %s\nwant %s", what, k, got[k], w)
			}
		}
	}
	if diffs > 0 {
		t.Errorf("%s: %d results differ from the uninterrupted run's", what, diffs)
	}
}

// jsonlOnce checks that a JSON Lines file holds want results, each once.
func jsonlOnce(t *testing.T, what, path string, want int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r probe.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: bad line in the JSON Lines: %v", what, err)
		}
		k := netip.AddrPortFrom(r.IP, r.Port).String()
		if seen[k] {
			t.Fatalf("%s: %s twice in the JSON Lines", what, k)
		}
		seen[k] = true
	}
	if len(seen) != want {
		t.Errorf("%s: the JSON Lines hold %d results, want %d", what, len(seen), want)
	}
}

// A killPoint says when to SIGKILL a scan, counted from the moment its JSON Lines file appears
// (the scan is then created in the store): once the file holds lines results, or after wait.
type killPoint struct {
	lines int
	wait  time.Duration
}

func (k killPoint) String() string {
	if k.lines > 0 {
		return fmt.Sprintf("after %d results written", k.lines)
	}
	return fmt.Sprintf("at %v", k.wait.Round(time.Millisecond))
}

// killScan runs pacswatch with args (which must write JSON Lines to jsonl) in dir, and kills it
// with SIGKILL at k. It reports whether the process ended on its own before.
func killScan(t *testing.T, dir, jsonl string, k killPoint, args ...string) (exited bool) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	var start time.Time
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return true
		default:
		}
		if start.IsZero() {
			if _, err := os.Stat(jsonl); err == nil {
				start = time.Now()
			}
		}
		if !start.IsZero() && (k.lines > 0 && lines(jsonl) >= k.lines || k.lines == 0 && time.Since(start) >= k.wait) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
	return false
}

// TestKillAndResume kills a scan of 1,024 loopback targets (100 test SCPs, the rest closed) with
// SIGKILL at 24 points spread over it, seeded: by results written, from the first batch to the
// last before the end, and by wall time, from the moment the scan exists to its end. The store
// commits a batch each second (or 500 results): the first kind lands just after a commit, the
// second anywhere, inside a transaction too. Each killed scan is resumed, and its results and
// JSON Lines compared with an uninterrupted run's.
func TestKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("kill-and-resume scans 1,024 targets 49 times; skipped with -short")
	}
	const (
		targets = 1024
		seed    = 20261124 // of the kill points
		rate    = "300"    // targets per second while a scan may be killed: about 3.5 s per scan
	)
	port := fleet(t, 100, 10)
	args := []string{"scan", "127.3.0.0/22", "-p", fmt.Sprint(port), "--seed", "7", "--timeout", "2s", "-q", "--all-targets"}
	dir := t.TempDir()

	whole := filepath.Join(dir, "whole.db")
	start := time.Now()
	if _, stderr, code := pacswatchIn(t, dir, "", append(args, "--db", whole, "--rate", rate)...); code > 1 {
		t.Fatalf("uninterrupted scan exited %d: %s", code, stderr)
	}
	took := time.Since(start)
	want := stored(t, whole)
	if len(want) != targets {
		t.Fatalf("uninterrupted scan stored %d results, want %d", len(want), targets)
	}
	accepted, rejected := 0, 0
	for _, js := range want {
		accepted += strings.Count(js, `"association":"accepted"`)
		rejected += strings.Count(js, `"association":"rejected"`)
	}
	if accepted < 50 || rejected < 20 {
		t.Fatalf("uninterrupted scan saw %d accepted and %d rejected associations of 100 SCPs", accepted, rejected)
	}

	// By results written: the first, then one in each eighth of the results before the last
	// batch. By time: at once, then one in each fifteenth of the run, less its last 300 ms.
	rng := rand.New(rand.NewPCG(seed, 0))
	points := []killPoint{{lines: 1}}
	for i := range 7 {
		points = append(points, killPoint{lines: 2 + i*800/7 + rng.IntN(800/7)})
	}
	points = append(points, killPoint{wait: 0})
	span := took - 300*time.Millisecond
	for i := range 15 {
		points = append(points, killPoint{wait: span * time.Duration(i*100+rng.IntN(100)) / 1500})
	}
	var kills []string
	killed := 0
	for i, k := range points {
		name := fmt.Sprintf("run%02d", i)
		db, jsonl := filepath.Join(dir, name+".db"), filepath.Join(dir, name+".jsonl")
		exited := killScan(t, dir, jsonl, k, append(args, "--db", db, "--rate", rate, "-o", jsonl)...)
		sc, n := storeState(t, db)
		kills = append(kills, fmt.Sprintf("%v: %d stored, checkpoint %d", k, n, sc.Progress.Done))
		if exited || !sc.Finished.IsZero() {
			kills[len(kills)-1] += " (the scan ended before the kill)"
		} else {
			killed++
			// Faster than the first run: flags given now win over the stored ones.
			if _, stderr, code := pacswatchIn(t, dir, "", "scan", "--resume", "--db", db, "--rate", "0", "-q"); code > 1 {
				t.Fatalf("%s, killed %v: resume exited %d: %s", name, k, code, stderr)
			}
		}
		sameResults(t, fmt.Sprintf("%s, killed %v and resumed", name, k), stored(t, db), want)
		jsonlOnce(t, name, jsonl, targets)
	}
	t.Logf("uninterrupted run %v at --rate %s; %d kill points (seed %d):\n%s", took.Round(time.Millisecond), rate, len(points), seed, strings.Join(kills, "\n"))
	if killed < 20 {
		t.Errorf("%d scans killed before their end, want at least 20", killed)
	}
}

// fileSums returns the SHA-256 of every file in dir, by name.
func fileSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = fmt.Sprintf("%x", sha256.Sum256(b))
	}
	return out
}

// oneLine checks a failed run: exit 2 and one line on stderr containing each of want.
func oneLine(t *testing.T, what, stderr string, code int, want ...string) {
	t.Helper()
	if code != 2 || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "pacswatch: ") {
		t.Errorf("%s: exit %d, stderr %q; want exit 2 and one line", what, code, stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("%s: stderr %q does not say %q", what, stderr, w)
		}
	}
}

// TestReadOnlyStore resumes a killed scan whose store has become read-only: one line saying so,
// exit 2, the store untouched; a new scan into a read-only directory fails the same way and
// leaves nothing. Writable again, the store resumes to the results of an uninterrupted run. Root
// may write anything, so as root pacswatch runs as the unprivileged user 65534.
func TestReadOnlyStore(t *testing.T) {
	if testing.Short() {
		t.Skip("scans 1,024 targets twice; skipped with -short")
	}
	port := fleet(t, 100, 10)
	args := []string{"scan", "127.3.0.0/22", "-p", fmt.Sprint(port), "--seed", "11", "--timeout", "2s", "-q", "--rate", "600", "--all-targets"}
	work := t.TempDir()
	whole := filepath.Join(work, "whole.db")
	if _, stderr, code := pacswatchIn(t, work, "", append(args, "--db", whole)...); code > 1 {
		t.Fatalf("uninterrupted scan exited %d: %s", code, stderr)
	}
	want := stored(t, whole)

	// A directory others may enter, holding the store and a copy of the binary.
	dir, err := os.MkdirTemp("", "pacswatch-ro-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.Chmod(dir, 0o755)
		os.RemoveAll(dir)
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "pacswatch")
	if err := copyExecutable(bin, binary); err != nil {
		t.Fatal(err)
	}
	db, jsonl := filepath.Join(dir, "ro.db"), filepath.Join(work, "ro.jsonl")
	if killScan(t, work, jsonl, killPoint{lines: 300}, append(args, "--db", db, "-o", jsonl)...) {
		t.Fatal("the scan ended before its kill")
	}
	if sc, _ := storeState(t, db); !sc.Finished.IsZero() {
		t.Fatal("the scan finished before its kill")
	}
	for _, e := range []string{"ro.db", "ro.db-wal", "ro.db-shm"} {
		os.Chmod(filepath.Join(dir, e), 0o444)
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	before := fileSums(t, dir)

	run := func(args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		if os.Geteuid() == 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		cmd.Stdout = io.Discard
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("run pacswatch: %v", err)
		}
		return stderr.String(), cmd.ProcessState.ExitCode()
	}
	stderr, code := run("scan", "--resume", "--db", db, "-q")
	oneLine(t, "resume on a read-only store", stderr, code, "store: "+db+" is read-only")
	fresh := filepath.Join(dir, "new.db")
	stderr, code = run("scan", "127.3.0.1", "-p", fmt.Sprint(port), "--db", fresh, "-q")
	oneLine(t, "new scan in a read-only directory", stderr, code, fresh)
	if after := fileSums(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("the read-only directory changed:\nbefore %v\nafter  %v", before, after)
	}

	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{"ro.db", "ro.db-wal", "ro.db-shm"} {
		os.Chmod(filepath.Join(dir, e), 0o644)
	}
	if _, stderr, code := pacswatchIn(t, work, "", "scan", "--resume", "--db", db, "--rate", "0", "-q"); code > 1 {
		t.Fatalf("resume once writable exited %d: %s", code, stderr)
	}
	sameResults(t, "resumed once writable", stored(t, db), want)
	jsonlOnce(t, "resumed once writable", jsonl, len(want))
}

func copyExecutable(dst, src string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}

func lines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\n")
}
