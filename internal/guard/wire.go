package guard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

// readChunk is how much a PDU buffer grows at a time: a peer that announces a large PDU and
// sends little costs little.
const readChunk = 64 << 10

// pduReader reads whole PDUs, raw, from one side of an association, so that they can be
// forwarded byte for byte. Its buffer is reused: what next returns is valid until the next
// call. A read that times out keeps what it had read, so the caller may extend the deadline and
// call again.
type pduReader struct {
	conn net.Conn
	max  uint32 // cap on a PDU's length field
	buf  []byte
	have int // bytes of the current PDU read so far
	last *atomic.Int64
}

// next reads one PDU and returns its type and its bytes, header included. An unknown type is
// ul.ErrUnknownPDUType and a length over the cap ul.ErrPDUTooLarge, both before the body is read.
func (r *pduReader) next() (ul.Type, []byte, error) {
	if cap(r.buf) < ul.HeaderLen {
		r.buf = make([]byte, 0, 4096)
	}
	for r.have < ul.HeaderLen {
		n, err := r.conn.Read(r.buf[r.have:ul.HeaderLen])
		r.have += n
		if err != nil {
			return 0, nil, r.fail(err)
		}
	}
	h := r.buf[:ul.HeaderLen]
	t := ul.Type(h[0])
	if t < ul.TypeAAssociateRQ || t > ul.TypeAAbort {
		return 0, nil, fmt.Errorf("%w: 0x%02x", ul.ErrUnknownPDUType, h[0])
	}
	n := binary.BigEndian.Uint32(h[2:])
	if n > r.max {
		return 0, nil, fmt.Errorf("%w: %s of %d bytes, cap %d", ul.ErrPDUTooLarge, t, n, r.max)
	}
	total := ul.HeaderLen + int(n)
	for r.have < total {
		if r.have == cap(r.buf) {
			r.buf = slices.Grow(r.buf[:r.have], min(max(r.have, readChunk), total-r.have))
		}
		k, err := r.conn.Read(r.buf[r.have:min(cap(r.buf), total)])
		r.have += k
		if err != nil {
			return 0, nil, r.fail(err)
		}
	}
	r.have = 0
	if r.last != nil {
		r.last.Store(time.Now().UnixNano())
	}
	return t, r.buf[:total], nil
}

// fail keeps a partial read on a timeout; any other error ends the stream.
func (r *pduReader) fail(err error) error {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		r.have = 0
	}
	return err
}

// syncWriter writes whole PDUs to one side; the two directions of a session may write to the
// client at once (a forwarded response and a refusal), so writes are serialised.
type syncWriter struct {
	mu      sync.Mutex // protects conn writes
	conn    net.Conn
	timeout time.Duration
	bytes   *atomic.Int64 // bytes written, for metrics and audit
}

func (w *syncWriter) write(bufs ...[]byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
	var n int64
	var err error
	if len(bufs) == 1 {
		var k int
		k, err = w.conn.Write(bufs[0])
		n = int64(k)
	} else {
		nb := net.Buffers(bufs)
		n, err = nb.WriteTo(w.conn)
	}
	if w.bytes != nil {
		w.bytes.Add(n)
	}
	return err
}

// writePDU writes one PDU built by ul.
func (w *syncWriter) writePDU(p ul.PDU) error {
	var buf [128]byte
	return w.write(p.Append(buf[:0]))
}
