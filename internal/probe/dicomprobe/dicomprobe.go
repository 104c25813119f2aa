// Package dicomprobe probes one host:port for a DICOM service (PS3.7, PS3.8): it connects,
// requests an association (guessing the called AE title from a dictionary when the server checks
// it), classifies the answer, verifies with C-ECHO, and releases; one association at a time, each
// socket closed as soon as its reply is read. It returns the SPEC's result record.
//
// It never sends a patient-level query key, never stores, and identifies itself as pacswatch.
package dicomprobe

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/targets"
	"github.com/pacswatch/pacswatch/internal/version"
)

// Depth says how far a probe goes (SPEC --depth).
type Depth int

// Depths, in order.
const (
	DepthConnect   Depth = iota // TCP connect only
	DepthAssociate              // A-ASSOCIATE-RQ, then release
	DepthEcho                   // and C-ECHO
	DepthQuery                  // and count what C-FIND shows (the default)
)

var depthNames = []string{"connect", "associate", "echo", "query"}

func (d Depth) String() string {
	if d >= 0 && int(d) < len(depthNames) {
		return depthNames[d]
	}
	return "unknown"
}

// ParseDepth parses a --depth value.
func ParseDepth(s string) (Depth, error) {
	for i, n := range depthNames {
		if s == n {
			return Depth(i), nil
		}
	}
	return 0, errors.New(`dicomprobe: depth must be one of connect, associate, echo, query`)
}

// Config configures a Prober. The zero value of each field has the documented default.
type Config struct {
	CallingAE  string        // default version.CallingAE
	CalledAE   string        // fixed called AE title; empty: GenericAE, then the dictionary
	Dict       Dict          // default DefaultDict()
	MaxAETries int           // associations per target while guessing the called AE; default 8
	Depth      Depth         // default DepthQuery (the zero value is DepthConnect: set it)
	Timeout    time.Duration // per step (connect, TLS handshake, each PDU exchange); default 5s
	TLS        TLSMode       // DICOM TLS: auto (default), on or off
	// Dial opens the TCP connection; default a net.Dialer. Tests and the sim inject theirs.
	Dial   func(ctx context.Context, network, addr string) (net.Conn, error)
	Logger *slog.Logger // -v logs each step; nil: discard
	Now    func() time.Time

	// Secret keys the HMAC-SHA-256 of study UIDs (SPEC: UIDs kept only as a keyed hash, for
	// deduplication); the store's per-database secret. Nil: a random key per Prober.
	Secret []byte
	// QueryBudget bounds the C-FIND requests spent on one host at DepthQuery (the study query,
	// its date slices, and the series/image queries that count instances); default 2000.
	QueryBudget int
	// VerifyRetrieve proves retrieval by starting a C-GET of one instance and aborting as soon as
	// its first bytes arrive (SPEC --verify-retrieve). Off: only harmless tests (C-GET and C-MOVE
	// that match nothing or name no known destination).
	VerifyRetrieve bool
}

// Prober probes DICOM services. It is safe for concurrent use.
type Prober struct {
	cfg Config
}

var _ probe.Prober = (*Prober)(nil)

