package dicomprobe

import (
	"context"
	"errors"
	"log/slog"
	"net"

	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/targets"
)

// A Session probes one host:port step by step, so that a caller can drive and report each
// step on its own (an audit of one's own archive), as Probe drives them in one call: Connect,
// Associate, Echo, Count, Retrieve, then Close, and Web after it. Each step records what it
// learned in the session's Result and reports whether the next step can follow; a step whose
// earlier steps did not succeed does nothing and reports false. One association at a time:
// Retrieve opens its own only once the counting one is released.
//
// A Session is used by one goroutine. Close releases what it holds, study UIDs included
// (Count keeps one for Retrieve's tests); call it in every case.
type Session struct {
	p   *Prober
	t   targets.Target
	log *slog.Logger
	r   probe.Result

	conn net.Conn  // the connection Connect opened, until Associate takes it
	a    *ul.Assoc // the accepted association, while it is up
	c    *counter  // what Count counted, for Retrieve; nil after Close
}

// NewSession returns a session that probes t; nothing is sent before Connect. The result's
// time is now, its depth Config.Depth.
func (p *Prober) NewSession(t targets.Target) *Session {
	return &Session{
		p: p, t: t, log: p.cfg.Logger.With("target", t.String()),
		r: probe.Result{IP: t.Addr, Port: t.Port, Time: p.cfg.Now().UTC(), Depth: p.cfg.Depth.String()},
	}
}

// Result returns what the session learned so far: the SPEC record, whose Status is zero before
// Connect. Its DICOM and Exposure are the session's own, which later steps update.
func (s *Session) Result() probe.Result { return s.r }

// Connect opens the TCP connection within one step's timeout and records the port's status:
// open, or closed, filtered or error with the reason. It reports whether the port is open; it
// does nothing the second time.
func (s *Session) Connect(ctx context.Context) bool {
	if s.r.Status != 0 {
		return false
	}
	conn, err := s.p.dial(ctx, s.t.String())
	if probe.ResetOnConnect(err) {
		// Accepted and reset at once: open, and what Associate records when the reset comes
		// after the dial returned.
		s.r.Status = probe.StatusOpen
		if s.p.cfg.Depth >= DepthAssociate {
			s.r.Error = "connection reset"
			s.r.Exposure = &probe.Exposure{Level: probe.LevelNotDICOM}
		}
		s.log.Debug("connect", "status", s.r.Status, "error", "connection reset")
		return false
	}
	if err != nil {
		s.r.Status, s.r.Error = probe.ClassifyConnect(err)
		s.log.Debug("connect", "status", s.r.Status, "error", s.r.Error)
		return false
	}
	s.r.Status, s.conn = probe.StatusOpen, conn
	return true
}

// Associate requests an association over the connection Connect opened (PS3.8 §7.1), guessing
// the called AE title as Config says, over DICOM TLS (PS3.15 Annex B.1) on TLSPort or with
// TLSOn, and under TLSAuto also for a peer that does not answer plain DICOM. It records the
// answers (association, rejection, AE check, TLS) and, for an accepted association, the peer's
// implementation, product, maximum PDU and the services whose presentation contexts it
// accepted, at level echo. It reports whether an association was accepted.
func (s *Session) Associate(ctx context.Context) bool {
	conn := s.conn
	if conn == nil {
		return false
	}
	s.conn = nil
	p, r := s.p, &s.r
	d := &probe.DICOM{CallingAE: p.cfg.CallingAE, AECheck: probe.AECheckUnknown}
	r.DICOM = d
	r.Exposure = &probe.Exposure{Level: probe.LevelProtected}

	// DICOM TLS (PS3.15 Annex B.1): first on the TLS port, or always with --tls on; under auto a
	// peer that does not answer plain DICOM gets a TLS handshake too.
	useTLS := p.cfg.TLS == TLSOn || p.cfg.TLS == TLSAuto && s.t.Port == TLSPort
	if useTLS {
		tc, cert, err := p.handshake(ctx, conn)
		switch {
		case err == nil:
			conn, d.TLS, d.TLSCert = tc, true, cert
		case p.cfg.TLS == TLSOn:
			r.DICOM, r.Exposure.Level, r.Error = nil, probe.LevelNotDICOM, "tls handshake failed"
			return false
		default: // auto: the TLS port may speak plain DICOM
			useTLS = false
			if conn, err = p.dial(ctx, s.t.String()); err != nil {
				r.Error = errorText(err)
				return false
			}
		}
	}
	if s.a = s.associateAny(ctx, conn, useTLS); s.a == nil {
		return false
	}
	s.accepted()
	return true
}

