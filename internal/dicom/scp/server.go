// Package scp is pacswatch's DICOM SCP: an acceptor of the Upper Layer of
// PS3.8 with an AE title policy, the Verification service and the
// Query/Retrieve services of PS3.4 Annex C (C-FIND, C-GET and C-MOVE in the
// Patient Root and Study Root information models, with C-CANCEL), a C-STORE
// SCP that discards what it receives, DICOM TLS (PS3.15 Annex B.1), and
// hostile personalities that break the protocol on purpose. Its archive is a
// Tree of synthetic studies: it holds no real patient data.
//
// The simulator (package sim) runs fleets of these servers, and tests run
// them through package dicomtest, a thin wrapper that ties a Server to a
// test's lifetime. A Server serves one net.Listener with a single accept loop
// and one goroutine per open connection, so that thousands of idle servers
// fit in one process.
package scp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

// Defaults of Config.
const (
	DefaultAETitle = "DICOMTEST"
	DefaultTimeout = 30 * time.Second
	// ImplementationClassUID and ImplementationVersionName identify the
	// server on the wire unless Config says otherwise (PS3.7 §D.3.3.2): a
	// "2.25." UID (PS3.5 §B.2) of its own, not pacswatch's scanner's. The
	// values are those of the server's first home, package dicomtest, kept
	// so that simulated fleets answer as before.
	ImplementationClassUID    = "2.25.202402412705105995942044161209944175494"
	ImplementationVersionName = "DICOMTEST"
)

// Config configures a Server. The zero value is an open archive with an
// empty tree that answers every service to anyone.
type Config struct {
	// AETitle is the server's AE title; default DefaultAETitle. It is the
	// title CheckCalled compares with and the value of RetrieveAETitle.
	AETitle string
	// CheckCalled rejects an association whose called AE title is not
	// AETitle (compared exactly) with CalledReject.
	CheckCalled bool
	// AllowedCalling, when not empty, lists the calling AE titles accepted;
	// others are rejected with CallingReject. The called AE title is checked
	// first.
	AllowedCalling []string
	// CalledReject and CallingReject are the A-ASSOCIATE-RJ sent for a
	// refused called or calling AE title; defaults result 1 (permanent),
	// source 1 (service-user), reason 7 (called AE title not recognized) and
	// reason 3 (calling AE title not recognized), as Orthanc sends them
	// (dcmqrscp sends reason 7 for both).
	CalledReject, CallingReject ul.AAssociateRJ

	// Refused lists the services refused, as Refusal says; the zero value
	// refuses none. Orthanc's defaults refuse Find, Get and Move to AEs it
	// does not know.
	Refused Services
	// Refusal says how a refused service is refused; default RefuseAbort.
	Refusal Refusal

	// Tree is the archive; nil is an empty one.
	Tree *Tree
	// ComputedCounts answers the NumberOfPatientRelatedStudies,
	// NumberOfStudyRelatedSeries, NumberOfStudyRelatedInstances,
	// NumberOfSeriesRelatedInstances and ModalitiesInStudy keys when they
	// are requested, as Orthanc does; false omits them, as dcmqrscp does.
	ComputedCounts bool
	// Chatty adds SpecificCharacterSet, InstitutionName and PatientName to
	// every C-FIND response, requested or not, as Orthanc does.
	Chatty bool
	// LimitFind, when positive, ends a C-FIND with Success after that many
	// matches, as Orthanc's LimitFindResults does.
	LimitFind int
	// MoveDestinations maps the AE titles a C-MOVE may name to their
	// host:port. Any other destination is refused with 0xA801.
	MoveDestinations map[string]string

	// TLS, when set, makes the server speak DICOM over TLS: every
	// connection starts with a TLS handshake.
	TLS *tls.Config
	// Hostile makes the server misbehave; default HostileNone.
	Hostile Hostile
	// Latency delays the A-ASSOCIATE-AC or -RJ and the first response to
	// each request: a slow server thinks, then streams.
	Latency time.Duration
	// Timeout bounds each wait for the peer, and each write; default
	// DefaultTimeout. A connection idle that long is closed.
	Timeout time.Duration
	// MaxPDU is the maximum P-DATA-TF length the server advertises; default
	// ul.DefaultMaxPDU.
	MaxPDU uint32
	// ImplementationClassUID and ImplementationVersionName identify the
	// server in its A-ASSOCIATE-AC; defaults ImplementationClassUID and
	// ImplementationVersionName of this package.
	ImplementationClassUID, ImplementationVersionName string
}

// Services names DIMSE services.
type Services struct {
	Echo, Find, Get, Move, Store bool
}

// Refusal is how a server refuses a service.
type Refusal int

// Refusals.
const (
	// RefuseAbort accepts the association and its presentation contexts,
	// then answers a request for the service with an A-ABORT (source 0,
	// reason 0), as Orthanc does for an AE it does not know.
	RefuseAbort Refusal = iota
	// RefuseStatus answers the request with the failure status 0x0124
	// (refused: not authorized).
	RefuseStatus
	// RefuseContext refuses the service's presentation contexts with result
	// 3 (abstract syntax not supported).
	RefuseContext
)

