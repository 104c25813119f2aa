//go:build !linux

package guard

// writeMore writes b, the start of a PDU whose rest follows at once. Without Linux's MSG_MORE it
// is a plain write, which keeps w's write deadline.
func (d *direct) writeMore(b []byte) (int, error) {
	return d.w.conn.Write(b)
}
