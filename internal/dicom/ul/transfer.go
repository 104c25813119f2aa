package ul

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
)

// Send sends a message on an accepted presentation context: the command set,
// then the data set if data is not empty, each fragmented into PDVs sized to
// the peer's maximum length, one PDV per P-DATA-TF.
func (a *Assoc) Send(ctx context.Context, contextID byte, command, data []byte) error {
	if !a.accepted[contextID] {
		return fmt.Errorf("%w: send on presentation context %d, which is not accepted", ErrProtocol, contextID)
	}
	if a.fragment <= 0 {
		return fmt.Errorf("%w: peer maximum PDU length %d leaves no room for data", ErrProtocol, a.info.PeerMaxPDU)
	}
	a.watch(ctx)
	if n := len(command) + len(data); len(data) > 0 && len(command) <= a.fragment && len(data) <= a.fragment && n <= smallPDV {
		// One write for both P-DATA-TFs: the bytes on the wire are the same, and a server that
		// streams C-FIND responses makes half the system calls.
		a.sbuf = a.appendPDataTF(a.appendPDataTF(a.sbuf[:0], contextID, true, command), contextID, false, data)
		if _, err := a.conn.Write(a.sbuf); err != nil {
			return fmt.Errorf("send command and data set: %w", ctxErr(ctx, err))
		}
		return nil
	}
	if err := a.sendPDVs(contextID, true, command); err != nil {
		return fmt.Errorf("send command: %w", ctxErr(ctx, err))
	}
	if len(data) == 0 {
		return nil
	}
	if err := a.sendPDVs(contextID, false, data); err != nil {
		return fmt.Errorf("send data set: %w", ctxErr(ctx, err))
	}
	return nil
}

// appendPDataTF appends a P-DATA-TF of one PDV, the last fragment of its message, holding b.
func (a *Assoc) appendPDataTF(buf []byte, contextID byte, command bool, b []byte) []byte {
	v := PDV{ContextID: contextID, Command: command, Last: true}
	buf = append(buf, byte(TypePDataTF), 0)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(b)+6))
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(b)+2))
	buf = append(buf, contextID, v.controlHeader())
	return append(buf, b...)
}

func (a *Assoc) sendPDVs(contextID byte, command bool, b []byte) error {
	for {
		n := min(len(b), a.fragment)
		v := PDV{ContextID: contextID, Command: command, Last: n == len(b)}
		h := a.wbuf[:]
		h[0], h[1] = byte(TypePDataTF), 0
		binary.BigEndian.PutUint32(h[2:], uint32(n+6))
		binary.BigEndian.PutUint32(h[6:], uint32(n+2))
		h[10], h[11] = contextID, v.controlHeader()
		var err error
		if n <= smallPDV { // one write, so one TLS record and one segment
			a.sbuf = append(append(a.sbuf[:0], h...), b[:n]...)
			_, err = a.conn.Write(a.sbuf)
		} else { // writev where the connection has it, no copy
			bufs := net.Buffers{h, b[:n]}
			_, err = bufs.WriteTo(a.conn)
		}
		if err != nil {
			return err
		}
		if v.Last {
			return nil
		}
		b = b[n:]
	}
}

// next returns the next PDV on an accepted context, reading a P-DATA-TF when
// none is queued.
func (a *Assoc) next(ctx context.Context) (PDV, error) {
	for len(a.queue) == 0 {
		p, err := a.readData(ctx)
		if err != nil {
			return PDV{}, err
		}
		switch p := p.(type) {
		case nil: // a P-DATA-TF, its PDVs queued
		case *PDataTF:
			a.queue = p.PDVs
		case *AAbort:
			a.Close()
			return PDV{}, &AbortedError{Abort: *p}
		case *AReleaseRQ:
			a.releaseQ = true
			return PDV{}, ErrReleaseRequested
		default:
			return PDV{}, fmt.Errorf("%w: %s during data transfer", ErrUnexpectedPDU, p.Type())
		}
	}
	v := a.queue[0]
	a.queue = a.queue[1:]
	if !a.accepted[v.ContextID] {
		return PDV{}, fmt.Errorf("%w: pdv on presentation context %d, which is not accepted", ErrProtocol, v.ContextID)
	}
	return v, nil
}

