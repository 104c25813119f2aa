package cli

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"

	"github.com/pacswatch/pacswatch/internal/store"
)

// noFollow makes OpenFile refuse a symlink in the last element of a path.
const noFollow = syscall.O_NOFOLLOW

// dirOf returns the directory a path's file lives in.
func dirOf(path string) string { return filepath.Dir(filepath.Clean(path)) }

// unwrapPath returns the cause of a *PathError without Go's "open PATH:" prefix, which the
// message already carries; ELOOP from O_NOFOLLOW reads as what it means.
func unwrapPath(err error) error {
	if errors.Is(err, syscall.ELOOP) {
		return errors.New("is a symbolic link; pacswatch does not follow links for its output")
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// removeStore closes and deletes a store this run created and left empty.
func removeStore(st store.Store, path string) {
	st.Close()
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		_ = os.Remove(path + suffix)
	}
}
