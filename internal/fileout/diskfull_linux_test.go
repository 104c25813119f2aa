package fileout_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pacswatch/pacswatch/internal/fileout"
)

// childEnv names the directory on which the re-executed test mounts its small tmpfs.
const childEnv = "PACSWATCH_FILEOUT_TMPFS"

// TestDiskFull fills a real file system: the test re-runs itself in a mount namespace of its
// own (a user namespace too when not root) with a 64 KiB tmpfs, writes a report there, then
// a bigger one that does not fit. The old report survives byte for byte, no temporary file is
// left, and the space is free again for the next write. Skipped where namespaces are not
// allowed (TestFailureKeepsOldFile injects the same failures everywhere).
func TestDiskFull(t *testing.T) {
	if dir := os.Getenv(childEnv); dir != "" {
		diskFullChild(t, dir)
		return
	}
	dir := t.TempDir()
	attrs := []*syscall.SysProcAttr{{Cloneflags: syscall.CLONE_NEWNS}}
	if uid, gid := os.Getuid(), os.Getgid(); uid != 0 {
		attrs = []*syscall.SysProcAttr{{
			Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}},
		}}
	}
	for _, attr := range attrs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestDiskFull$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+dir)
		cmd.SysProcAttr = attr
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Logf("no mount namespace (%v)", err)
			continue
		}
		if err := cmd.Wait(); err != nil || !strings.Contains(out.String(), "--- PASS: TestDiskFull") {
			t.Fatalf("disk-full run: %v\n%s", err, out.String())
		}
		if names := entries(t, dir); len(names) != 0 {
			t.Errorf("the tmpfs leaked out of its namespace: %q", names)
		}
		return
	}
	t.Skip("mount namespaces are not allowed here")
}

func diskFullChild(t *testing.T, dir string) {
	// Private propagation first, so that the mount below stays in this namespace.
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		t.Fatalf("make / private: %v", err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k,mode=0700"); err != nil {
		t.Fatalf("mount a tmpfs: %v", err)
	}
	path := filepath.Join(dir, "report.html")
	old := bytes.Repeat([]byte("<p>the report of last month</p>\n"), 600) // 19,800 bytes
	if err := fileout.WriteFile(path, old); err != nil {
		t.Fatalf("first report: %v", err)
	}

	f, err := fileout.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	chunk := bytes.Repeat([]byte("<p>a much bigger report</p>\n"), 1000)
	var werr error
	for range 10 { // 280 KB into 64 KiB
		if _, werr = f.Write(chunk); werr != nil {
			break
		}
	}
	err = f.Commit()
	if err == nil {
		t.Fatal("a 280 KB report fitted on a 64 KiB file system")
	}
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "report.html: no space left on device") {
		t.Errorf("error %q (write error %v), want ENOSPC naming report.html", err, werr)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, old) {
		t.Errorf("the old report changed: %d bytes, want %d", len(got), len(old))
	}
	if names := entries(t, dir); len(names) != 1 || names[0] != "report.html" {
		t.Errorf("the file system holds %q, want report.html only", names)
	}
	// The temporary file's space is free again: a report as big as the old one fits twice over.
	if err := fileout.WriteFile(filepath.Join(dir, "next.html"), append(old, old...)); err != nil {
		t.Errorf("after the failure, a 40 KB file does not fit: %v", err)
	}
}
