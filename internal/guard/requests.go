package guard

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
	"github.com/pacswatch/pacswatch/internal/guard/policy"
)

// maxIdentifier caps a C-FIND, C-GET or C-MOVE identifier the guard holds to check it; a larger
// one is refused with 0xA700 (out of resources).
const maxIdentifier = 64 << 10

// dataMode is what the guard does with the data set that follows the client's last command.
type dataMode uint8

const (
	dataNone    dataMode = iota // the command announced none: a data fragment is an error
	dataForward                 // forward as it comes (an admitted C-STORE, a response)
	dataDrop                    // drop, then answer the refused request
	dataHold                    // hold until complete: an identifier to check
)

// clientSide is the state of the messages coming from the client.
type clientSide struct {
	re    ul.Reassembler
	data  dataMode
	held  [][]byte // the message being decided, as P-DATA-TFs to forward: copies
	ident []byte   // the identifier being held
	e     *emitter // the P-DATA-TF being handled
	cmd   dimse.Command
	ctxID byte
	req   *request // the request the held or dropped message belongs to
}

func (c *clientSide) init() {
	c.re = ul.Reassembler{MaxMessage: dimse.MaxCommandBytes, DiscardData: true}
}

// upstreamSide is the state of the messages coming from the upstream.
type upstreamSide struct {
	re ul.Reassembler
}

func (u *upstreamSide) init() {
	u.re = ul.Reassembler{MaxMessage: dimse.MaxCommandBytes, DiscardData: true}
}

// request is one DIMSE request and what became of it, for its audit record.
type request struct {
	msgID     uint16
	field     dimse.CommandField
	service   policy.Service
	sopClass  string
	ctxID     byte
	level     policy.Level
	universal bool
	moveDest  string
	refusal   string // empty: forwarded
	status    dimse.Status
	answered  bool   // a final status is known
	results   int    // pending responses (C-FIND matches, C-GET/C-MOVE progress)
	stores    int    // C-STORE sub-operations the upstream sent (C-GET)
	subOps    [4]int // remaining, completed, failed and warning sub-operations (C-GET, C-MOVE)
	hasSubOps bool
	bytesIn   atomic.Int64 // client to upstream
	bytesOut  atomic.Int64 // upstream to client
	t0        time.Time
}

func serviceOf(f dimse.CommandField) (policy.Service, bool) {
	switch f {
	case dimse.CEchoRQ:
		return policy.Echo, true
	case dimse.CFindRQ:
		return policy.Find, true
	case dimse.CGetRQ:
		return policy.Get, true
	case dimse.CMoveRQ:
		return policy.Move, true
	case dimse.CStoreRQ:
		return policy.Store, true
	}
	return "", false
}

// emitter writes what one P-DATA-TF from the client turns into: the PDU itself when every PDV
// in it is forwarded as it came; else runs of its PDVs, unchanged, in P-DATA-TFs of their own.
// The PDVs of a message the guard holds until it decides are kept as whole PDUs where they
// make up whole PDUs, so that a forwarded message keeps the client's framing.
type emitter struct {
	s     *session
	raw   []byte
	pdvs  []ul.PDV
	i     int      // the PDV being handled
	run   []ul.PDV // PDVs to forward, aliasing raw
	nfwd  int
	held  int  // the first PDV of this PDU that is held, or -1
	split bool // a PDV was held or dropped, or the guard answered
}

func (e *emitter) forward(v ul.PDV) {
	e.run = append(e.run, v)
	e.nfwd++
}

func (e *emitter) flushRun() error {
	e.split = true
	if len(e.run) == 0 {
		return nil
	}
	p := ul.PDataTF{PDVs: e.run}
	e.run = nil
	return e.s.uw.write(p.Append(nil))
}

// hold holds the PDV being handled, after forwarding what came before it.
func (e *emitter) hold() error {
	if err := e.flushRun(); err != nil {
		return err
	}
	if e.held < 0 {
		e.held = e.i
	}
	return nil
}

// seal moves the PDVs of this PDU held so far into the message's held PDUs: a copy of the PDU
// when they are all of it, else a P-DATA-TF of their own.
func (e *emitter) seal() {
	if e.held < 0 {
		return
	}
	cs := &e.s.creq
	if e.held == 0 && e.i == len(e.pdvs)-1 {
		cs.held = append(cs.held, append([]byte(nil), e.raw...))
	} else {
		cs.held = append(cs.held, (&ul.PDataTF{PDVs: e.pdvs[e.held : e.i+1]}).Append(nil))
	}
	e.held = -1
}

