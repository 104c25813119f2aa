//go:build unix

package scan

import (
	"fmt"
	"syscall"
)

// RaiseFileLimit raises the process's soft limit on open file descriptors (RLIMIT_NOFILE) to
// its hard limit, as SPEC "Scale and discovery" asks before a scan, and returns the soft limit
// now in force. On error (the system refuses) it returns the unchanged limit and the error;
// the scan can go on within it. Go's runtime raises the limit at start on most systems
// already; calling this makes it explicit and reports the number.
func RaiseFileLimit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("read the file descriptor limit: %w", err)
	}
	if rl.Cur >= rl.Max {
		return uint64(rl.Cur), nil
	}
	want := rl
	want.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		return uint64(rl.Cur), fmt.Errorf("raise the file descriptor limit from %d to %d: %w", rl.Cur, rl.Max, err)
	}
	return uint64(want.Cur), nil
}

// FileLimit returns the process's soft limit on open file descriptors; 0 if unknown.
func FileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return uint64(rl.Cur)
}
