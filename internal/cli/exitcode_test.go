package cli_test

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// resetListener accepts on loopback and resets every connection at once: a target whose probe
// ends in error ("connection reset").
func resetListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	})
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// TestErrorsExitCode: a scan that finished with errors on some targets exits 1 (SPEC "Exit
// status"), or 0 with --errors-exit-code 0, for a Kubernetes Job that would take 1 for a failed
// shard; any other value is refused as bad usage.
func TestErrorsExitCode(t *testing.T) {
	port := resetListener(t)
	dir := t.TempDir()
	// errorRun scans the resetting listener until its result is an error (the reset races the
	// connect stage: it is an error when the connect stage sees it, not-dicom when the probe
	// does) and returns that run's exit code.
	errorRun := func(extra ...string) int {
		t.Helper()
		for i := range 40 {
			db := filepath.Join(dir, fmt.Sprintf("%d-%d.db", len(extra), i))
			args := append([]string{"scan", "127.0.0.1", "-p", port, "-q", "--db", db, "-o", "-", "--timeout", "2s", "--tls", "off", "--syn", "off"}, extra...)
			stdout, stderr, code := pacswatchIn(t, dir, "", args...)
			if strings.Contains(stdout, `"status":"error"`) {
				return code
			}
			if code != 0 {
				t.Fatalf("scan without an error result exited %d: %s", code, stderr)
			}
		}
		t.Fatal("no run of 40 ended in error")
		return 0
	}
	if code := errorRun(); code != 1 {
		t.Errorf("default: exit %d with an error result, want 1", code)
	}
	if code := errorRun("--errors-exit-code", "0"); code != 0 {
		t.Errorf("--errors-exit-code 0: exit %d with an error result, want 0", code)
	}
	_, stderr, code := pacswatchIn(t, dir, "", "scan", "127.0.0.1", "-p", port, "--db", filepath.Join(dir, "c.db"), "--errors-exit-code", "3")
	if code != 2 || !strings.Contains(stderr, "--errors-exit-code") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("--errors-exit-code 3: exit %d, want 2 and one line naming the flag: %q", code, stderr)
	}
}
