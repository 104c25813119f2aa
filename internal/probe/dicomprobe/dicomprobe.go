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
	// MemoryBudget bounds, in bytes, the memory of every host this Prober probes at once (a
	// scan's hosts: the budget is process-wide when one Prober serves the scan); default
	// DefaultMemoryBudget, at least MinMemoryBudget. The state counting keeps (the keys that tell
	// a host's studies apart, date samples, studies waiting for SERIES/IMAGE queries) may take
	// 3/8 of it, the rest being the garbage collector's room and connection buffers; 1/8 of that
	// share is kept for hosts that hold little. A host whose count would take more than the
	// budget gives has its count closed there, as a capped lower bound; the other hosts go on.
	// The process should also make it the Go runtime's soft memory limit (debug.SetMemoryLimit),
	// so that the collector works harder before the heap outgrows it.
	MemoryBudget int64
}

// Prober probes DICOM services. It is safe for concurrent use.
type Prober struct {
	cfg Config
	mem *memBudget // the counting state of every host probed at once
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
	if cfg.MemoryBudget <= 0 {
		cfg.MemoryBudget = DefaultMemoryBudget
	}
	cfg.MemoryBudget = max(cfg.MemoryBudget, MinMemoryBudget)
	return &Prober{cfg: cfg, mem: newMemBudget(cfg.MemoryBudget)}
}

// contexts are the presentation contexts every probe association proposes: enough to learn which
// services the server offers, in one association. Proposing a context moves no data.
var contexts = dimse.Propose(dimse.Verification, dimse.StudyRootFind, dimse.PatientRootFind, dimse.StudyRootGet, dimse.StudyRootMove)

// Probe probes t and returns its result. It never returns an error: failures are data. It is a
// Session's steps as deep as Config.Depth asks: Connect, Associate, Echo, then Count and
// Retrieve, ending with Close.
func (p *Prober) Probe(ctx context.Context, t targets.Target) probe.Result {
	s := p.NewSession(t)
	defer s.Close(ctx)
	if s.Connect(ctx) && p.cfg.Depth >= DepthAssociate &&
		s.Associate(ctx) && p.cfg.Depth >= DepthEcho &&
		s.Echo(ctx) && p.cfg.Depth >= DepthQuery &&
		s.Count(ctx) {
		s.Retrieve(ctx)
	}
	return s.Result()
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