// drop forgets the held message.
func (c *clientSide) drop() {
	c.held = c.held[:0]
	if c.e != nil {
		c.e.held = -1
	}
}

func (e *emitter) finish() error {
	if !e.split && e.nfwd == len(e.pdvs) {
		e.s.uw.queue(e.raw) // sent before the client's next PDU is read
		return nil
	}
	return e.flushRun()
}

// clientData handles a P-DATA-TF from the client.
func (s *session) clientData(raw []byte) error {
	p, err := ul.Parse(ul.TypePDataTF, raw[ul.HeaderLen:])
	if err != nil {
		return fmt.Errorf("%w: %w", errClientProtocol, err)
	}
	cs := &s.creq
	e := &emitter{s: s, raw: raw, pdvs: p.(*ul.PDataTF).PDVs, held: -1}
	cs.e = e
	defer func() { cs.e = nil }()
	for i, v := range e.pdvs {
		e.i = i
		if !s.ctxs[v.ContextID].ok {
			return fmt.Errorf("%w: pdv on presentation context %d, which is not accepted", errClientProtocol, v.ContextID)
		}
		m, done, err := cs.re.Add(v)
		if err != nil {
			return fmt.Errorf("%w: %w", errClientProtocol, err)
		}
		if v.Command {
			if err := e.hold(); err != nil {
				return err
			}
			if done {
				if err := s.onClientCommand(m.ContextID, m.Data); err != nil {
					return err
				}
			}
			continue
		}
		if err := s.clientFragment(e, v); err != nil {
			return err
		}
	}
	e.i = len(e.pdvs) - 1
	e.seal()
	s.account(len(raw), cs.req)
	return e.finish()
}

// clientFragment handles a fragment of the data set that follows the client's last command.
func (s *session) clientFragment(e *emitter, v ul.PDV) error {
	cs := &s.creq
	switch cs.data {
	case dataForward:
		e.forward(v)
	case dataDrop:
		if err := e.flushRun(); err != nil {
			return err
		}
	case dataHold:
		if len(cs.ident)+len(v.Data) > maxIdentifier {
			if err := e.flushRun(); err != nil {
				return err
			}
			cs.drop()
			cs.ident, cs.data = cs.ident[:0], dataDrop
			cs.req.refusal, cs.req.status = "identifier-too-large", dimse.OutOfResources
		} else {
			if err := e.hold(); err != nil {
				return err
			}
			cs.ident = append(cs.ident, v.Data...)
		}
	default:
		return fmt.Errorf("%w: a data set after a command that announced none", errClientProtocol)
	}
	if !v.Last {
		return nil
	}
	mode, r := cs.data, cs.req
	cs.data, cs.req = dataNone, nil
	switch mode {
	case dataHold:
		return s.decideIdentifier(r)
	case dataDrop:
		return s.refuse(r)
	}
	return nil
}

// clientDirect is clientData for a P-DATA-TF of size bytes that holds only v, a data PDV, when its
// data may go to the upstream unread (direct): a fragment of a data set the guard forwards as it
// comes. It reports false, having changed nothing, for any other.
func (s *session) clientDirect(v ul.PDV, size int) (bool, error) {
	cs := &s.creq
	if !s.ctxs[v.ContextID].ok || cs.data != dataForward {
		return false, nil
	}
	if _, _, err := cs.re.Add(v); err != nil {
		return false, fmt.Errorf("%w: %w", errClientProtocol, err)
	}
	if v.Last {
		cs.data, cs.req = dataNone, nil
	}
	s.account(size, cs.req)
	return true, nil
}

// upstreamDirect is upstreamData for a P-DATA-TF of size bytes that holds only v, a data PDV:
// the upstream's data sets all go to the client as they came, unread.
func (s *session) upstreamDirect(v ul.PDV, size int) (bool, error) {
	if _, _, err := s.cup.re.Add(v); err != nil {
		return false, fmt.Errorf("%w: %w", errUpstreamProtocol, err)
	}
	s.mu.Lock()
	if s.cur != nil {
		s.cur.bytesOut.Add(int64(size))
	}
	s.mu.Unlock()
	return true, nil
}

