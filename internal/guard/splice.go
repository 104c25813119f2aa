package guard

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

// A data set's bytes need not pass through the guard's memory: where both connections are plain
// TCP, the value of a P-DATA-TF's data PDV is moved from one socket to the other by io.CopyN,
// which Go's TCPConn.ReadFrom turns into splice(2) on Linux. The guard reads the PDU header and
// the PDV header, checks them as it checks every PDV, writes them, writes what of the value it had
// already read, and moves the rest unread. Command sets, identifiers, PDUs of several PDVs and
// anything on a TLS connection take the path that reads whole PDUs.

const (
	// spliceMin is the least number of a data PDV's bytes not yet read that go from one
	// connection to the other unread: below it, the reader's buffer costs less than the system
	// calls of a splice.
	spliceMin = 4 << 10
	// pduHead is a P-DATA-TF's header with its first PDV's header (length, context, control).
	pduHead = ul.HeaderLen + 6
	// forwarded is the type next reports for a PDU it forwarded itself: nothing left to handle.
	forwarded ul.Type = 0
)

// splicedPDUs counts the PDUs whose data went from one connection to the other unread, for
// tests.
var splicedPDUs atomic.Int64

// direct is what a pduReader needs to forward data PDVs unread.
type direct struct {
	src *net.TCPConn    // the reader's connection
	w   *syncWriter     // the other side's writer, over a *net.TCPConn
	dst syscall.RawConn // w's connection
	// admit checks a data PDV (its Data left out) and the P-DATA-TF of size bytes that holds it
	// alone, as the PDU's handler would, records it, and reports whether it is forwarded as it
	// came; false leaves the PDU to the handler, untouched.
	admit func(v ul.PDV, size int) (bool, error)
	// extend is called when a read times out in the middle of a PDV: it reports whether to wait
	// on, having moved the read deadline.
	extend func() bool
}

// newDirect returns what forwards data from src to w unread, or nil when either is not plain TCP.
func newDirect(src net.Conn, w *syncWriter, admit func(ul.PDV, int) (bool, error), extend func() bool) *direct {
	sc, ok := src.(*net.TCPConn)
	dc, dok := w.conn.(*net.TCPConn)
	if !ok || !dok {
		return nil
	}
	raw, err := dc.SyscallConn()
	if err != nil {
		return nil
	}
	return &direct{src: sc, w: w, dst: raw, admit: admit, extend: extend}
}

// tryDirect forwards the P-DATA-TF of total bytes whose header is at r.off when it holds one data
// PDV, at least spliceMin of whose bytes have not been read, and admit lets it through. It
// reports whether it did; when it did not, the PDU is where it was.
func (r *pduReader) tryDirect(total int) (bool, error) {
	r.bulk = total >= spliceMin
	if total-(r.end-r.off) < spliceMin {
		return false, nil
	}
	for r.end-r.off < pduHead {
		if err := r.fill(pduHead); err != nil {
			return false, err
		}
	}
	h := r.buf[r.off : r.off+pduHead]
	if ul.HeaderLen+4+int(binary.BigEndian.Uint32(h[ul.HeaderLen:])) != total || h[pduHead-1]&1 != 0 {
		return false, nil // several PDVs, or a command
	}
	ok, err := r.d.admit(ul.PDV{ContextID: h[pduHead-2], Last: h[pduHead-1]&2 != 0}, total)
	if !ok || err != nil {
		return false, err
	}
	if r.last != nil {
		r.last.Store(time.Now().UnixNano())
	}
	return true, r.forward(total)
}

// forward writes the PDU of total bytes at r.off to the other side: what of it is buffered, then
// the rest straight from the connection. The writer is held throughout, so that nothing it writes
// lands inside the PDU; a PDU cut short breaks the writer, which then writes nothing more.
func (r *pduReader) forward(total int) error {
	w := r.d.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.flushLocked(); err != nil {
		return err
	}
	k := min(total, r.end-r.off)
	w.extendLocked()
	n, err := r.d.writeMore(r.buf[r.off : r.off+k])
	r.off += k
	w.count(int64(n))
	if err != nil {
		w.broken = n > 0
		return err
	}
	for left := int64(total - k); left > 0; {
		w.extendLocked()
		c, err := io.CopyN(w.conn, r.d.src, left)
		w.count(c)
		left -= c
		if c > 0 && r.last != nil {
			r.last.Store(time.Now().UnixNano())
		}
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && time.Now().Before(w.deadline) && r.d.extend() {
			continue // the read timed out, not the write, and either side was heard from
		}
		w.broken = true
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	splicedPDUs.Add(1)
	return nil
}

// errBroken is a write to a side that has a PDU cut short: nothing written to it could be read.
var errBroken = errors.New("guard: a forwarded pdu was cut short")
