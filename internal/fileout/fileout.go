// Package fileout writes the files pacswatch leaves for a user to keep (reports, JSON Lines),
// as SPEC.md "scan" → "Safety of a run" requires: created 0600 like the store, never through a
// symbolic link, never over the store, and atomically. A file is written to a temporary file
// in the same directory, flushed to disk (fsync) and renamed over its name (rename(2) is
// atomic within a file system, POSIX.1-2017 rename()), so that a failure at any point — a full
// disk, an I/O error — leaves the old file untouched and no temporary file behind. A process
// killed before Commit leaves the old file too, and at most a hidden ".NAME.tmp-*" beside it.
package fileout

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Mode is the permission of every file this package writes: the files hold a list of open
// hospital archives, readable by their owner only.
const Mode fs.FileMode = 0o600

// ErrDone is returned by Write and Commit on a File already committed or aborted.
var ErrDone = errors.New("fileout: file already committed or aborted")

// tempFile is what a File writes to: an *os.File, or in tests one that fails on purpose.
type tempFile interface {
	io.Writer
	Sync() error
	Close() error
}

// File is a file being written: its bytes go to a temporary file next to it until Commit.
// A File is not safe for concurrent use.
type File struct {
	path string   // the name it gets on Commit, as given
	tmp  string   // the temporary file's path
	f    tempFile // the temporary file; nil once closed
	err  error    // the first write error, returned by Commit
	done bool     // committed or aborted
}

var _ io.Writer = (*File)(nil)

// Create starts writing the file path: it checks path (not a symbolic link, a directory or
// another non-regular file; its directory exists) and creates a temporary file with Mode in
// path's directory. Nothing appears at path until Commit; call Abort (deferred) to drop the
// temporary file on every other way out.
func Create(path string) (*File, error) {
	if path == "" {
		return nil, errors.New("empty file name")
	}
	if err := check(path); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("%s: create a file in %s: %w", Show(path), Show(filepath.Dir(path)), reason(err))
	}
	// CreateTemp makes the file 0600 already; say it in case that changes, and against a umask
	// that cannot widen it anyway.
	if err := f.Chmod(Mode); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("%s: %w", Show(path), reason(err))
	}
	return &File{path: path, tmp: f.Name(), f: f}, nil
}

// check refuses a path that is a symbolic link, a directory or a special file, or whose
// directory is missing.
func check(path string) error {
	if strings.HasSuffix(path, string(filepath.Separator)) {
		return fmt.Errorf("%s: names a directory, not a file", Show(path))
	}
	dir := filepath.Dir(path)
	switch st, err := os.Stat(dir); {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: directory %s does not exist", Show(path), Show(dir))
	case err != nil:
		return fmt.Errorf("%s: directory %s: %w", Show(path), Show(dir), reason(err))
	case !st.IsDir():
		return fmt.Errorf("%s: %s is not a directory", Show(path), Show(dir))
	}
	st, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("%s: %w", Show(path), reason(err))
	case st.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%s: is a symbolic link, which pacswatch does not follow; name the file itself", Show(path))
	case st.IsDir():
		return fmt.Errorf("%s: is a directory", Show(path))
	case !st.Mode().IsRegular():
		return fmt.Errorf("%s: is not a regular file (a device, pipe or socket)", Show(path))
	}
	return nil
}

// Write writes to the temporary file. After an error every Write fails and Commit returns it.
func (f *File) Write(b []byte) (int, error) {
	if f.done {
		return 0, ErrDone
	}
	if f.err != nil {
		return 0, f.err
	}
	n, err := f.f.Write(b)
	if err != nil {
		f.err = fmt.Errorf("write %s: %w", Show(f.path), reason(err))
		return n, f.err
	}
	return n, nil
}

// Commit flushes the file to disk, closes it and renames it over path. On any error the
// temporary file is removed and whatever was at path before is left as it was.
func (f *File) Commit() error {
	if f.done {
		return ErrDone
	}
	err := f.err
	if err == nil {
		if serr := f.f.Sync(); serr != nil {
			err = fmt.Errorf("write %s: %w", Show(f.path), reason(serr))
		}
	}
	cerr := f.f.Close()
	f.f = nil
	if err == nil && cerr != nil {
		err = fmt.Errorf("write %s: %w", Show(f.path), reason(cerr))
	}
	if err == nil {
		// Checked again: path may have become a link or a directory since Create. rename(2)
		// would replace a link rather than follow it, but the user named a file.
		err = check(f.path)
	}
	if err == nil {
		if rerr := os.Rename(f.tmp, f.path); rerr != nil {
			err = fmt.Errorf("%s: %w", Show(f.path), reason(rerr))
		}
	}
	if err != nil {
		f.Abort()
		return err
	}
	f.done = true
	syncDir(filepath.Dir(f.path))
	return nil
}

// Abort closes and removes the temporary file. It is safe after Commit (it does nothing then)
// and may be called any number of times.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	if f.f != nil {
		f.f.Close()
		f.f = nil
	}
	os.Remove(f.tmp)
}

// WriteFile writes b to path as Create, Write and Commit do.
func WriteFile(path string, b []byte) error {
	f, err := Create(path)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(b); err != nil {
		return err
	}
	return f.Commit()
}

// syncDir makes a rename in dir durable. Best effort: the file is already in place, and some
// file systems cannot sync a directory.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	d.Sync()
	d.Close()
}

// reason strips an *fs.PathError or *os.LinkError of its operation and paths (which name the
// temporary file), leaving what went wrong: "no space left on device". It keeps the
// underlying error for errors.Is.
func reason(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

// maxShown is how many bytes of a user's value an error line quotes.
const maxShown = 200

// Show returns a user's value (a path, an ID) as an error line should quote it: as it is when
// it is printable and short, otherwise quoted with Go's escapes (strconv.Quote) and cut to
// maxShown bytes with "…", so that no control character or huge input reaches a terminal.
func Show(s string) string {
	if len(s) <= maxShown && printable(s) {
		return s
	}
	return Quote(s)
}

// Quote returns s quoted with Go's escapes, cut to maxShown bytes (on a rune boundary) with
// "…" when longer.
func Quote(s string) string {
	if len(s) <= maxShown {
		return strconv.Quote(s)
	}
	n := maxShown
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strconv.Quote(s[:n] + "…")
}

func printable(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