// accepted records what the accepted association shows of the peer.
func (s *Session) accepted() {
	r, a := &s.r, s.a
	d := r.DICOM
	d.Association, d.Reject = probe.AssociationAccepted, nil
	r.Error = ""
	info := a.Info()
	d.ImplementationClassUID = info.PeerImplementationClassUID
	d.ImplementationVersion = info.PeerImplementationVersion
	d.MaxPDU = info.PeerMaxPDU
	d.Product, d.Honeypot = Identify(info.PeerImplementationClassUID, info.PeerImplementationVersion)
	_, d.Services.FindStudy = a.Context(dimse.StudyRootFind)
	_, d.Services.FindPatient = a.Context(dimse.PatientRootFind)
	_, d.Services.Get = a.Context(dimse.StudyRootGet)
	_, d.Services.Move = a.Context(dimse.StudyRootMove)
	// An accepted association is at least the "echo" level's floor; C-ECHO and C-FIND refine it.
	r.Exposure.Level = probe.LevelEcho
}

// Echo verifies the association with C-ECHO (PS3.7 §9.1.5) when the peer accepted the
// Verification context, and records whether it answered success. A C-ECHO that fails ends the
// association at level protected. It reports whether the association is still up.
func (s *Session) Echo(ctx context.Context) bool {
	if s.a == nil {
		return false
	}
	if _, ok := s.a.Context(dimse.Verification); !ok {
		return true
	}
	r := &s.r
	sctx, cancel := context.WithTimeout(ctx, s.p.cfg.Timeout)
	st, err := dimse.Echo(sctx, s.a)
	cancel()
	s.log.Debug("c-echo", "status", st, "error", probe.SafeError(err))
	if err != nil {
		var ab *ul.AbortedError
		if errors.As(err, &ab) {
			r.DICOM.Association = probe.AssociationAborted
		}
		r.Error = "c-echo: " + errorText(err)
		r.Exposure.Level = probe.LevelProtected
		s.end()
		return false
	}
	r.DICOM.Services.Echo = st == dimse.Success
	return true
}

// Count counts what C-FIND shows over the association (studies, instances, modalities; see
// measure) and sets the level it proves. It reports whether the association is still up; when
// it ended while counting, the result says why.
func (s *Session) Count(ctx context.Context) bool {
	if s.a == nil {
		return false
	}
	var ok bool
	s.c, ok = s.p.measure(ctx, s.a, &s.r)
	if len(s.p.cfg.Secret) > 0 { // a digest under a key of the counter's own compares with nothing
		s.r.Exposure.StudySet = s.c.studySet()
	}
	if !ok {
		s.end()
	}
	return ok
}

// Retrieve tests retrieval (C-MOVE, C-GET; see retrieve) of a study Count found, and sets the
// level it proves; with no study counted retrieval stays untested. It reports whether the
// association is still up.
func (s *Session) Retrieve(ctx context.Context) bool {
	if s.a == nil || s.c == nil {
		return false
	}
	if s.r.Exposure.Studies == 0 {
		return true // nothing to retrieve: retrieval stays untested
	}
	ok := s.p.retrieve(ctx, s.a, &s.r, s.c)
	if !ok {
		s.end()
	}
	return ok
}

// Web probes the target's web front ends with w (a webprobe.Prober) when its port answered,
// and adds the records it finds to the result (probe.JoinWeb). It runs only after Connect and
// once Close has ended the DICOM exchange: one connection to a host at a time. It reports
// whether a front end was found.
func (s *Session) Web(ctx context.Context, w probe.Prober) bool {
	if s.r.Status == 0 || s.conn != nil || s.a != nil {
		return false
	}
	probe.JoinWeb(ctx, &s.r, w, s.t)
	return len(s.r.Web) > 0
}

// Close ends the session: it releases the association when it is still up (within one step),
// closes the connections, and drops the study UIDs Count kept. It may be called more than once.
func (s *Session) Close(ctx context.Context) {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
	if s.a != nil {
		rctx, cancel := context.WithTimeout(ctx, s.p.cfg.Timeout)
		if err := s.a.Release(rctx); err != nil {
			s.log.Debug("release", "error", probe.SafeError(err))
		}
		cancel()
		s.end()
	}
	s.c = nil
}

