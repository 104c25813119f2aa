package cli_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestDiskFull fills the store's file system in the middle of a scan: the scan stops with one
// line saying so and how to continue, exit 2, and once there is room again --resume completes it
// with the results of an uninterrupted run. The file system is a small tmpfs where mounting is
// allowed (root), else a file size limit (RLIMIT_FSIZE) on the scan's process.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("scans 1,024 targets three times; skipped with -short")
	}
	port := fleet(t, 100, 10)
	args := []string{"scan", "127.3.0.0/22", "-p", fmt.Sprint(port), "--seed", "9", "--timeout", "2s", "-q", "--rate", "300", "--all-targets"}
	dir := t.TempDir()
	whole := filepath.Join(dir, "whole.db")
	if _, stderr, code := pacswatchIn(t, dir, "", append(args, "--db", whole)...); code > 1 {
		t.Fatalf("uninterrupted scan exited %d: %s", code, stderr)
	}
	want := stored(t, whole)

	small := filepath.Join(dir, "small")
	if err := os.Mkdir(small, 0o755); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(small, "full.db")
	full := append(args, "--db", db)
	var stderr string
	var code int
	var saying string // what the error says about the disk
	const room = 256  // KiB: the first batch or two of results fit, not all
	if err := syscall.Mount("tmpfs", small, "tmpfs", 0, fmt.Sprintf("size=%dk,mode=0755", room)); err == nil {
		t.Cleanup(func() { syscall.Unmount(small, 0) })
		t.Logf("a %d KiB tmpfs fills up", room)
		_, stderr, code = pacswatchIn(t, dir, "", full...)
		saying = "disk is full"
		if err := syscall.Mount("tmpfs", small, "tmpfs", syscall.MS_REMOUNT, "size=64m,mode=0755"); err != nil {
			t.Fatal(err)
		}
	} else {
		t.Logf("mount tmpfs: %v; a file size limit of %d KiB (RLIMIT_FSIZE) instead", err, room)
		// SIGXFSZ ignored, so that write fails with EFBIG rather than killing the scan.
		script := fmt.Sprintf(`ulimit -f %d; trap "" XFSZ; exec "$0" "$@"`, room)
		cmd := exec.Command("bash", append([]string{"-c", script, binary}, full...)...)
		cmd.Dir = dir
		var b strings.Builder
		cmd.Stderr = &b
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("run pacswatch under bash: %v", err)
		}
		stderr, code = b.String(), cmd.ProcessState.ExitCode()
	}
	oneLine(t, "disk full", stderr, code, saying, "pacswatch scan --resume --db "+db)
	sc, n := storeState(t, db)
	t.Logf("stopped with %d of 1024 results stored, checkpoint %d: %s", n, sc.Progress.Done, strings.TrimSpace(stderr))
	if n == 0 || n >= len(want) {
		t.Errorf("the disk filled up with %d of %d results stored: want it mid-scan", n, len(want))
	}
	if _, stderr, code := pacswatchIn(t, dir, "", "scan", "--resume", "--db", db, "-q"); code > 1 {
		t.Fatalf("resume with room again exited %d: %s", code, stderr)
	}
	sameResults(t, "resumed after disk full", stored(t, db), want)
}

// TestReportDiskFull (issue 10 item 6): report -o on a full disk exits 2 and leaves the previous
// report byte for byte, with no temporary file beside it. Needs root to mount a small tmpfs.
func TestReportDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("PACSWATCH_REQUIRE_PEERS") == "1" {
			t.Fatal("needs root to mount a full tmpfs")
		}
		t.Skip("needs root to mount a full tmpfs")
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "p.db")
	finishedStore(t, db, exposed("127.0.0.5", "X_1"))
	small := filepath.Join(dir, "small")
	os.Mkdir(small, 0o755)
	if err := syscall.Mount("tmpfs", small, "tmpfs", 0, "size=64k,mode=0755"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(small, 0) })
	out := filepath.Join(small, "report.html")
	if _, stderr, code := pacswatchIn(t, dir, "", "report", "--db", db, "-o", out); code != 0 {
		t.Fatalf("first report: exit %d: %s", code, stderr)
	}
	old, _ := os.ReadFile(out)
	// Fill what is left.
	filler, _ := os.Create(filepath.Join(small, "filler"))
	filler.Write(make([]byte, 1<<20))
	filler.Close()
	_, stderr, code := pacswatchIn(t, dir, "", "report", "--db", db, "-o", out)
	if code != 2 {
		t.Errorf("report on a full disk: exit %d, want 2: %s", code, stderr)
	}
	if strings.Count(stderr, "\n") != 1 {
		t.Errorf("report on a full disk: stderr %q, want one line", stderr)
	}
	if now, _ := os.ReadFile(out); !bytes.Equal(now, old) || len(old) == 0 {
		t.Errorf("the previous report (%d bytes) became %d bytes", len(old), len(now))
	}
	ents, _ := os.ReadDir(small)
	if len(ents) != 2 {
		t.Errorf("files on the full disk: %v, want the report and the filler only", ents)
	}
}
