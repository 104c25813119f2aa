package guard

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
	"github.com/pacswatch/pacswatch/internal/guard/policy"
)

// session is one client connection and, once admitted, its association with the upstream.
type session struct {
	g    *Guard
	id   uint64
	from netip.AddrPort
	tls  bool
	cert *x509.Certificate
	rq   *ul.AAssociateRQ
	pol  *policy.Policy
	peer *policy.Peer
	t0   time.Time

	client, up net.Conn
	cr, ur     pduReader
	cw, uw     syncWriter
	lastC      atomic.Int64 // unix nanoseconds of the last PDU from the client
	lastU      atomic.Int64 // and from the upstream
	in, out    atomic.Int64 // bytes written to the upstream and to the client

	ctxs  [256]pctx // presentation contexts the upstream accepted
	upMax uint32    // the upstream's maximum PDU length (0: none)
	creq  clientSide
	cup   upstreamSide
	mu    sync.Mutex // protects the fields below
	cur   *request   // the request under way (one: no asynchronous operations)
	nreq  int
	end   string // how the association ended; set once
	// linger: the client was refused or aborted; let it read why before closing.
	linger bool
}

// pctx is an accepted presentation context.
type pctx struct {
	ok       bool
	abstract string
	explicit bool
}

// Ends of an association, as audit records name them.
const (
	endReleased      = "released"
	endClientAbort   = "aborted-by-client"
	endUpstreamAbort = "aborted-by-upstream"
	endClientClosed  = "closed-by-client"
	endUpstreamClose = "closed-by-upstream"
	endIdle          = "idle-timeout"
	endClientError   = "client-protocol-error"
	endUpstreamError = "upstream-protocol-error"
	endGuardClosed   = "guard-stopped"
)

func (g *Guard) serveConn(ctx context.Context, c net.Conn) {
	s := &session{g: g, id: g.nextID.Add(1), client: c, t0: g.cfg.Now()}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		s.from = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	defer s.closeClient()
	c.SetDeadline(time.Now().Add(g.cfg.AssocTimeout))
	if tc, ok := c.(*tls.Conn); ok {
		if err := tc.HandshakeContext(ctx); err != nil {
			g.audit.connection(s, "tls-handshake-failed")
			return
		}
		s.tls = true
		if st := tc.ConnectionState(); len(st.VerifiedChains) > 0 {
			s.cert = st.VerifiedChains[0][0]
		}
	}
	s.cr = pduReader{conn: c, max: g.cfg.MaxPDU, last: &s.lastC}
	s.cw = syncWriter{conn: c, timeout: g.cfg.WriteTimeout, bytes: &s.out}
	release, ok := s.associate(ctx)
	if !ok {
		return
	}
	defer release()
	defer s.up.Close()
	s.run()
}

// associate reads the client's A-ASSOCIATE-RQ, applies the policy and limits, and negotiates
// with the upstream. It reports whether the association was established; when it was not, the
// client has had its answer (A-ASSOCIATE-RJ or A-ABORT) or the connection was not DICOM.
func (s *session) associate(ctx context.Context) (release func(), ok bool) {
	g := s.g
	t, raw, err := s.cr.next()
	s.linger = true // until the association is established
	if err != nil || t != ul.TypeAAssociateRQ {
		if err == nil && t != ul.TypeAAbort {
			s.cw.writePDU(ul.AAbort{Source: 2, Reason: 2}) // unexpected PDU
		}
		g.audit.connection(s, "no-association-request")
		return nil, false
	}
	p, err := ul.Parse(t, raw[ul.HeaderLen:])
	if err != nil {
		s.cw.writePDU(ul.AAbort{Source: 2, Reason: 6}) // invalid PDU parameter value
		g.audit.connection(s, "malformed-association-request")
		return nil, false
	}
	s.rq = p.(*ul.AAssociateRQ)
	s.pol = g.pol.Load()
	rj, why := s.decide()
	if rj == nil {
		release, rj, why = g.acquire(s.pol, s.peer)
	}
	if rj != nil {
		s.cw.writePDU(rj)
		g.audit.rejected(s, *rj, why, "guard")
		return nil, false
	}
	if !s.negotiate(ctx, raw) {
		release()
		return nil, false
	}
	return release, true
}