// account adds a PDU's size to the request it belongs to: the one being decided, or the one
// under way.
func (s *session) account(size int, r *request) {
	if r == nil {
		s.mu.Lock()
		r = s.cur
		s.mu.Unlock()
	}
	if r != nil {
		r.bytesIn.Add(int64(size))
	}
}

// onClientCommand decides what becomes of a complete command set from the client, which is held
// in cs.held.
func (s *session) onClientCommand(ctxID byte, b []byte) error {
	cs := &s.creq
	c, err := dimse.DecodeCommand(b)
	if err != nil {
		return fmt.Errorf("%w: %w", errClientProtocol, err)
	}
	cs.cmd, cs.ctxID = c, ctxID
	if c.Field.IsResponse() { // C-STORE-RSP to a C-GET's sub-operation
		cs.data = dataNone
		if c.HasDataset {
			cs.data = dataForward
		}
		return s.releaseHeld()
	}
	s.mu.Lock()
	cur := s.cur
	s.mu.Unlock()
	if c.Field == dimse.CCancelRQ {
		cs.data = dataNone
		if cur != nil && cur.msgID == c.MessageIDBeingRespondedTo {
			return s.releaseHeld()
		}
		cs.drop()
		return nil
	}
	if cur != nil {
		return fmt.Errorf("%w: %v while message %d is under way (no asynchronous operations were negotiated)",
			errClientProtocol, c.Field, cur.msgID)
	}
	svc, known := serviceOf(c.Field)
	r := &request{msgID: c.MessageID, field: c.Field, service: svc, sopClass: capped(c.AffectedSOPClassUID), ctxID: ctxID,
		moveDest: capped(c.MoveDestination), t0: s.g.cfg.Now()}
	s.mu.Lock()
	s.nreq++
	s.mu.Unlock()
	switch {
	case !known:
		return s.refuseCommand(r, dimse.UnrecognizedOperation, "unknown-command")
	case !s.peer.Allows(svc):
		return s.refuseCommand(r, dimse.RefusedNotAuthorized, string(policy.ServiceNotAllowed))
	case svc == policy.Find || svc == policy.Get || svc == policy.Move:
		if !c.HasDataset {
			return s.refuseCommand(r, dimse.IdentifierDoesNotMatch, "no-identifier")
		}
		cs.data, cs.req = dataHold, r
		return nil
	}
	cs.data = dataNone
	if c.HasDataset {
		cs.data = dataForward
	}
	return s.admit(r)
}

// refuseCommand refuses the request whose command is held: now when no data set follows, else
// once its data set has been dropped.
func (s *session) refuseCommand(r *request, st dimse.Status, why string) error {
	cs := &s.creq
	cs.drop()
	r.refusal, r.status = why, st
	if cs.cmd.HasDataset {
		cs.data, cs.req = dataDrop, r
		return nil
	}
	cs.data = dataNone
	return s.refuse(r)
}

// decideIdentifier checks a complete held identifier and forwards or refuses its request.
func (s *session) decideIdentifier(r *request) error {
	cs := &s.creq
	level, universal, err := inspectIdentifier(cs.ident, s.ctxs[cs.ctxID].explicit)
	cs.ident = cs.ident[:0]
	if err != nil {
		cs.drop()
		r.refusal, r.status = "malformed-identifier", dimse.IdentifierDoesNotMatch
		return s.refuse(r)
	}
	r.level, r.universal = level, universal
	ref := s.peer.Check(policy.Request{Service: r.service, Level: level, Universal: universal, MoveDestination: r.moveDest})
	if ref != policy.Admitted {
		cs.drop()
		r.refusal, r.status = string(ref), dimse.RefusedNotAuthorized
		if ref == policy.MoveDestinationDeny {
			r.status = dimse.MoveDestinationUnknown
		}
		return s.refuse(r)
	}
	return s.admit(r)
}

// admit makes r the request under way and forwards its held messages.
func (s *session) admit(r *request) error {
	s.mu.Lock()
	s.cur = r
	s.mu.Unlock()
	if m := s.g.cfg.Metrics; m != nil {
		m.requests.WithLabelValues(s.peer.Name, string(r.service), "forwarded").Inc()
	}
	return s.releaseHeld()
}

