package guard

import "syscall"

// writeMore writes b, the start of a PDU whose rest follows at once, with MSG_MORE: it goes out
// with the rest, not in a small TCP segment of its own that wakes the receiver for a few bytes.
// It keeps w's write deadline.
func (d *direct) writeMore(b []byte) (int, error) {
	var n int
	var werr error
	err := d.dst.Write(func(fd uintptr) bool {
		for n < len(b) {
			k, err := syscall.SendmsgN(int(fd), b[n:], nil, nil, syscall.MSG_MORE)
			if err == syscall.EINTR {
				continue
			}
			if err == syscall.EAGAIN {
				return false // wait until writable
			}
			if err != nil {
				werr = err
				return true
			}
			n += k
		}
		return true
	})
	if werr != nil {
		return n, werr
	}
	return n, err
}