// decide applies the policy to the request: protocol, called and calling AE titles, source,
// client certificate, and the presentation contexts the peer may have.
func (s *session) decide() (*ul.AAssociateRJ, string) {
	rq := s.rq
	if rq.ProtocolVersion&1 == 0 {
		return &ul.AAssociateRJ{Result: 1, Source: 2, Reason: 2}, "protocol-version-not-supported"
	}
	if rq.ApplicationContext != ul.ApplicationContext {
		return &ul.AAssociateRJ{Result: 1, Source: 1, Reason: 2}, "application-context-not-supported"
	}
	pe, ref := s.pol.Admit(policy.Conn{CalledAE: rq.CalledAE, CallingAE: rq.CallingAE, Source: s.from.Addr(), TLS: s.tls, Cert: s.cert})
	switch ref {
	case policy.CalledAENotAllowed:
		return &ul.AAssociateRJ{Result: 1, Source: 1, Reason: 7}, string(ref)
	case policy.Admitted:
	default:
		return &ul.AAssociateRJ{Result: 1, Source: 1, Reason: 3}, string(ref)
	}
	s.peer = pe
	for _, pc := range rq.PresentationContexts {
		if pe.AllowsContext(pc.AbstractSyntax) {
			return nil, ""
		}
	}
	return &ul.AAssociateRJ{Result: 1, Source: 1, Reason: 1}, "no-allowed-presentation-context"
}

// upstreamRQ returns the A-ASSOCIATE-RQ to send upstream: the client's own bytes when it needs
// no change, else the request without the contexts the peer may not have, without an
// asynchronous operations window (the guard tracks one request at a time), and with a maximum
// PDU length the guard reads.
func (s *session) upstreamRQ(raw []byte) (out []byte, filtered []byte) {
	rq := *s.rq
	changed := false
	rq.PresentationContexts = nil
	for _, pc := range s.rq.PresentationContexts {
		if s.peer.AllowsContext(pc.AbstractSyntax) {
			rq.PresentationContexts = append(rq.PresentationContexts, pc)
		} else {
			filtered = append(filtered, pc.ID)
			changed = true
		}
	}
	if rq.UserInfo.AsyncOps != nil {
		rq.UserInfo.AsyncOps = nil
		changed = true
	}
	if m := rq.UserInfo.MaxLength; m == 0 || m > s.g.cfg.MaxPDU {
		rq.UserInfo.MaxLength = s.g.cfg.MaxPDU
		changed = true
	}
	if !changed {
		return raw, nil
	}
	return rq.Append(nil), filtered
}

// dialUpstream connects to the upstream, over TLS when configured.
func (s *session) dialUpstream(ctx context.Context) (net.Conn, error) {
	cfg := &s.g.cfg
	ctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	d := net.Dialer{}
	c, err := d.DialContext(ctx, "tcp", cfg.Upstream)
	if err != nil {
		return nil, err
	}
	if cfg.UpstreamTLS == nil {
		return c, nil
	}
	tc := tls.Client(c, cfg.UpstreamTLS)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	return tc, nil
}

