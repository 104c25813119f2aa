package scp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

// assoc is the server's side of one connection.
type assoc struct {
	s    *Server
	cfg  *Config
	raw  net.Conn // the TCP connection, under TLS if any
	conn net.Conn // what the Upper Layer reads and writes: raw, or TLS over it
	peek *peeker
	dl   deadlines
	a    *ul.Assoc
	buf  []byte // response identifiers and instances, reused
	next uint16 // Message ID of the next C-STORE sub-operation
}

// errStop ends an association without a word more: it was aborted, released,
// or the connection failed.
var errStop = errors.New("scp: association ended")

func (s *Server) handle(raw net.Conn) {
	s.st.connections.Add(1)
	s.st.active.Add(1)
	c := &assoc{s: s, cfg: &s.cfg, raw: raw, conn: raw}
	c.dl = deadlines{parent: s.ctx, timeout: s.cfg.Timeout}
	defer func() {
		c.dl.stop()
		raw.Close()
		s.untrack(raw)
		s.st.active.Add(-1)
		s.wg.Done()
	}()
	if s.cfg.TLS != nil {
		tc := tls.Server(raw, s.cfg.TLS)
		if err := tc.HandshakeContext(c.dl.fresh()); err != nil {
			return
		}
		c.conn = tc
	}
	if s.cfg.Hostile.beforeAssociation() {
		c.hostile()
		return
	}
	c.peek = newPeeker(raw)
	a, err := ul.Accept(c.dl.fresh(), &framedConn{Conn: c.conn}, ul.ServerConfig{
		Decide:                    c.decide,
		MaxPDU:                    s.cfg.MaxPDU,
		ImplementationClassUID:    s.cfg.ImplementationClassUID,
		ImplementationVersionName: s.cfg.ImplementationVersionName,
	})
	var rj *ul.RejectedError
	switch {
	case errors.As(err, &rj):
		s.st.rejected.Add(1)
		return
	case isAbort(err):
		s.st.aborted.Add(1)
		return
	case err != nil:
		return
	}
	s.st.associations.Add(1)
	c.a = a
	c.serve()
}

// decide applies the AE title policy and answers the presentation contexts.
func (c *assoc) decide(rq *ul.AAssociateRQ) (*ul.AAssociateAC, *ul.AAssociateRJ) {
	cfg := c.cfg
	sleep(c.s.ctx, cfg.Latency)
	switch {
	case rq.ProtocolVersion&1 == 0:
		return nil, &ul.AAssociateRJ{Result: 1, Source: 2, Reason: 2} // protocol version not supported
	case rq.ApplicationContext != ul.ApplicationContext:
		return nil, &ul.AAssociateRJ{Result: 1, Source: 1, Reason: 2} // application context name not supported
	case cfg.CheckCalled && rq.CalledAE != cfg.AETitle:
		return nil, &cfg.CalledReject
	case len(cfg.AllowedCalling) > 0 && !contains(cfg.AllowedCalling, rq.CallingAE):
		return nil, &cfg.CallingReject
	}
	return c.answer(rq), nil
}

// answer builds the A-ASSOCIATE-AC for rq: each context accepted in Explicit
// VR Little Endian, or else Implicit, when the server supports its abstract
// syntax, and every SCP/SCU role selection for a storage SOP class accepted
// as proposed (PS3.7 §D.3.3.4), so that a C-GET may send instances back.
func (c *assoc) answer(rq *ul.AAssociateRQ) *ul.AAssociateAC {
	supported := func(as string) bool { return c.supports(as, rq) }
	ac := ul.DefaultAC(rq, supported, []string{dicom.ExplicitVRLittleEndian, dicom.ImplicitVRLittleEndian})
	for _, r := range rq.UserInfo.Roles {
		if isStorage(r.SOPClassUID) {
			ac.UserInfo.Roles = append(ac.UserInfo.Roles, r)
		}
	}
	ac.UserInfo.ImplementationClassUID = c.cfg.ImplementationClassUID
	ac.UserInfo.ImplementationVersionName = c.cfg.ImplementationVersionName
	return ac
}

func (c *assoc) supports(abstract string, rq *ul.AAssociateRQ) bool {
	refused := func(on bool) bool { return on && c.cfg.Refusal == RefuseContext }
	r := c.cfg.Refused
	switch abstract {
	case dimse.Verification:
		return !refused(r.Echo)
	case dimse.StudyRootFind, dimse.PatientRootFind:
		return !refused(r.Find)
	case dimse.StudyRootGet, dimse.PatientRootGet:
		return !refused(r.Get)
	case dimse.StudyRootMove, dimse.PatientRootMove:
		return !refused(r.Move)
	}
	return isStorage(abstract) && (!refused(r.Store) || proposesSCP(rq, abstract))
}

