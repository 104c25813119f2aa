package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/sqlite"
	"github.com/pacswatch/pacswatch/internal/targets"
)

// netns is a network namespace of the test's own, held open by a sleeping process, where only
// loopback is up: every pacswatch run of the safety tests goes through it, so that no slip of
// theirs can reach beyond this machine (SPEC "Safety of a run").
type netns struct {
	hold *exec.Cmd
}

// newNetns starts the namespace. It needs root (unshare -n, nsenter); without it the test fails
// under PACSWATCH_REQUIRE_PEERS=1 and is skipped otherwise.
func newNetns(t *testing.T) *netns {
	t.Helper()
	_, errU := exec.LookPath("unshare")
	_, errN := exec.LookPath("nsenter")
	if os.Getuid() != 0 || errU != nil || errN != nil {
		if os.Getenv("PACSWATCH_REQUIRE_PEERS") == "1" {
			t.Fatal("safety tests need root, unshare and nsenter for a network namespace of their own")
		}
		t.Skip("needs root, unshare and nsenter: every run here is kept inside a network namespace of its own")
	}
	hold := exec.Command("unshare", "-n", "--", "sh", "-c", "ip link set lo up && exec sleep 3600")
	if err := hold.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hold.Process.Kill(); hold.Wait() })
	ns := &netns{hold: hold}
	// Wait until the holder is in a namespace of its own (unshare has run: until then its
	// /proc/PID/ns/net is ours) and loopback is up there.
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		theirs, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", hold.Process.Pid))
		if theirs != "" && theirs != self {
			out, _ := ns.command("ip", "-o", "link", "show", "lo").CombinedOutput()
			if bytes.Contains(out, []byte("UP")) {
				break
			}
		}
		if i == 500 {
			t.Fatalf("the test namespace never came up (holder in %q, ours %q)", theirs, self)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The namespace must have no route beyond loopback.
	if out, err := ns.command("ip", "route", "show", "default").CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("test namespace has a default route (%s) or none could be read (%v)", out, err)
	}
	return ns
}

// command returns a command that runs inside the namespace.
func (n *netns) command(name string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{fmt.Sprintf("--net=/proc/%d/ns/net", n.hold.Process.Pid), "--", name}, args...)...)
}

// run runs pacswatch inside the namespace, in dir, and returns stdout, stderr and the exit code.
func (n *netns) run(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	cmd := n.command(binary, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run pacswatch: %v", err)
	}
	return stdout.String(), stderr.String(), code
}

// start starts pacswatch inside the namespace and returns it running, with its stderr.
func (n *netns) start(t *testing.T, dir string, args ...string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	cmd := n.command(binary, args...)
	cmd.Dir = dir
	stderr := newLockedBuffer() // written by the command while the test reads it
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, stderr
}

// singleLine fails unless stderr is exactly one line that holds want.
func singleLine(t *testing.T, what, stderr, want string) {
	t.Helper()
	if strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, want) {
		t.Errorf("%s: stderr = %q, want one line holding %q", what, stderr, want)
	}
}

// scanState reads a store's latest scan and its summary.
func scanState(t *testing.T, db string) (store.Scan, store.Summary) {
	t.Helper()
	st, err := sqlite.OpenReadOnly(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sc, err := st.LatestScan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sum, err := st.Summary(context.Background(), sc.ID)
	if err != nil {
		t.Fatal(err)
	}
	return sc, sum
}

// storedNow returns how many results a store being written holds; false while it cannot be read
// yet (not created, schema not written).
func storedNow(db string) (uint64, bool) {
	st, err := sqlite.OpenReadOnly(context.Background(), db)
	if err != nil {
		return 0, false
	}
	defer st.Close()
	sc, err := st.LatestScan(context.Background())
	if err != nil {
		return 0, false
	}
	sum, err := st.Summary(context.Background(), sc.ID)
	return sum.Results, err == nil
}

// interrupt starts a slow scan, waits until its scan exists and has stored some results, and
// stops it with SIGINT: it must exit 130 and say how to resume.
func interrupt(t *testing.T, ns *netns, dir, db string, args ...string) store.Scan {
	t.Helper()
	cmd, stderr := ns.start(t, dir, append([]string{"scan", "--db", db, "-q", "--all-targets"}, args...)...)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the scan stored nothing in 20 s: %s", stderr)
		}
		if n, ok := storedNow(db); ok && n > 10 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Fatalf("interrupted scan: %v, want exit 130; stderr %q", err, stderr)
	}
	singleLine(t, "interrupted scan", stderr.String(), "pacswatch scan --resume --db "+db)
	sc, sum := scanState(t, db)
	if !sc.Finished.IsZero() || sum.Results >= sc.Total {
		t.Fatalf("interrupted scan: finished %v, %d of %d stored: want it unfinished", sc.Finished, sum.Results, sc.Total)
	}
	return sc
}