// negotiate forwards the request upstream and the answer back. It reports whether the
// association was established.
func (s *session) negotiate(ctx context.Context, raw []byte) bool {
	g := s.g
	up, err := s.dialUpstream(ctx)
	if err != nil {
		g.cfg.Logger.Warn("upstream unreachable", "upstream", g.cfg.Upstream, "error", err.Error())
		rj := ul.AAssociateRJ{Result: 2, Source: 3, Reason: 1} // transient: temporary congestion
		s.cw.writePDU(rj)
		g.audit.rejected(s, rj, "upstream-unreachable", "guard")
		return false
	}
	s.up = up
	s.ur = pduReader{conn: up, max: g.cfg.MaxPDU, last: &s.lastU}
	s.uw = syncWriter{conn: up, timeout: g.cfg.WriteTimeout, bytes: &s.in}
	rqBytes, filtered := s.upstreamRQ(raw)
	up.SetDeadline(time.Now().Add(g.cfg.AssocTimeout))
	if err := s.uw.write(rqBytes); err != nil {
		return s.upstreamFailed("upstream-write-failed")
	}
	t, answer, err := s.ur.next()
	if err != nil {
		return s.upstreamFailed("upstream-no-answer")
	}
	p, err := ul.Parse(t, answer[ul.HeaderLen:])
	if err != nil {
		return s.upstreamFailed("upstream-malformed-answer")
	}
	switch p := p.(type) {
	case *ul.AAssociateRJ:
		s.cw.write(answer)
		g.audit.rejected(s, *p, "upstream-rejected", "upstream")
		return false
	case *ul.AAbort:
		s.cw.write(answer)
		g.audit.rejected(s, ul.AAssociateRJ{}, "upstream-aborted", "upstream")
		return false
	case *ul.AAssociateAC:
		acBytes, err := s.accept(p, answer, rqBytes, filtered)
		if err != nil {
			return s.upstreamFailed("upstream-malformed-answer")
		}
		if err := s.cw.write(acBytes); err != nil {
			s.uw.writePDU(ul.AAbort{})
			g.audit.rejected(s, ul.AAssociateRJ{}, "client-write-failed", "guard")
			return false
		}
		s.client.SetDeadline(time.Time{})
		up.SetDeadline(time.Time{})
		s.linger = false
		g.audit.accepted(s)
		return true
	}
	return s.upstreamFailed("upstream-unexpected-answer")
}

// upstreamFailed ends an association the upstream did not establish: an A-ABORT upstream, and
// for the client, which has had no answer yet, a transient rejection (temporary congestion).
func (s *session) upstreamFailed(why string) bool {
	s.uw.writePDU(ul.AAbort{})
	s.up.Close()
	rj := ul.AAssociateRJ{Result: 2, Source: 3, Reason: 1}
	s.cw.writePDU(rj)
	s.g.audit.rejected(s, rj, why, "guard")
	return false
}

// accept records what the upstream accepted and returns the A-ASSOCIATE-AC for the client:
// the upstream's bytes when they need no change, else with the filtered contexts answered as
// refused by the user and the maximum PDU length capped.
func (s *session) accept(ac *ul.AAssociateAC, raw, rqBytes []byte, filtered []byte) ([]byte, error) {
	sent, err := ul.Parse(ul.TypeAAssociateRQ, rqBytes[ul.HeaderLen:])
	if err != nil {
		return nil, err
	}
	proposed := map[byte]ul.PresentationContextRQ{}
	for _, pc := range sent.(*ul.AAssociateRQ).PresentationContexts {
		proposed[pc.ID] = pc
	}
	for _, pc := range ac.PresentationContexts {
		rq, ok := proposed[pc.ID]
		if !ok {
			return nil, fmt.Errorf("%w: context %d was not proposed", ul.ErrMalformed, pc.ID)
		}
		if pc.Result == ul.PCAcceptance {
			s.ctxs[pc.ID] = pctx{ok: true, abstract: rq.AbstractSyntax, explicit: pc.TransferSyntax != dicom.ImplicitVRLittleEndian}
		}
	}
	s.upMax = ac.UserInfo.MaxLength
	if len(filtered) == 0 && ac.UserInfo.MaxLength != 0 && ac.UserInfo.MaxLength <= s.g.cfg.MaxPDU {
		return raw, nil
	}
	out := *ac
	out.PresentationContexts = append([]ul.PresentationContextAC(nil), ac.PresentationContexts...)
	for _, id := range filtered {
		// The transfer syntax of a refused context is not significant, but some parsers want one.
		ts := ""
		for _, pc := range s.rq.PresentationContexts {
			if pc.ID == id && len(pc.TransferSyntaxes) > 0 {
				ts = pc.TransferSyntaxes[0]
			}
		}
		out.PresentationContexts = append(out.PresentationContexts, ul.PresentationContextAC{ID: id, Result: ul.PCUserRejection, TransferSyntax: ts})
	}
	if m := out.UserInfo.MaxLength; m == 0 || m > s.g.cfg.MaxPDU {
		out.UserInfo.MaxLength = s.g.cfg.MaxPDU
	}
	return out.Append(nil), nil
}

