package fileout

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// failing is a temporary file that fails as a full or broken disk does: its writes after room
// bytes, its Sync or its Close.
type failing struct {
	*os.File
	room                int
	failSync, failClose bool
}

func (f *failing) Write(b []byte) (int, error) {
	if len(b) > f.room {
		n, _ := f.File.Write(b[:f.room])
		f.room = 0
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	f.room -= len(b)
	return f.File.Write(b)
}

func (f *failing) Sync() error {
	if f.failSync {
		return &os.PathError{Op: "sync", Path: f.Name(), Err: syscall.EIO}
	}
	return f.File.Sync()
}

func (f *failing) Close() error {
	err := f.File.Close()
	if f.failClose {
		return &os.PathError{Op: "close", Path: f.Name(), Err: syscall.EDQUOT}
	}
	return err
}

// TestFailureKeepsOldFile: a write, sync or close that fails leaves the old file byte for byte,
// no temporary file, and one error line naming the file and the cause (not the temporary
// file's name).
func TestFailureKeepsOldFile(t *testing.T) {
	old := bytes.Repeat([]byte("<tr><td>old report</td></tr>\n"), 500)
	for _, tc := range []struct {
		name string
		f    failing
		is   error
		want string
	}{
		{"disk full on write", failing{room: 4096}, syscall.ENOSPC, "no space left on device"},
		{"sync fails", failing{room: 1 << 30, failSync: true}, syscall.EIO, "input/output error"},
		{"close fails", failing{room: 1 << 30, failClose: true}, syscall.EDQUOT, "quota exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "report.html")
			if err := os.WriteFile(path, old, 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Abort()
			fake := tc.f
			fake.File = f.f.(*os.File)
			f.f = &fake
			var werr error
			for range 10 {
				if _, werr = f.Write(bytes.Repeat([]byte("new page "), 1000)); werr != nil {
					break
				}
			}
			cerr := f.Commit()
			if cerr == nil {
				t.Fatal("Commit succeeded")
			}
			if werr != nil && cerr.Error() != werr.Error() {
				t.Errorf("Commit = %q, want the write error %q", cerr, werr)
			}
			msg := cerr.Error()
			if !errors.Is(cerr, tc.is) || !strings.Contains(msg, tc.want) || !strings.Contains(msg, path) ||
				strings.Contains(msg, ".tmp-") || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming %s and %q, not the temporary file", msg, path, tc.want)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, old) {
				t.Errorf("the old file changed: %d bytes, want %d", len(got), len(old))
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != 1 {
				t.Errorf("directory holds %d entries, want the old file only", len(ents))
			}
			if _, err := f.Write([]byte("x")); !errors.Is(err, ErrDone) {
				t.Errorf("Write after a failed Commit = %v, want ErrDone", err)
			}
		})
	}
}