// end closes the association without releasing it: it ended, or the peer broke it.
func (s *Session) end() {
	s.a.Close()
	s.a = nil
}

// associateAny requests an association over conn (nil: a new connection) with each candidate
// called AE title in turn, until one is accepted or refused for another reason than the called
// AE title; under TLSAuto a peer that does not answer plain DICOM is tried over TLS once. It
// records the answers in the result and returns the accepted association, or nil.
func (s *Session) associateAny(ctx context.Context, conn net.Conn, useTLS bool) *ul.Assoc {
	p, r, log := s.p, &s.r, s.log
	d, addr := r.DICOM, s.t.String()
	var err error
	candidates := []string{p.cfg.CalledAE}
	if p.cfg.CalledAE == "" {
		candidates = p.cfg.Dict.Candidates(s.t.Port, p.cfg.MaxAETries)
	}
	var (
		a          *ul.Assoc
		sawCalled  bool // some candidate was refused as "called-AE-title-not-recognized"
		sawCalling bool // some candidate was refused as "calling-AE-title-not-recognized"
		lastCalled bool // the last answer refused the called AE title
		triedTLS   = useTLS
	)
	for i := 0; i < len(candidates); i++ {
		called := candidates[i]
		if conn == nil {
			if conn, err = p.open(ctx, addr, useTLS); err != nil {
				r.Error = errorText(err)
				break
			}
		}
		d.CalledAE = called
		a, err = p.associate(ctx, trace(conn, log), called)
		conn = nil // ul owns it now, and closed it on failure
		log.Debug("associate", "called_ae", called, "tls", useTLS, "error", probe.SafeError(err))
		if err != nil && i == 0 && !triedTLS && p.cfg.TLS == TLSAuto && (notDICOM(err) || !probe.IsTimeout(err) && !isDICOMAnswer(err)) {
			// Not plain DICOM: a DICOM TLS server answers a plain A-ASSOCIATE-RQ with a TLS alert or a close.
			triedTLS = true
			if tc, e := p.dial(ctx, addr); e == nil {
				if tc, cert, e := p.handshake(ctx, tc); e == nil {
					conn, useTLS, d.TLS, d.TLSCert = tc, true, true, cert
					i--
					continue
				}
			}
		}
		var rj *ul.RejectedError
		var ab *ul.AbortedError
		lastCalled = false
		switch {
		case err == nil:
		case errors.As(err, &rj):
			d.Association = probe.AssociationRejected
			d.Reject = &probe.Reject{Result: int(rj.RJ.Result), Source: int(rj.RJ.Source), Reason: int(rj.RJ.Reason), Meaning: rj.RJ.Meaning()}
			if rj.RJ.Source == 1 && rj.RJ.Reason == 7 {
				sawCalled, lastCalled = true, true
				if p.cfg.CalledAE == "" {
					continue // guess the next called AE
				}
			}
			if rj.RJ.Source == 1 && rj.RJ.Reason == 3 {
				sawCalling = true
			}
		case errors.As(err, &ab):
			d.Association = probe.AssociationAborted
			r.Error = abortText(ab)
		case notDICOM(err):
			r.DICOM = nil
			r.Exposure.Level = probe.LevelNotDICOM
			r.Error = "not dicom"
			return nil
		default:
			r.Error = errorText(err)
			if d.TLS && s.refusedForCert(ctx, err) {
				r.Error = TextClientCertRequired // DICOM all the same: protected by its TLS layer
				break
			}
			if i == 0 {
				// Nothing DICOM-shaped came back at all (silence, or a close): not DICOM, as far as we can tell.
				r.DICOM = nil
				r.Exposure.Level = probe.LevelNotDICOM
				return nil
			}
		}
		break
	}
	if lastCalled && p.cfg.CalledAE == "" {
		// Every title guessed was refused: none is the called AE title, least of all the last
		// one tried. The outcome is in the association, the rejection and the AE check.
		d.CalledAE = ""
	}
	switch {
	case a != nil && d.CalledAE == GenericAE && !sawCalled:
		d.AECheck = probe.AECheckNone
	case sawCalling:
		d.AECheck = probe.AECheckCalling
	case sawCalled:
		d.AECheck = probe.AECheckCalled
	}
	return a
}
