//go:build !unix

package scan

// RaiseFileLimit does nothing on systems without RLIMIT_NOFILE and returns 0: unknown.
func RaiseFileLimit() (uint64, error) { return 0, nil }

// FileLimit returns 0: unknown on systems without RLIMIT_NOFILE.
func FileLimit() uint64 { return 0 }
