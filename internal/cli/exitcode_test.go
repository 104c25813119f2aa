package cli_test

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pacswatch/pacswatch/internal/peertest"
)

// TestResetOnAccept: a server that accepts and resets every connection at once is an open port
// that does not speak DICOM, in every run, with either connect stage, and the scan exits 0.
// Before, the reset was an error result (exit 1) when the connect stage or the probe's dial saw
// it first, an open port when the association's read did: a third of the runs differed.
func TestResetOnAccept(t *testing.T) {
	port := strconv.Itoa(peertest.StartResetter(t).Addr.(*net.TCPAddr).Port)
	dir := t.TempDir()
	for i := range 12 {
		syn := []string{"off", "auto"}[i%2]
		db := filepath.Join(dir, fmt.Sprintf("%d.db", i))
		stdout, stderr, code := pacswatchIn(t, dir, "", "scan", "127.0.0.1", "-p", port, "-q", "--db", db, "-o", "-", "--timeout", "2s", "--tls", "off", "--syn", syn)
		if code != 0 || strings.Count(stdout, "\n") != 1 || !strings.Contains(stdout, `"status":"open"`) ||
			!strings.Contains(stdout, `"error":"connection reset"`) || !strings.Contains(stdout, `"level":"not-dicom"`) {
			t.Errorf("run %d (--syn %s): exit %d, stdout %s, stderr %s; want exit 0 and one open, not-dicom result, connection reset", i, syn, code, stdout, stderr)
		}
	}
}

// TestErrorsExitCode: a scan that finished with errors on some targets exits 1 (SPEC "Exit
// status"), or 0 with --errors-exit-code 0, for a Kubernetes Job that would take 1 for a failed
// shard; any other value is refused as bad usage. The error is this machine's own: in a network
// namespace of the test's, a prohibit route makes every connection attempt to the target fail at
// once (EACCES), with either connect stage; nothing is sent.
func TestErrorsExitCode(t *testing.T) {
	ns := newNetns(t)
	const target = "198.18.0.1" // benchmarking space, named: scanned; prohibited: never sent to
	if out, err := ns.command("ip", "route", "add", "prohibit", target+"/32").CombinedOutput(); err != nil {
		t.Fatalf("ip route add prohibit: %v: %s", err, out)
	}
	dir := t.TempDir()
	run := func(syn string, extra ...string) int {
		t.Helper()
		db := filepath.Join(dir, fmt.Sprintf("%s-%d.db", syn, len(extra)))
		args := append([]string{"scan", target, "-p", "104", "-q", "--db", db, "-o", "-", "--timeout", "2s", "--syn", syn}, extra...)
		stdout, stderr, code := ns.run(t, dir, args...)
		if !strings.Contains(stdout, `"status":"error"`) || !strings.Contains(stdout, `"error":"permission denied"`) {
			t.Errorf("--syn %s: stdout %q, stderr %q; want one error result, permission denied", syn, stdout, stderr)
		}
		return code
	}
	for _, syn := range []string{"off", "on"} {
		if code := run(syn); code != 1 {
			t.Errorf("--syn %s: exit %d with an error result, want 1", syn, code)
		}
		if code := run(syn, "--errors-exit-code", "0"); code != 0 {
			t.Errorf("--syn %s --errors-exit-code 0: exit %d with an error result, want 0", syn, code)
		}
	}
	_, stderr, code := ns.run(t, dir, "scan", target, "-p", "104", "--db", filepath.Join(dir, "c.db"), "--errors-exit-code", "3")
	if code != 2 || !strings.Contains(stderr, "--errors-exit-code") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("--errors-exit-code 3: exit %d, want 2 and one line naming the flag: %q", code, stderr)
	}
}