// isStorage reports whether uid is a storage SOP class (PS3.4 Annex B.5).
func isStorage(uid string) bool {
	return strings.HasPrefix(uid, "1.2.840.10008.5.1.4.1.1.")
}

// proposesSCP reports whether the requestor asks to be SCP of class, as a
// C-GET SCU does for the classes it retrieves (PS3.4 §C.4.3.3).
func proposesSCP(rq *ul.AAssociateRQ, class string) bool {
	for _, r := range rq.UserInfo.Roles {
		if r.SOPClassUID == class && r.SCP {
			return true
		}
	}
	return false
}

func isAbort(err error) bool {
	var ab *ul.AbortedError
	return errors.As(err, &ab)
}

// serve answers requests until the association ends.
func (c *assoc) serve() {
	defer c.a.Close()
	for {
		ctxID, cmd, err := c.readCommand(c.dl.fresh())
		if err == nil {
			err = c.dispatch(ctxID, cmd)
		}
		switch {
		case err == nil:
		case errors.Is(err, ul.ErrReleaseRequested):
			if c.cfg.Hostile == NoReleaseReply {
				c.drain()
				return
			}
			c.a.ReplyRelease(c.dl.fresh())
			return
		case isAbort(err):
			c.s.st.aborted.Add(1)
			return
		case errors.Is(err, errStop):
			return
		case errors.Is(err, ul.ErrProtocol), errors.Is(err, ul.ErrUnexpectedPDU), errors.Is(err, ul.ErrMalformed),
			errors.Is(err, ul.ErrUnknownPDUType), errors.Is(err, ul.ErrPDUTooLarge), errors.Is(err, ul.ErrMessageTooLarge),
			errors.Is(err, dimse.ErrMalformedCommand), errors.Is(err, dimse.ErrProtocol):
			c.abort()
			return
		default: // the connection failed, timed out or was closed
			return
		}
	}
}

// readCommand reads and decodes the next command.
func (c *assoc) readCommand(ctx context.Context) (byte, dimse.Command, error) {
	ctxID, b, err := c.a.ReadCommand(ctx)
	if err != nil {
		return 0, dimse.Command{}, err
	}
	cmd, err := dimse.DecodeCommand(b)
	return ctxID, cmd, err
}

// abort sends an A-ABORT and ends the association.
func (c *assoc) abort() error {
	c.s.st.aborted.Add(1)
	c.a.Abort()
	return errStop
}

// drain reads and discards what the peer sends until it closes the
// connection, goes silent for Timeout, or the server is closed.
func (c *assoc) drain() {
	var buf [512]byte
	for {
		c.raw.SetReadDeadline(deadline(c.cfg.Timeout))
		if _, err := c.raw.Read(buf[:]); err != nil {
			return
		}
	}
}

// context returns the accepted presentation context id.
func (c *assoc) context(id byte) ul.Context {
	for _, pc := range c.a.Info().Accepted {
		if pc.ID == id {
			return pc
		}
	}
	return ul.Context{}
}

func (c *assoc) dispatch(ctxID byte, cmd dimse.Command) error {
	pc := c.context(ctxID)
	st := &c.s.st
	switch cmd.Field {
	case dimse.CEchoRQ:
		st.echo.Add(1)
		return c.echo(ctxID, pc, cmd)
	case dimse.CFindRQ:
		st.find.Add(1)
		return c.find(ctxID, pc, cmd)
	case dimse.CGetRQ:
		st.get.Add(1)
		return c.retrieve(ctxID, pc, cmd)
	case dimse.CMoveRQ:
		st.move.Add(1)
		return c.retrieve(ctxID, pc, cmd)
	case dimse.CStoreRQ:
		st.store.Add(1)
		return c.store(ctxID, pc, cmd)
	case dimse.CCancelRQ: // no operation in progress: nothing to cancel (PS3.7 §9.3.2.3)
		st.cancels.Add(1)
		return c.discardData(cmd)
	}
	if cmd.Field.IsResponse() {
		return fmt.Errorf("%w: unexpected %v", dimse.ErrProtocol, cmd.Field)
	}
	if err := c.discardData(cmd); err != nil {
		return err
	}
	return c.respond(ctxID, dimse.Command{
		Field: cmd.Field | 0x8000, AffectedSOPClassUID: cmd.AffectedSOPClassUID,
		MessageIDBeingRespondedTo: cmd.MessageID, Status: dimse.UnrecognizedOperation,
	}, nil)
}

