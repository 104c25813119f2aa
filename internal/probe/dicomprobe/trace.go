package dicomprobe

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net"

	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

// LevelTrace is the log level of -vv: one line per PDU exchanged.
const LevelTrace = slog.LevelDebug - 4

// traceConn logs every PDU that crosses conn, in both directions, by following the Upper Layer
// framing (a 6-byte header: type, reserved, 32-bit length) through the byte stream. It logs the
// type and length only, never a byte of content: no patient data can reach the log through it.
type traceConn struct {
	net.Conn
	log     *slog.Logger
	in, out framer
}

// trace wraps conn when the logger wants PDU lines.
func trace(conn net.Conn, log *slog.Logger) net.Conn {
	if !log.Enabled(context.Background(), LevelTrace) {
		return conn
	}
	return &traceConn{Conn: conn, log: log}
}

func (c *traceConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.in.feed(b[:n], func(t ul.Type, length uint32) {
		c.log.Log(context.Background(), LevelTrace, "pdu", "dir", "recv", "type", t.String(), "length", length)
	})
	return n, err
}

func (c *traceConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.out.feed(b[:n], func(t ul.Type, length uint32) {
		c.log.Log(context.Background(), LevelTrace, "pdu", "dir", "send", "type", t.String(), "length", length)
	})
	return n, err
}

// framer finds PDU headers in a byte stream fed to it in pieces of any size.
type framer struct {
	hdr    [ul.HeaderLen]byte
	have   int    // header bytes collected
	remain uint64 // body bytes of the current PDU still to skip
}

func (f *framer) feed(b []byte, emit func(ul.Type, uint32)) {
	for len(b) > 0 {
		if f.remain > 0 {
			skip := min(uint64(len(b)), f.remain)
			f.remain -= skip
			b = b[skip:]
			continue
		}
		n := copy(f.hdr[f.have:], b)
		f.have += n
		b = b[n:]
		if f.have < ul.HeaderLen {
			return
		}
		length := binary.BigEndian.Uint32(f.hdr[2:])
		emit(ul.Type(f.hdr[0]), length)
		f.have, f.remain = 0, uint64(length)
	}
}