// TestResumeRefusesChanges (issue 10 items 1, 2, 10, 14): --resume refuses every flag that changes
// what is scanned or how, leaves the store as it was, applies an exclusion added mid-scan at probe
// time, and ends with the whole scan's totals.
func TestResumeRefusesChanges(t *testing.T) {
	ns := newNetns(t)
	dir := t.TempDir()
	db, excl := filepath.Join(dir, "p.db"), filepath.Join(dir, "optout.txt")
	if err := os.WriteFile(excl, []byte("# opt-outs\n127.6.9.9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"127.6.0.0/24", "-p", "9", "--seed", "7", "--rate", "100", "--exclude-file", excl}
	before := interrupt(t, ns, dir, db, args...)

	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"-p", "9999"}, "--ports cannot change"},
		{[]string{"--depth", "echo"}, "--depth cannot change"},
		{[]string{"--seed", "8"}, "--seed cannot change"},
		{[]string{"--shard", "0/2"}, `no unfinished scan of shard "0/2"`},
		{[]string{"--tls", "off"}, "--tls cannot change"},
		{[]string{"--web"}, "--web cannot change"},
		{[]string{"--calling-ae", "OTHER"}, "--calling-ae cannot change"},
		{[]string{"--timeout", "1s"}, "--timeout cannot change"},
		{[]string{"127.6.0.1"}, "takes no targets"},
	} {
		_, stderr, code := ns.run(t, dir, append([]string{"scan", "--resume", "--db", db}, tc.flags...)...)
		if code != 2 {
			t.Errorf("resume %v: exit %d, want 2", tc.flags, code)
		}
		singleLine(t, fmt.Sprintf("resume %v", tc.flags), stderr, tc.want)
		if sc, _ := scanState(t, db); !sc.Progress.Equal(before.Progress) || !sc.Finished.IsZero() {
			t.Fatalf("resume %v refused, but the scan moved: %+v, was %+v", tc.flags, sc.Progress, before.Progress)
		}
	}

	// An opt-out arrives mid-scan: the last target in the scan's order that has no result yet.
	sp, err := targets.Parse(context.Background(), []string{"127.6.0.0/24"}, targets.Options{Ports: []uint16{9}, Exclude: []string{"127.6.9.9"}})
	if err != nil {
		t.Fatal(err)
	}
	done := map[netip.Addr]bool{}
	st, err := sqlite.OpenReadOnly(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	err = st.Done(context.Background(), before.ID, func(a netip.Addr, _ uint16) error { done[a] = true; return nil })
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	it := sp.Order(7, 0, 1)
	var last targets.Target
	for pos := it.Len(); pos > 0 && !last.Addr.IsValid(); pos-- {
		it.Seek(pos - 1)
		if t, _, _ := it.Next(); !done[t.Addr] {
			last = t
		}
	}
	if !last.Addr.IsValid() || len(done) > 200 {
		t.Fatalf("the interrupted scan stored %d of 256 results: too late to opt out", len(done))
	}
	f, err := os.OpenFile(excl, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, last.Addr)
	f.Close()

	// The same values as stored are no change; --rate and --concurrency may change.
	_, stderr, code := ns.run(t, dir, "scan", "--resume", "--db", db, "-p", "9", "--rate", "0", "--concurrency", "50")
	if code != 0 {
		t.Fatalf("resume: exit %d: %s", code, stderr)
	}
	sc, sum := scanState(t, db)
	if sc.Finished.IsZero() || sc.Progress.Done != 256 || sc.Total != 256 {
		t.Errorf("resumed scan: finished %v, checkpoint %d, total %d; want finished at 256", sc.Finished, sc.Progress.Done, sc.Total)
	}
	if sum.Excluded != 1 || sum.Results != 255 {
		t.Errorf("resumed scan: %d results, %d excluded; want 255 and 1 (%s excluded mid-scan)", sum.Results, sum.Excluded, last.Addr)
	}
	st, err = sqlite.OpenReadOnly(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	err = st.Done(context.Background(), sc.ID, func(a netip.Addr, _ uint16) error {
		if a == last.Addr {
			return fmt.Errorf("%s, excluded mid-scan, has a result", a)
		}
		return nil
	})
	st.Close()
	if err != nil {
		t.Error(err)
	}
	// The summary is the whole scan's, not the resumed part's.
	m := regexp.MustCompile(`scan \S+: ([\d,]+) targets, ([\d,]+) open, ([\d,]+) DICOM, ([\d,]+) exposed, ([\d,]+) errors, 1 excluded after it started\n`).FindStringSubmatch(stderr)
	if m == nil || m[1] != "256" {
		t.Errorf("summary after resume = %q, want the whole scan's 256 targets and 1 excluded", stderr)
	}
}

// TestUnsafeStarts (issue 10 items 3, 9, 11, 14): a huge public scan needs --yes (on --resume too),
// a network that is unreachable stops the scan, nmap's output flags and file-like targets get one
// line, and a failed start leaves no scan.
func TestUnsafeStarts(t *testing.T) {
	ns := newNetns(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "p.db")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"the whole internet", []string{"scan", "0.0.0.0/0"}, "add --yes"},
		{"a public /16 on two ports", []string{"scan", "8.8.0.0/16", "-p", "104,105"}, "131,072 targets"},
		{"nmap XML", []string{"scan", "-oX", "out.xml", "127.0.0.1"}, "-oX: pacswatch writes no nmap XML output"},
		{"nmap grepable", []string{"scan", "127.0.0.1", "-oG", "out.gnmap"}, "-oG"},
		{"nmap all", []string{"scan", "-oAbase", "127.0.0.1"}, "-oA"},
		{"a file name as target", []string{"scan", "out.xml"}, `"out.xml" looks like a file name`},
		{"a 70,000-byte target", []string{"scan", strings.Repeat("1", 70000)}, "(70000 bytes)"},
		{"a missing output directory", []string{"scan", "127.0.0.1", "-p", "9", "-o", "/missing/dir/x.jsonl"}, "does not exist"},
		{"netip internals", []string{"scan", "10.0.0.0/33"}, `bad target "10.0.0.0/33": prefix length out of range`},
	} {
		_, stderr, code := ns.run(t, dir, append(tc.args, "--db", db)...)
		if code != 2 {
			t.Errorf("%s: exit %d, want 2", tc.name, code)
		}
		singleLine(t, tc.name, stderr, tc.want)
		if len(stderr) > 400 || strings.Contains(stderr, "netip") || strings.Contains(stderr, "ParseAddr") {
			t.Errorf("%s: stderr %d bytes with Go internals or input in full: %.300q", tc.name, len(stderr), stderr)
		}
		if _, err := os.Stat(db); err == nil {
			t.Fatalf("%s: a store was created", tc.name)
		}
	}
	// With --yes it starts, and a network with no route stops it after the first 1,000 attempts:
	// exit 2, one line, resumable. 198.18.0.0/15 is reserved, so named explicitly it has no public
	// address; 8.8.0.0/16 has.
	_, stderr, code := ns.run(t, dir, "scan", "8.8.0.0/16", "-p", "104,105", "--yes", "--rate", "0", "--db", db)
	if code != 2 {
		t.Errorf("unreachable network: exit %d, want 2: %s", code, stderr)
	}
	singleLine(t, "unreachable network", stderr, "network unreachable")
	sc, sum := scanState(t, db)
	if !sc.Finished.IsZero() || sum.Results != 0 {
		t.Errorf("unreachable network: scan finished %v with %d results; want it unfinished and empty", sc.Finished, sum.Results)
	}
	// Its resume asks for --yes again.
	_, stderr, code = ns.run(t, dir, "scan", "--resume", "--db", db)
	if code != 2 {
		t.Errorf("resume of a huge scan without --yes: exit %d, want 2", code)
	}
	singleLine(t, "resume of a huge scan without --yes", stderr, "add --yes")
}