// discardData reads and drops the data set that follows cmd, if any, a
// fragment at a time.
func (c *assoc) discardData(cmd dimse.Command) error {
	if !cmd.HasDataset {
		return nil
	}
	_, err := io.Copy(io.Discard, c.a.DataReader(c.dl.fresh()))
	return err
}

// respond sends a response, or misbehaves as Hostile says.
func (c *assoc) respond(ctxID byte, rsp dimse.Command, data []byte) error {
	if c.cfg.Hostile == HugePDataLength {
		c.conn.Write([]byte{byte(ul.TypePDataTF), 0, 0xFF, 0xFF, 0xFF, 0xF0, 0, 0, 0, 0, ctxID, 3})
		c.drain()
		return errStop
	}
	if err := c.a.Send(c.dl.stream(), ctxID, rsp.Encode(), data); err != nil {
		return fmt.Errorf("%w: send %v: %w", errStop, rsp.Field, err)
	}
	return nil
}

// refuse refuses a request for a service the configuration refuses, and
// reports whether it did.
func (c *assoc) refuse(refused bool, ctxID byte, cmd dimse.Command) (bool, error) {
	if !refused {
		return false, nil
	}
	if c.cfg.Refusal == RefuseAbort {
		return true, c.abort()
	}
	if err := c.discardData(cmd); err != nil {
		return true, err
	}
	return true, c.respond(ctxID, dimse.Command{
		Field: cmd.Field | 0x8000, AffectedSOPClassUID: cmd.AffectedSOPClassUID,
		MessageIDBeingRespondedTo: cmd.MessageID, Status: dimse.RefusedNotAuthorized,
	}, nil)
}

func (c *assoc) echo(ctxID byte, pc ul.Context, cmd dimse.Command) error {
	if ok, err := c.refuse(c.cfg.Refused.Echo, ctxID, cmd); ok {
		return err
	}
	if err := c.discardData(cmd); err != nil {
		return err
	}
	if c.cfg.Hostile == AbortAfterEcho {
		return c.abort()
	}
	if !sleep(c.s.ctx, c.cfg.Latency) {
		return errStop
	}
	status := dimse.Success
	if pc.AbstractSyntax != dimse.Verification {
		status = dimse.SOPClassNotSupported
	}
	return c.respond(ctxID, dimse.Command{
		Field: dimse.CEchoRSP, AffectedSOPClassUID: cmd.AffectedSOPClassUID,
		MessageIDBeingRespondedTo: cmd.MessageID, Status: status,
	}, nil)
}

// store answers a C-STORE-RQ with Success and discards the instance.
func (c *assoc) store(ctxID byte, pc ul.Context, cmd dimse.Command) error {
	if ok, err := c.refuse(c.cfg.Refused.Store, ctxID, cmd); ok {
		return err
	}
	if err := c.discardData(cmd); err != nil {
		return err
	}
	if !sleep(c.s.ctx, c.cfg.Latency) {
		return errStop
	}
	status := dimse.Success
	if !cmd.HasDataset {
		status = dimse.IdentifierDoesNotMatch
	}
	return c.respond(ctxID, dimse.Command{
		Field: dimse.CStoreRSP, AffectedSOPClassUID: cmd.AffectedSOPClassUID,
		MessageIDBeingRespondedTo: cmd.MessageID, AffectedSOPInstanceUID: cmd.AffectedSOPInstanceUID,
		Status: status,
	}, nil)
}

// readQuery reads and parses the identifier of a C-FIND, C-GET or C-MOVE
// request. A failure it answers itself with final status failure, and reports
// as ok false.
func (c *assoc) readQuery(ctxID byte, pc ul.Context, cmd dimse.Command) (q query, ok bool, err error) {
	if !cmd.HasDataset {
		return q, false, c.fail(ctxID, cmd, dimse.IdentifierDoesNotMatch, "no identifier")
	}
	data, err := c.a.ReadData(c.dl.fresh())
	if err != nil {
		return q, false, err
	}
	if pc.AbstractSyntax != cmd.AffectedSOPClassUID {
		return q, false, c.fail(ctxID, cmd, dimse.SOPClassNotSupported, "SOP class differs from the presentation context's")
	}
	ds, err := dicom.Decode(data, dicom.DecodeOptions{Explicit: pc.TransferSyntax == dicom.ExplicitVRLittleEndian})
	if err != nil {
		return q, false, c.fail(ctxID, cmd, dimse.IdentifierDoesNotMatch, "identifier cannot be decoded")
	}
	patientRoot := strings.HasPrefix(pc.AbstractSyntax, "1.2.840.10008.5.1.4.1.2.1.")
	q, err = parseQuery(&ds, patientRoot)
	if err != nil {
		return q, false, c.fail(ctxID, cmd, dimse.IdentifierDoesNotMatch, err.Error())
	}
	return q, true, nil
}

