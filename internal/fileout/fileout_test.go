package fileout_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pacswatch/pacswatch/internal/fileout"
)

// entries lists dir's file names.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCommit: nothing at path until Commit; then the bytes, mode 0600 (also over an old 0644
// file), and no temporary file.
func TestCommit(t *testing.T) {
	for _, old := range []bool{false, true} {
		dir := t.TempDir()
		path := filepath.Join(dir, "report.md")
		if old {
			if err := os.WriteFile(path, []byte("old report"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		f, err := fileout.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("new ")); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("report")); err != nil {
			t.Fatal(err)
		}
		switch b, err := os.ReadFile(path); {
		case old && string(b) != "old report":
			t.Errorf("before Commit, path holds %q, want the old file", b)
		case !old && !errors.Is(err, fs.ErrNotExist):
			t.Errorf("before Commit, path exists (%q, %v)", b, err)
		}
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
		f.Abort() // safe after Commit: the file stays
		f.Abort()
		if got := mustRead(t, path); string(got) != "new report" {
			t.Errorf("file holds %q, want %q", got, "new report")
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600 (old file %v)", st.Mode().Perm(), old)
		}
		if names := entries(t, dir); len(names) != 1 {
			t.Errorf("directory holds %q, want only report.md", names)
		}
		if _, err := f.Write([]byte("x")); !errors.Is(err, fileout.ErrDone) {
			t.Errorf("Write after Commit = %v, want ErrDone", err)
		}
		if err := f.Commit(); !errors.Is(err, fileout.ErrDone) {
			t.Errorf("second Commit = %v, want ErrDone", err)
		}
	}
}

// TestAbort: Abort leaves the old file byte for byte, removes the temporary file, and is
// idempotent.
func TestAbort(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "results.jsonl")
	old := []byte("{\"ip\":\"127.0.0.1\"}\n")
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := fileout.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(bytes.Repeat([]byte("x"), 100000)); err != nil {
		t.Fatal(err)
	}
	if len(entries(t, dir)) != 2 {
		t.Fatalf("directory holds %q, want the file and a temporary file", entries(t, dir))
	}
	f.Abort()
	f.Abort()
	if got := mustRead(t, path); !bytes.Equal(got, old) {
		t.Errorf("after Abort the file holds %d bytes, want the old %d", len(got), len(old))
	}
	if names := entries(t, dir); len(names) != 1 {
		t.Errorf("after Abort the directory holds %q", names)
	}
	if err := f.Commit(); !errors.Is(err, fileout.ErrDone) {
		t.Errorf("Commit after Abort = %v, want ErrDone", err)
	}
	if got := mustRead(t, path); !bytes.Equal(got, old) {
		t.Error("Commit after Abort changed the file")
	}
}

// TestRefused: a symbolic link (its target unchanged), a directory, a special file, a missing
// directory or a file as directory: one line naming the path, and no file left.
func TestRefused(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target.html")
	if err := os.WriteFile(target, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	if err := os.Symlink(target, p("link.html")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(p("absent.html"), p("dangling.html")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(p("sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(p("fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := entries(t, dir)
	for _, tc := range []struct {
		name, path, want string
	}{
		{"symlink", p("link.html"), "symbolic link"},
		{"dangling symlink", p("dangling.html"), "symbolic link"},
		{"directory", p("sub"), "is a directory"},
		{"trailing slash", p("new") + "/", "names a directory"},
		{"fifo", p("fifo"), "not a regular file"},
		{"missing directory", p("missing/r.md"), "directory " + p("missing") + " does not exist"},
		{"file as directory", p("target.html/r.md"), "is not a directory"},
		{"empty", "", "empty file name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := fileout.Create(tc.path)
			if err == nil {
				f.Abort()
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, strings.TrimSuffix(tc.path, "/")) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming %q and %q", msg, tc.path, tc.want)
			}
			if err := fileout.WriteFile(tc.path, []byte("x")); err == nil || err.Error() != msg {
				t.Errorf("WriteFile error %v, want %q", err, msg)
			}
		})
	}
	if got := mustRead(t, target); string(got) != "keep me" {
		t.Errorf("the symbolic link's target now holds %q", got)
	}
	if l, err := os.Readlink(p("link.html")); err != nil || l != target {
		t.Errorf("the link now points to %q (%v)", l, err)
	}
	if after := entries(t, dir); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("directory held %q, now %q", before, after)
	}
	if names := entries(t, p("sub")); len(names) != 0 {
		t.Errorf("the directory refused as a file now holds %q", names)
	}
}

// TestCommitRefusesLateLink: a path that became a symbolic link or a directory after Create is
// not replaced; the temporary file goes.
func TestCommitRefusesLateLink(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(path, target string) error
		want string
	}{
		{"symlink", func(path, target string) error { return os.Symlink(target, path) }, "symbolic link"},
		{"directory", func(path, _ string) error { return os.Mkdir(path, 0o755) }, "is a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path, target := filepath.Join(dir, "r.md"), filepath.Join(dir, "target")
			if err := os.WriteFile(target, []byte("keep me"), 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := fileout.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Abort()
			f.Write([]byte("report"))
			if err := tc.make(path, target); err != nil {
				t.Fatal(err)
			}
			if err := f.Commit(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Commit = %v, want an error saying %q", err, tc.want)
			}
			if got := mustRead(t, target); string(got) != "keep me" {
				t.Errorf("target holds %q", got)
			}
			if names := entries(t, dir); len(names) != 2 {
				t.Errorf("directory holds %q, want r.md and target", names)
			}
		})
	}
}

func TestShow(t *testing.T) {
	long := strings.Repeat("é", 40000) // 80,000 bytes
	for _, tc := range []struct {
		in, want string
	}{
		{"report.md", "report.md"},
		{"/tmp/a b/ü.md", "/tmp/a b/ü.md"},
		{"a\x1b[31mb", `"a\x1b[31mb"`},
		{"a\nb", `"a\nb"`},
		{"\xff", `"\xff"`},
		{long, `"` + strings.Repeat("é", 100) + `…"`},
		{strings.Repeat("a", 199) + "é", `"` + strings.Repeat("a", 199) + `…"`}, // cut on a rune boundary
	} {
		if got := fileout.Show(tc.in); got != tc.want {
			t.Errorf("Show(%.40q) = %.60q, want %.60q", tc.in, got, tc.want)
		}
	}
	if got := fileout.Quote("s1"); got != `"s1"` {
		t.Errorf("Quote(s1) = %s", got)
	}
	if got := fileout.Show(long); len(got) > 210 {
		t.Errorf("Show of 80,000 bytes is %d bytes long", len(got))
	}
}