// TestOutputSafety (issue 10 items 4, 5, 9): -o never names the store, never follows a symlink,
// and the store and -o are 0600.
func TestOutputSafety(t *testing.T) {
	ns := newNetns(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "p.db")
	if _, stderr, code := ns.run(t, dir, "scan", "127.7.0.1", "-p", "9", "--db", db, "-o", "first.jsonl", "-q"); code != 0 {
		t.Fatalf("first scan: exit %d: %s", code, stderr)
	}
	for _, name := range []string{"p.db", "first.jsonl"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600", name, fi.Mode().Perm(), err)
		}
	}
	sum := func() string {
		b, err := os.ReadFile(db)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%x", b)
	}
	storeBefore := sum()
	victim := filepath.Join(dir, "victim.txt")
	if err := os.WriteFile(victim, []byte("keep me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dir, "link.jsonl")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(db, filepath.Join(dir, "hard.db")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ out, want string }{
		{"p.db", "is the store"},
		{db, "is the store"},
		{"p.db-wal", "is the store"},
		{"./p.db-shm", "is the store"},
		{"hard.db", "is the store"},
		{"link.jsonl", "symbolic link"},
	} {
		_, stderr, code := ns.run(t, dir, "scan", "127.7.0.1", "-p", "9", "--db", db, "-o", tc.out)
		if code != 2 {
			t.Errorf("-o %s: exit %d, want 2", tc.out, code)
		}
		singleLine(t, "-o "+tc.out, stderr, tc.want)
	}
	if got := sum(); got != storeBefore {
		t.Error("the store changed")
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep me\n" {
		t.Errorf("the symlink's target was written: %q", b)
	}
	sc, _ := scanState(t, db)
	if sc.ID != "1" {
		t.Errorf("refused starts created scans: latest is %s, want 1", sc.ID)
	}
}