// fail sends the final response of a failed request.
func (c *assoc) fail(ctxID byte, cmd dimse.Command, status dimse.Status, comment string) error {
	return c.respond(ctxID, dimse.Command{
		Field: cmd.Field | 0x8000, AffectedSOPClassUID: cmd.AffectedSOPClassUID,
		MessageIDBeingRespondedTo: cmd.MessageID, Status: status, ErrorComment: trimComment(comment),
	}, nil)
}

// trimComment fits an Error Comment (LO) in 64 characters.
func trimComment(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}

// cancelled tells whether the peer has sent something while an operation
// streams its responses, and if so reads it: a C-CANCEL-RQ for msgID is
// true; an A-ABORT, an A-RELEASE-RQ, the connection's end or any other
// message is an error. It looks into the socket without reading (framedConn
// keeps it the only place where unread bytes wait), so over TLS a C-CANCEL-RQ
// that came in the same TLS record as its request, and over a connection that
// is not a socket any C-CANCEL-RQ, is seen only once the operation has ended.
func (c *assoc) cancelled(msgID uint16) (bool, error) {
	if !c.peek.readable() {
		return false, nil
	}
	_, cmd, err := c.readCommand(c.dl.fresh())
	switch {
	case err != nil:
		return false, err
	case cmd.Field != dimse.CCancelRQ || cmd.MessageIDBeingRespondedTo != msgID:
		return false, fmt.Errorf("%w: %v during an operation", dimse.ErrProtocol, cmd.Field)
	}
	c.s.st.cancels.Add(1)
	return true, c.discardData(cmd)
}

func (c *assoc) find(ctxID byte, pc ul.Context, cmd dimse.Command) error {
	if ok, err := c.refuse(c.cfg.Refused.Find, ctxID, cmd); ok {
		return err
	}
	q, ok, err := c.readQuery(ctxID, pc, cmd)
	if !ok {
		return err
	}
	if !sleep(c.s.ctx, c.cfg.Latency) {
		return errStop
	}
	pending := dimse.Command{
		Field: dimse.CFindRSP, AffectedSOPClassUID: cmd.AffectedSOPClassUID,
		MessageIDBeingRespondedTo: cmd.MessageID, HasDataset: true, Status: dimse.Pending,
	}.Encode()
	id := identifier{
		aeTitle: c.cfg.AETitle, computed: c.cfg.ComputedCounts, chatty: c.cfg.Chatty,
		explicit: pc.TransferSyntax == dicom.ExplicitVRLittleEndian,
	}
	n := 0
	var stopped bool
	send := func(m *match) bool {
		switch {
		case c.cfg.LimitFind > 0 && n >= c.cfg.LimitFind:
			return false
		case c.cfg.Hostile == AbortMidFind && n == 3:
			err = c.abort()
			return false
		}
		if c.cfg.Hostile != EndlessPending {
			if stopped, err = c.cancelled(cmd.MessageID); stopped || err != nil {
				return false
			}
		}
		if c.cfg.Hostile == HugePDataLength {
			err = c.respond(ctxID, dimse.Command{}, nil)
			return false
		}
		c.buf = id.append(c.buf[:0], &q, m)
		if err = c.a.Send(c.dl.stream(), ctxID, pending, c.buf); err != nil {
			err = fmt.Errorf("%w: send C-FIND-RSP: %w", errStop, err)
			return false
		}
		n++
		return true
	}
	if c.cfg.Hostile == EndlessPending {
		endless(send)
	} else {
		q.find(c.cfg.Tree, c.cfg.ComputedCounts, send)
	}
	if err != nil {
		return err
	}
	final := dimse.Success
	if stopped {
		final = dimse.Cancel
	}
	return c.respond(ctxID, dimse.Command{
		Field: dimse.CFindRSP, AffectedSOPClassUID: cmd.AffectedSOPClassUID,
		MessageIDBeingRespondedTo: cmd.MessageID, Status: final,
	}, nil)
}

// endless yields synthetic matches until yield returns false.
func endless(yield func(*match) bool) {
	g := newGenerator(0, 1<<40)
	var st Study // one study and one match for all: yield keeps neither
	m := new(match)
	for i := 0; ; i++ {
		st = g.study(i)
		*m = match{st: &st, se: &st.Series[0], in: &st.Series[0].Instances[0], patientStudies: 1}
		if !yield(m) {
			return
		}
	}
}
