package guard

import (
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

// Buffer sizes of a pduReader: it starts small (an association that only echoes or queries
// costs little) and grows to readChunk beyond what has arrived when a larger PDU comes, so that
// a bulk transfer reads several PDUs per system call, and a peer that announces a large PDU and
// sends little costs little.
const (
	readStart = 4 << 10
	readChunk = 64 << 10
)

// pduReader reads whole PDUs, raw, from one side of an association, so that they can be
// forwarded byte for byte. It reads ahead as much as the connection has; the PDUs it returns
// alias its buffer and stay valid until it next reads from the connection, before which it calls
// flush, so that the PDUs queued for forwarding go out first (and nothing waits on a PDU the
// guard holds while it blocks). A read that times out keeps what it had read, so the caller may
// extend the deadline and call again.
type pduReader struct {
	conn  net.Conn
	max   uint32       // cap on a PDU's length field
	flush func() error // sends what aliases buf; called before every read
	last  *atomic.Int64
	d     *direct // nil: every PDU is read whole
	bulk  bool    // the last P-DATA-TF was large: read headers alone, so that data can go unread

	buf      []byte // len == cap; buf[off:end] is read and not yet returned
	off, end int
}

// next returns the next PDU's type and bytes, header included. An unknown type is
// ul.ErrUnknownPDUType and a length over the cap ul.ErrPDUTooLarge, both before the body is read.
// A P-DATA-TF whose data went to the other side unread (see direct) is type forwarded, no bytes.
func (r *pduReader) next() (ul.Type, []byte, error) {
	for r.end-r.off < ul.HeaderLen {
		if err := r.fill(ul.HeaderLen); err != nil {
			return 0, nil, err
		}
	}
	h := r.buf[r.off : r.off+ul.HeaderLen]
	t := ul.Type(h[0])
	if t < ul.TypeAAssociateRQ || t > ul.TypeAAbort {
		return 0, nil, fmt.Errorf("%w: 0x%02x", ul.ErrUnknownPDUType, h[0])
	}
	n := binary.BigEndian.Uint32(h[2:])
	if n > r.max {
		return 0, nil, fmt.Errorf("%w: %s of %d bytes, cap %d", ul.ErrPDUTooLarge, t, n, r.max)
	}
	total := ul.HeaderLen + int(n)
	if r.d != nil && t == ul.TypePDataTF {
		if ok, err := r.tryDirect(total); ok || err != nil {
			return forwarded, nil, err
		}
	}
	for r.end-r.off < total {
		if err := r.fill(total); err != nil {
			return 0, nil, err
		}
	}
	raw := r.buf[r.off : r.off+total : r.off+total]
	r.off += total
	if r.last != nil {
		r.last.Store(time.Now().UnixNano())
	}
	return t, raw, nil
}

// fill reads once from the connection, having made room for a PDU of total bytes that starts at
// off.
func (r *pduReader) fill(total int) error {
	if r.flush != nil {
		if err := r.flush(); err != nil {
			return err
		}
	}
	if r.off > 0 && (r.off == r.end || r.off+total > len(r.buf)) { // the partial PDU to the front
		r.end = copy(r.buf, r.buf[r.off:r.end])
		r.off = 0
	}
	if r.end == len(r.buf) { // full: grow towards what the PDU needs, by at most readChunk
		want := max(total, readStart)
		if len(r.buf) >= readStart {
			want = max(total, readChunk)
		}
		want = min(want, r.end+readChunk)
		r.buf = slices.Grow(r.buf[:r.end], want-r.end)
		r.buf = r.buf[:cap(r.buf)]
	}
	limit := len(r.buf)
	if r.d != nil && r.bulk && total <= pduHead {
		limit = min(limit, r.off+pduHead) // the headers alone: the data may go unread
	}
	k, err := r.conn.Read(r.buf[r.end:limit])
	r.end += k
	return err
}

// syncWriter writes PDUs to one side. The two directions of a session may write to the client
// at once (a forwarded response and a refusal), so writes are serialised; forwarded PDUs are
// queued and go out together, in one system call, when the reader they came from is about to
// read again or when anything else is written.
type syncWriter struct {
	mu       sync.Mutex // protects the fields below and conn's writes
	pending  net.Buffers
	deadline time.Time // the write deadline set last
	conn     net.Conn
	timeout  time.Duration
	bytes    *atomic.Int64 // bytes written, for metrics and audit
	broken   bool          // a forwarded PDU was cut short: write nothing more (errBroken)
}

// queue adds a forwarded PDU to what goes out at the next flush; b must stay valid until then.
func (w *syncWriter) queue(b []byte) {
	w.mu.Lock()
	w.pending = append(w.pending, b)
	w.mu.Unlock()
}

// flush writes what is queued.
func (w *syncWriter) flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked()
}

func (w *syncWriter) flushLocked() error {
	if len(w.pending) == 0 {
		return nil
	}
	if w.broken {
		clear(w.pending)
		w.pending = w.pending[:0]
		return errBroken
	}
	w.extendLocked()
	bufs := w.pending
	n, err := bufs.WriteTo(w.conn) // consumes bufs, not w.pending's array
	clear(w.pending)
	w.pending = w.pending[:0]
	w.count(n)
	return err
}

// extendLocked gives the next write at least half the timeout before its deadline, which is
// moved only when less is left, not at every PDU.
func (w *syncWriter) extendLocked() {
	if now := time.Now(); w.deadline.Sub(now) < w.timeout/2 {
		w.deadline = now.Add(w.timeout)
		w.conn.SetWriteDeadline(w.deadline)
	}
}

func (w *syncWriter) count(n int64) {
	if w.bytes != nil {
		w.bytes.Add(n)
	}
}

// write writes what is queued, then b, at once.
func (w *syncWriter) write(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = append(w.pending, b)
	return w.flushLocked()
}

// writePDU writes one PDU built by ul.
func (w *syncWriter) writePDU(p ul.PDU) error {
	return w.write(p.Append(nil))
}