// run forwards the association's traffic both ways until it ends, then writes its last audit
// record.
func (s *session) run() {
	now := time.Now().UnixNano()
	s.lastC.Store(now)
	s.lastU.Store(now)
	s.creq.init()
	s.cup.init()
	s.cr.flush, s.ur.flush = s.uw.flush, s.cw.flush
	if s.g.cfg.Splice {
		s.cr.d = newDirect(s.client, &s.uw, s.clientDirect, s.keepReading(&s.cr, &s.lastU))
		s.ur.d = newDirect(s.up, &s.cw, s.upstreamDirect, s.keepReading(&s.ur, &s.lastC))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.pump(&s.ur, &s.lastC, s.fromUpstream, s.upstreamError)
		s.up.Close()
		s.stopReading() // the end is known
	}()
	s.pump(&s.cr, &s.lastU, s.fromClient, s.clientError)
	s.up.Close()
	<-done
	s.mu.Lock()
	cur := s.cur
	s.cur = nil
	s.mu.Unlock()
	if cur != nil {
		s.finish(cur, "incomplete")
	}
	s.g.audit.ended(s)
}

// pump reads PDUs from r and hands them to handle until either fails or the association ends.
// A read that times out goes on while either side was heard from within the idle timeout.
func (s *session) pump(r *pduReader, other *atomic.Int64, handle func(ul.Type, []byte) (bool, error), fail func(error)) {
	idle := s.g.cfg.IdleTimeout
	var deadline time.Time
	for {
		// The deadline moves when less than half the idle timeout is left, not at every PDU;
		// under the lock, so that stopReading's past deadline is never overwritten.
		if now := time.Now(); deadline.Sub(now) < idle/2 {
			s.mu.Lock()
			if s.end != "" {
				s.mu.Unlock()
				return
			}
			deadline = now.Add(idle)
			r.conn.SetReadDeadline(deadline)
			s.mu.Unlock()
		}
		t, raw, err := r.next()
		if err != nil && s.ended() {
			return
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && (heard(r.last, idle) || heard(other, idle)) {
			deadline = time.Time{}
			continue
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				s.setEnd(endIdle)
				s.abortBoth()
			}
			fail(err)
			return
		}
		if t == forwarded {
			continue
		}
		more, err := handle(t, raw)
		if err != nil {
			fail(err)
			return
		}
		if !more {
			return
		}
	}
}

// heard reports whether the unix nanoseconds in last are within d of now.
func heard(last *atomic.Int64, d time.Duration) bool {
	return time.Since(time.Unix(0, last.Load())) < d
}

// keepReading is what a PDV forwarded unread does when its read times out: it waits on, with the
// read deadline moved, while either side was heard from within the idle timeout and the end is
// not known, as pump does between PDUs.
func (s *session) keepReading(r *pduReader, other *atomic.Int64) func() bool {
	return func() bool {
		idle := s.g.cfg.IdleTimeout
		if !heard(r.last, idle) && !heard(other, idle) {
			return false
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.end != "" {
			return false
		}
		r.conn.SetReadDeadline(time.Now().Add(idle))
		return true
	}
}

// stopReading makes the client's pump stop once the end is known: a read deadline in the past,
// set under the lock that the pump sets its own deadlines under.
func (s *session) stopReading() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.client.SetReadDeadline(time.Unix(1, 0))
}

func (s *session) setEnd(end string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.end == "" {
		s.end = end
	}
}

// ended reports whether the association's end is known: the other side's pump then only has
// to stop.
func (s *session) ended() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.end != ""
}

// abortBoth sends A-ABORT to both sides (source service-provider towards the client), closes
// the upstream and stops reading the client, which is closed once it has read the A-ABORT.
func (s *session) abortBoth() {
	s.cw.writePDU(ul.AAbort{Source: 2, Reason: 0})
	s.uw.writePDU(ul.AAbort{})
	s.up.Close()
	s.mu.Lock()
	s.linger = true
	s.mu.Unlock()
	s.stopReading()
}