// New returns a Prober with cfg's defaults filled in.
func New(cfg Config) *Prober {
	if cfg.CallingAE == "" {
		cfg.CallingAE = version.CallingAE
	}
	if cfg.Dict == nil {
		cfg.Dict = DefaultDict()
	}
	if cfg.MaxAETries <= 0 {
		cfg.MaxAETries = 8
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Dial == nil {
		var d net.Dialer
		cfg.Dial = d.DialContext
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Prober{cfg: cfg}
}

// contexts are the presentation contexts every probe association proposes: enough to learn which
// services the server offers, in one association. Proposing a context moves no data.
var contexts = dimse.Propose(dimse.Verification, dimse.StudyRootFind, dimse.PatientRootFind, dimse.StudyRootGet, dimse.StudyRootMove)

// Probe probes t and returns its result. It never returns an error: failures are data.
func (p *Prober) Probe(ctx context.Context, t targets.Target) probe.Result {
	r := probe.Result{IP: t.Addr, Port: t.Port, Time: p.cfg.Now().UTC()}
	log := p.cfg.Logger.With("target", t.String())
	addr := t.String()

	conn, err := p.dial(ctx, addr)
	if err != nil {
		r.Status, r.Error = probe.ClassifyConnect(err)
		log.Debug("connect", "status", r.Status, "error", r.Error)
		return r
	}
	r.Status = probe.StatusOpen
	if p.cfg.Depth == DepthConnect {
		conn.Close()
		return r
	}

	d := &probe.DICOM{CallingAE: p.cfg.CallingAE, AECheck: probe.AECheckUnknown}
	r.DICOM = d
	r.Exposure = &probe.Exposure{Level: probe.LevelProtected}

	// DICOM TLS (PS3.15 Annex B.1): first on the TLS port, or always with --tls on; under auto a
	// peer that does not answer plain DICOM gets a TLS handshake too.
	useTLS := p.cfg.TLS == TLSOn || p.cfg.TLS == TLSAuto && t.Port == TLSPort
	if useTLS {
		tc, cert, err := p.handshake(ctx, conn)
		switch {
		case err == nil:
			conn, d.TLS, d.TLSCert = tc, true, cert
		case p.cfg.TLS == TLSOn:
			r.DICOM, r.Exposure.Level, r.Error = nil, probe.LevelNotDICOM, "tls handshake failed"
			return r
		default: // auto: the TLS port may speak plain DICOM
			useTLS = false
			if conn, err = p.dial(ctx, addr); err != nil {
				r.Error = errorText(err)
				return r
			}
		}
	}

	if a := p.associateAny(ctx, t, conn, useTLS, &r, log); a != nil {
		p.examine(ctx, a, &r, log)
	}
	return r
}

// associateAny requests an association over conn (nil: a new connection) with each candidate
// called AE title in turn, until one is accepted or refused for another reason than the called
// AE title; under TLSAuto a peer that does not answer plain DICOM is tried over TLS once. It
// records the answers in r and returns the accepted association, or nil.
func (p *Prober) associateAny(ctx context.Context, t targets.Target, conn net.Conn, useTLS bool, r *probe.Result, log *slog.Logger) *ul.Assoc {
	d, addr := r.DICOM, t.String()
	var err error
	candidates := []string{p.cfg.CalledAE}
	if p.cfg.CalledAE == "" {
		candidates = p.cfg.Dict.Candidates(t.Port, p.cfg.MaxAETries)
	}
	var (
		a          *ul.Assoc
		sawCalled  bool // some candidate was refused as "called-AE-title-not-recognized"
		sawCalling bool // some candidate was refused as "calling-AE-title-not-recognized"
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
		switch {
		case err == nil:
		case errors.As(err, &rj):
			d.Association = probe.AssociationRejected
			d.Reject = &probe.Reject{Result: int(rj.RJ.Result), Source: int(rj.RJ.Source), Reason: int(rj.RJ.Reason), Meaning: rj.RJ.Meaning()}
			if rj.RJ.Source == 1 && rj.RJ.Reason == 7 {
				sawCalled = true
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
			if i == 0 {
				// Nothing DICOM-shaped came back at all (silence, or a close): not DICOM, as far as we can tell.
				r.DICOM = nil
				r.Exposure.Level = probe.LevelNotDICOM
				return nil
			}
		}
		break
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

// examine checks an accepted association as deep as Config.Depth asks: the peer's identity and
// services, C-ECHO, then what C-FIND shows; it closes the association, releasing it when it is
// still up.
func (p *Prober) examine(ctx context.Context, a *ul.Assoc, r *probe.Result, log *slog.Logger) {
	d := r.DICOM
	defer a.Close()
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

	if p.cfg.Depth >= DepthEcho {
		if _, ok := a.Context(dimse.Verification); ok {
			sctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
			st, err := dimse.Echo(sctx, a)
			cancel()
			log.Debug("c-echo", "status", st, "error", probe.SafeError(err))
			var ab *ul.AbortedError
			switch {
			case errors.As(err, &ab):
				d.Association = probe.AssociationAborted
				r.Exposure.Level = probe.LevelProtected
				r.Error = "c-echo: " + abortText(ab)
				return
			case err != nil:
				r.Error = errorText(err)
				r.Error = "c-echo: " + r.Error
				r.Exposure.Level = probe.LevelProtected
				return
			}
			d.Services.Echo = st == dimse.Success
		}
	}
	if p.cfg.Depth >= DepthQuery {
		if !p.measure(ctx, a, r) {
			return // the association ended (aborted) while measuring
		}
	}
	rctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	if err := a.Release(rctx); err != nil {
		log.Debug("release", "error", probe.SafeError(err))
	}
}

// TLSMode says when the probe speaks DICOM over TLS (SPEC --tls).
type TLSMode int

// TLS modes.
const (
	TLSAuto TLSMode = iota // TLS on TLSPort, and on a peer that does not answer plain DICOM
	TLSOn                  // TLS only
	TLSOff                 // plain DICOM only
)

// TLSPort is the port registered for DICOM over TLS (PS3.15 Annex B.1).
const TLSPort = 2762

// ParseTLSMode parses a --tls value.
func ParseTLSMode(s string) (TLSMode, error) {
	switch s {
	case "auto":
		return TLSAuto, nil
	case "on":
		return TLSOn, nil
	case "off":
		return TLSOff, nil
	}
	return 0, errors.New("dicomprobe: tls must be auto, on or off")
}

// open connects, and shakes hands when useTLS; the TLS facts were recorded by the first handshake.
func (p *Prober) open(ctx context.Context, addr string, useTLS bool) (net.Conn, error) {
	conn, err := p.dial(ctx, addr)
	if err != nil || !useTLS {
		return conn, err
	}
	tc, _, err := p.handshake(ctx, conn)
	return tc, err
}

// handshake runs a TLS client handshake over conn within one step's timeout and returns the
// server certificate's facts. The certificate is not verified: pacswatch fingerprints, and old
// archives speak old TLS, so versions down to 1.0 are offered. On error conn is closed.
func (p *Prober) handshake(ctx context.Context, conn net.Conn) (net.Conn, *probe.TLSCert, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10}) //nolint:gosec // fingerprinting, not trusting
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, nil, err
	}
	st := tc.ConnectionState()
	cert := &probe.TLSCert{Version: tls.VersionName(st.Version)}
	if len(st.PeerCertificates) > 0 {
		c := st.PeerCertificates[0]
		cert.Subject, cert.Issuer, cert.NotAfter = c.Subject.String(), c.Issuer.String(), c.NotAfter.UTC()
		cert.SelfSigned = bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
	}
	return tc, cert, nil
}

// isDICOMAnswer reports whether err is a DICOM answer (a rejection or an abort).
func isDICOMAnswer(err error) bool {
	var rj *ul.RejectedError
	var ab *ul.AbortedError
	return errors.As(err, &rj) || errors.As(err, &ab)
}

// dial connects within one step's timeout.
func (p *Prober) dial(ctx context.Context, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	return p.cfg.Dial(ctx, "tcp", addr)
}

// associate requests an association over conn; ul closes conn on any failure.
func (p *Prober) associate(ctx context.Context, conn net.Conn, called string) (*ul.Assoc, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	return ul.NewClient(ctx, conn, ul.Config{
		CalledAE:  called,
		CallingAE: p.cfg.CallingAE,
		Contexts:  contexts,
	})
}

// notDICOM reports whether err shows that the peer answered with something that is not an
// Upper Layer PDU (an HTTP or SSH banner, say).
func notDICOM(err error) bool {
	return errors.Is(err, ul.ErrUnknownPDUType) || errors.Is(err, ul.ErrMalformed) ||
		errors.Is(err, ul.ErrUnexpectedPDU) || errors.Is(err, ul.ErrPDUTooLarge)
}