// readData reads the next PDU as ReadPDU does, except that a P-DATA-TF of at
// most bodyChunk bytes is read into a buffer the Assoc reuses and its PDVs
// queued in a slice it reuses (readData then returns nil): the PDVs alias the
// buffer until the next read, so that whatever keeps their bytes copies them
// (the Reassembler does; a DataReader consumes them before reading on).
func (a *Assoc) readData(ctx context.Context) (PDU, error) {
	var h [HeaderLen]byte
	if _, err := io.ReadFull(a.r, h[:]); err != nil {
		return nil, ctxErr(ctx, fmt.Errorf("read pdu header: %w", err))
	}
	n := binary.BigEndian.Uint32(h[2:])
	if Type(h[0]) != TypePDataTF || n > a.maxRead || n > bodyChunk {
		p, err := ReadPDU(io.MultiReader(bytes.NewReader(h[:]), a.r), a.maxRead)
		if err != nil {
			return nil, ctxErr(ctx, err)
		}
		return p, nil
	}
	if int(n) > cap(a.body) { // grows to the largest P-DATA-TF yet, at most bodyChunk
		a.body = make([]byte, 0, max(int(n), 512))
	}
	body, err := readBody(a.body, a.r, int(n))
	if err != nil {
		return nil, ctxErr(ctx, bodyError(TypePDataTF, err))
	}
	if a.queue, err = appendPDVs(a.pdvs[:0], body); err != nil {
		return nil, ctxErr(ctx, err)
	}
	a.pdvs = a.queue
	return nil, nil
}

// nextData returns the next fragment of the data set that follows the last
// command.
func (a *Assoc) nextData(ctx context.Context) (PDV, error) {
	if !a.re.dataExpected() {
		return PDV{}, fmt.Errorf("%w: no command read before the data set", ErrProtocol)
	}
	v, err := a.next(ctx)
	if err != nil {
		return PDV{}, err
	}
	if err := a.re.step(v, dataFragment); err != nil {
		return PDV{}, err
	}
	return v, nil
}

// ReadCommand reads the next command set, reassembled from its fragments and
// bounded by MaxMessage (ErrMessageTooLarge), and the presentation context it
// came on. The rest of a data set that was partly read through DataReader is
// discarded first. A data fragment where the command should start, a
// context that was not accepted, or fragments on different contexts are
// ErrProtocol; an A-RELEASE-RQ is ErrReleaseRequested; an A-ABORT an
// *AbortedError.
func (a *Assoc) ReadCommand(ctx context.Context) (contextID byte, cmd []byte, err error) {
	a.watch(ctx)
	for a.re.inData() {
		if _, err := a.nextData(ctx); err != nil {
			return 0, nil, fmt.Errorf("discard data set: %w", err)
		}
	}
	a.re.noData()
	for {
		v, err := a.next(ctx)
		if err != nil {
			return 0, nil, fmt.Errorf("read command: %w", err)
		}
		m, ok, err := a.re.add(v, commandFragment)
		switch {
		case err != nil:
			return 0, nil, fmt.Errorf("read command: %w", err)
		case ok:
			return m.ContextID, m.Data, nil
		}
	}
}

// ReadData reads the data set that follows the last command, reassembled and
// bounded by MaxMessage (ErrMessageTooLarge). It is ErrProtocol when no
// command was read, when the data set was already read, when a command
// fragment comes instead, or when the data set is on another context than its
// command. Call it only when the command says a data set follows.
func (a *Assoc) ReadData(ctx context.Context) ([]byte, error) {
	if !a.re.dataExpected() {
		return nil, fmt.Errorf("read data set: %w: no command read before the data set", ErrProtocol)
	}
	a.watch(ctx)
	for {
		v, err := a.next(ctx)
		if err != nil {
			return nil, fmt.Errorf("read data set: %w", err)
		}
		m, ok, err := a.re.add(v, dataFragment)
		switch {
		case err != nil:
			return nil, fmt.Errorf("read data set: %w", err)
		case ok && m.Data == nil:
			return []byte{}, nil
		case ok:
			return m.Data, nil
		}
	}
}

// DataReader returns a reader of the data set that follows the last command,
// one fragment at a time, so that memory stays within one PDU whatever the
// data set's size; it returns io.EOF after the last fragment. Its reads are
// governed by ctx and report errors as ReadData does; it has no byte cap of
// its own. A following ReadCommand discards the rest of a data set partly read
// through it; one not read at all is the caller's to drain, since only the
// command says whether a data set follows (dimse does so).
func (a *Assoc) DataReader(ctx context.Context) io.Reader {
	return &dataReader{a: a, ctx: ctx}
}

type dataReader struct {
	a    *Assoc
	ctx  context.Context
	buf  []byte
	last bool
	err  error
}

func (r *dataReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		switch {
		case r.last:
			return 0, io.EOF
		case r.err != nil:
			return 0, r.err
		}
		r.a.watch(r.ctx)
		v, err := r.a.nextData(r.ctx)
		if err != nil {
			r.err = fmt.Errorf("read data set: %w", err)
			return 0, r.err
		}
		r.buf, r.last = v.Data, v.Last
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}