// lingerTime bounds how long a refused or aborted client may take to read why and close.
const lingerTime = time.Second

// closeClient closes the client's connection. A client that was refused or aborted first sees
// the end of the stream after the A-ASSOCIATE-RJ or A-ABORT, and has lingerTime to read them:
// what it sent and the guard did not read is drained meanwhile, so that closing does not reset
// the connection and destroy the answer in flight.
func (s *session) closeClient() {
	s.mu.Lock()
	linger := s.linger
	s.mu.Unlock()
	c := s.client
	cw, ok := c.(interface{ CloseWrite() error })
	if !linger || !ok {
		c.Close()
		return
	}
	cw.CloseWrite()
	c.SetReadDeadline(time.Now().Add(lingerTime))
	io.CopyN(io.Discard, c, 1<<20)
	c.Close()
}

func (s *session) clientError(err error) {
	if s.ended() {
		return
	}
	switch {
	case errors.Is(err, ul.ErrUnknownPDUType) || errors.Is(err, ul.ErrPDUTooLarge) || errors.Is(err, errClientProtocol):
		s.setEnd(endClientError)
		s.cw.writePDU(ul.AAbort{Source: 2, Reason: abortReason(err)})
		s.uw.writePDU(ul.AAbort{})
		s.up.Close()
		s.mu.Lock()
		s.linger = true
		s.mu.Unlock()
	default:
		s.setEnd(endClientClosed)
		s.uw.writePDU(ul.AAbort{})
	}
}

func (s *session) upstreamError(err error) {
	if s.ended() {
		return
	}
	switch {
	case errors.Is(err, ul.ErrUnknownPDUType) || errors.Is(err, ul.ErrPDUTooLarge) || errors.Is(err, errUpstreamProtocol):
		s.setEnd(endUpstreamError)
		s.abortBoth()
	default:
		s.setEnd(endUpstreamClose)
		s.cw.writePDU(ul.AAbort{Source: 2, Reason: 0})
	}
}

// abortReason is the A-ABORT reason for a client's protocol error (PS3.8 Table 9-26).
func abortReason(err error) byte {
	switch {
	case errors.Is(err, ul.ErrUnknownPDUType):
		return 1 // unrecognized PDU
	case errors.Is(err, errUnexpectedPDU):
		return 2 // unexpected PDU
	}
	return 6 // invalid PDU parameter value
}

var (
	errClientProtocol   = errors.New("guard: client protocol error")
	errUpstreamProtocol = errors.New("guard: upstream protocol error")
	errUnexpectedPDU    = errors.New("guard: unexpected pdu")
)

// fromClient handles one PDU from the client.
func (s *session) fromClient(t ul.Type, raw []byte) (bool, error) {
	switch t {
	case ul.TypePDataTF:
		return true, s.clientData(raw)
	case ul.TypeAReleaseRQ, ul.TypeAReleaseRP:
		return true, s.uw.write(raw)
	case ul.TypeAAbort:
		s.setEnd(endClientAbort)
		s.uw.write(raw)
		return false, nil
	}
	return false, fmt.Errorf("%w: %w: %s during data transfer", errClientProtocol, errUnexpectedPDU, t)
}

// fromUpstream handles one PDU from the upstream.
func (s *session) fromUpstream(t ul.Type, raw []byte) (bool, error) {
	switch t {
	case ul.TypePDataTF:
		return true, s.upstreamData(raw)
	case ul.TypeAReleaseRQ:
		return true, s.cw.write(raw)
	case ul.TypeAReleaseRP:
		s.setEnd(endReleased)
		s.cw.write(raw)
		return false, nil
	case ul.TypeAAbort:
		s.setEnd(endUpstreamAbort)
		s.cw.write(raw)
		return false, nil
	}
	return false, fmt.Errorf("%w: %s during data transfer", errUpstreamProtocol, t)
}