// TestOneProcessPerScan (issue 10 item 8): a second --resume of a running scan is refused; once
// its process is gone (SIGKILL), --resume takes the scan over at once.
func TestOneProcessPerScan(t *testing.T) {
	ns := newNetns(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "p.db")
	sc := interrupt(t, ns, dir, db, "127.8.0.0/24", "-p", "9", "--rate", "50", "--seed", "3")
	// Slow (256 targets at 10/s), and -v: its log's first line comes once it holds the scan.
	first, stderr1 := ns.start(t, dir, "scan", "--resume", "--db", db, "-v", "--rate", "10")
	defer first.Process.Kill()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr1.String(), "msg=scan ") {
		if time.Now().After(deadline) {
			t.Fatalf("first resume did not start: %s", stderr1)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if cur, _ := scanState(t, db); !cur.Finished.IsZero() || cur.ID != sc.ID {
		t.Fatalf("the first resume ended before the second started (scan %s, finished %v)", cur.ID, cur.Finished)
	}
	_, stderr, code := ns.run(t, dir, "scan", "--resume", "--db", db, "-q")
	if code != 2 {
		t.Errorf("second resume while the first runs: exit %d, want 2", code)
	}
	singleLine(t, "second resume", stderr, "is running in process")
	first.Process.Signal(syscall.SIGKILL)
	first.Wait()
	if _, stderr, code := ns.run(t, dir, "scan", "--resume", "--db", db, "-q", "--rate", "0"); code != 0 {
		t.Fatalf("resume after the first was killed: exit %d: %s", code, stderr)
	}
	if cur, sum := scanState(t, db); cur.Finished.IsZero() || sum.Results != 256 {
		t.Errorf("after takeover: finished %v, %d results; want finished with 256", cur.Finished, sum.Results)
	}
}

// TestShardRerunContinues (issue 13): a shard run again with the same command after a crash (a
// restarted pod of an Indexed Job) continues its own unfinished scan instead of starting a new
// one, and --shard without --seed is refused (shards must walk one permutation).
// The targets come as arguments, and from a list file as deploy/k8s's Job gives them (-iL is not
// stored with a scan: the target space's digest tells the same run).
func TestShardRerunContinues(t *testing.T) {
	ns := newNetns(t)
	listDir := t.TempDir()
	list := filepath.Join(listDir, "targets.txt")
	if err := os.WriteFile(list, []byte("127.11.0.0/24\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	shard := []string{"-p", "9", "--shard", "1/2", "--seed", "4", "--name", "run", "--all-targets"}
	for _, tc := range []struct {
		name    string
		targets []string
	}{
		{"arguments", []string{"127.11.0.0/24"}},
		{"list file", []string{"-iL", list, "--errors-exit-code", "0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "p.db")
			args := append(slices.Clone(tc.targets), shard...)
			first := interrupt(t, ns, dir, db, append(args, "--rate", "50")...)
			_, stderr, code := ns.run(t, dir, append([]string{"scan", "--db", db, "-q"}, args...)...)
			if code != 0 || !strings.Contains(stderr, "scan "+first.ID+": shard 1/2 of this run did not finish: continuing it") {
				t.Fatalf("re-run of the shard: exit %d, %q; want it to continue scan %s", code, stderr, first.ID)
			}
			sc, sum := scanState(t, db)
			if sc.ID != first.ID || sc.Finished.IsZero() || sum.Results != sc.Total || sc.Total != 128 {
				t.Errorf("after the re-run: latest scan %s (finished %v), %d of %d results; want scan %s finished with 128", sc.ID, sc.Finished, sum.Results, sc.Total, first.ID)
			}
		})
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "p.db")
	_, stderr, code := ns.run(t, dir, "scan", "127.11.0.0/24", "-p", "9", "--shard", "0/2", "--db", db)
	if code != 2 {
		t.Errorf("--shard without --seed: exit %d, want 2", code)
	}
	singleLine(t, "--shard without --seed", stderr, "--shard needs --seed")
}
