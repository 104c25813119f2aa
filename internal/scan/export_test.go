package scan

import "time"

// SetOutOfFilesAfter shortens how long a Dialer holding no socket retries EMFILE, for a test.
func SetOutOfFilesAfter(d time.Duration) (restore func()) {
	old := outOfFilesAfter
	outOfFilesAfter = d
	return func() { outOfFilesAfter = old }
}