func (r Refusal) String() string {
	switch r {
	case RefuseAbort:
		return "abort"
	case RefuseStatus:
		return "status"
	case RefuseContext:
		return "context"
	}
	return fmt.Sprintf("Refusal(%d)", int(r))
}

// Stats counts what a server has seen since it started.
type Stats struct {
	Connections  int64 // TCP connections accepted
	Active       int64 // connections being served now
	Associations int64 // A-ASSOCIATE-ACs sent
	Rejected     int64 // A-ASSOCIATE-RJs sent
	Aborted      int64 // associations ended by an A-ABORT, sent or received
	Echo         int64 // C-ECHO-RQs received
	Find         int64 // C-FIND-RQs received
	Get          int64 // C-GET-RQs received
	Move         int64 // C-MOVE-RQs received
	Store        int64 // C-STORE-RQs received, sub-operations not included
	Cancels      int64 // C-CANCEL-RQs received
}

type stats struct {
	connections, active, associations, rejected, aborted atomic.Int64
	echo, find, get, move, store, cancels                atomic.Int64
}

// Server is an in-process DICOM SCP. Its methods are safe for concurrent use.
type Server struct {
	cfg    Config
	ctx    context.Context // done when the server is closed
	cancel context.CancelFunc
	st     stats

	mu      sync.Mutex // protects the fields below
	ln      net.Listener
	conns   map[net.Conn]struct{}
	serving bool
	closed  bool

	wg sync.WaitGroup // Serve's loop and the connection handlers
}

// ErrServing reports a second call to Serve.
var ErrServing = errors.New("scp: server already serving")

// New returns a server with cfg's defaults filled in; Serve starts it.
func New(cfg Config) *Server {
	if cfg.AETitle == "" {
		cfg.AETitle = DefaultAETitle
	}
	if cfg.CalledReject == (ul.AAssociateRJ{}) {
		cfg.CalledReject = ul.AAssociateRJ{Result: 1, Source: 1, Reason: 7}
	}
	if cfg.CallingReject == (ul.AAssociateRJ{}) {
		cfg.CallingReject = ul.AAssociateRJ{Result: 1, Source: 1, Reason: 3}
	}
	if cfg.Tree == nil {
		cfg.Tree = &Tree{}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxPDU == 0 {
		cfg.MaxPDU = ul.DefaultMaxPDU
	}
	if cfg.ImplementationClassUID == "" {
		cfg.ImplementationClassUID = ImplementationClassUID
	}
	if cfg.ImplementationVersionName == "" {
		cfg.ImplementationVersionName = ImplementationVersionName
	}
	s := &Server{cfg: cfg}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Serve accepts connections on l and serves them until ctx is done or Close
// is called, which both close the server, l and every connection. It
// returns nil then, and an error when l fails otherwise. Serve may be called
// once.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		l.Close()
		return nil
	case s.serving:
		s.mu.Unlock()
		return ErrServing
	}
	s.ln, s.serving = l, true
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()

	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("scp: accept: %w", err)
			}
			// Out of file descriptors and the like: wait and retry.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			if !sleep(s.ctx, backoff) {
				return nil
			}
			continue
		}
		backoff = 0
		if !s.track(nc, true) {
			nc.Close()
			return nil
		}
		go s.handle(nc)
	}
}

// Start serves l as Serve does, in a goroutine of its own, and returns at
// once: Addr answers l's address from then on. The channel receives Serve's
// result once the server has ended.
func (s *Server) Start(ctx context.Context, l net.Listener) <-chan error {
	s.mu.Lock()
	if s.ln == nil {
		s.ln = l
	}
	s.mu.Unlock()
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, l) }()
	return errc
}

// track registers a connection for Close to close; handler says it is
// served by a handler goroutine that Close waits for. It reports false when
// the server is closed.
func (s *Server) track(c net.Conn, handler bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[net.Conn]struct{})
	}
	s.conns[c] = struct{}{}
	if handler {
		s.wg.Add(1)
	}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops the server: it closes the listener and every connection, and
// waits for their handlers to end. Calling it again does nothing more.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		s.cancel()
		if s.ln != nil {
			s.ln.Close()
		}
		for c := range s.conns {
			c.Close()
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Addr returns the address the server listens on, or "" before Serve.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	return Stats{
		Connections:  s.st.connections.Load(),
		Active:       s.st.active.Load(),
		Associations: s.st.associations.Load(),
		Rejected:     s.st.rejected.Load(),
		Aborted:      s.st.aborted.Load(),
		Echo:         s.st.echo.Load(),
		Find:         s.st.find.Load(),
		Get:          s.st.get.Load(),
		Move:         s.st.move.Load(),
		Store:        s.st.store.Load(),
		Cancels:      s.st.cancels.Load(),
	}
}