// releaseHeld forwards the held message, in one write.
func (s *session) releaseHeld() error {
	cs := &s.creq
	if cs.e != nil {
		cs.e.seal()
	}
	defer func() {
		clear(cs.held)
		cs.held = cs.held[:0]
	}()
	if len(cs.held) == 0 {
		return nil
	}
	return s.uw.write(bytes.Join(cs.held, nil))
}

// refuse answers a refused request with its failure status and writes its audit record. The
// response carries the request's SOP class and message ID, the SOP instance of a C-STORE, and
// an error comment naming the refusal (PS3.7 §9.3 and Annex C).
func (s *session) refuse(r *request) error {
	c := s.creq.cmd
	rsp := dimse.Command{
		Field:                     c.Field | 0x8000,
		AffectedSOPClassUID:       c.AffectedSOPClassUID,
		MessageIDBeingRespondedTo: c.MessageID,
		Status:                    r.status,
		ErrorComment:              "pacswatch guard: " + r.refusal,
	}
	if c.Field == dimse.CStoreRQ {
		rsp.AffectedSOPInstanceUID = c.AffectedSOPInstanceUID
	}
	p := ul.PDataTF{PDVs: []ul.PDV{{ContextID: r.ctxID, Command: true, Last: true, Data: rsp.Encode()}}}
	r.answered = true
	if m := s.g.cfg.Metrics; m != nil {
		m.requests.WithLabelValues(s.peer.Name, string(r.service), "refused").Inc()
	}
	err := s.cw.write(p.Append(nil))
	s.finish(r, "")
	return err
}

// upstreamData handles a P-DATA-TF from the upstream: it follows the responses to the request
// under way, for its audit record, and forwards the PDU as it came.
func (s *session) upstreamData(raw []byte) error {
	p, err := ul.Parse(ul.TypePDataTF, raw[ul.HeaderLen:])
	if err != nil {
		return fmt.Errorf("%w: %w", errUpstreamProtocol, err)
	}
	var done *request
	for _, v := range p.(*ul.PDataTF).PDVs {
		m, ok, err := s.cup.re.Add(v)
		if err != nil {
			return fmt.Errorf("%w: %w", errUpstreamProtocol, err)
		}
		if ok && m.Command {
			if r := s.onUpstreamCommand(m.Data, raw); r != nil {
				done = r
			}
		}
	}
	if done == nil {
		s.mu.Lock()
		if s.cur != nil {
			s.cur.bytesOut.Add(int64(len(raw)))
		}
		s.mu.Unlock()
	}
	s.cw.queue(raw) // sent before the upstream's next PDU is read
	if done != nil {
		s.finish(done, "")
	}
	return nil
}

// onUpstreamCommand follows one command from the upstream. It returns the request under way
// when this is its final response, having ended it (before the response is forwarded, so that
// the client's next request finds none under way).
func (s *session) onUpstreamCommand(b, raw []byte) *request {
	c, err := dimse.DecodeCommand(b)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.cur
	if r == nil {
		return nil
	}
	if c.Field == dimse.CStoreRQ {
		r.stores++
		return nil
	}
	if c.Field != r.field|0x8000 || c.MessageIDBeingRespondedTo != r.msgID {
		return nil
	}
	if c.Remaining != nil || c.Completed != nil || c.Failed != nil || c.Warning != nil {
		r.hasSubOps = true
		r.subOps = [4]int{deref(c.Remaining), deref(c.Completed), deref(c.Failed), deref(c.Warning)}
	}
	if c.Status.Class() == dimse.ClassPending {
		r.results++
		return nil
	}
	r.status, r.answered = c.Status, true
	r.bytesOut.Add(int64(len(raw)))
	s.cur = nil
	return r
}

// capped cuts a client's UID or AE title to what the standard allows it (64 bytes), so that a
// hostile command set cannot fill the audit log.
func capped(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}

func deref(p *uint16) int {
	if p == nil {
		return 0
	}
	return int(*p)
}

// finish writes r's audit record; outcome overrides what its status says (e.g. "incomplete").
func (s *session) finish(r *request, outcome string) {
	s.g.audit.request(s, r, outcome)
}
