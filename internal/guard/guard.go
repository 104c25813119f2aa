// Package guard is pacswatch's DICOM guard (SPEC "guard"): a proxy in front of a PACS that
// cannot protect itself. It accepts DICOM associations (PS3.8) and DICOM TLS (PS3.15 Annex B.1),
// admits only the peers its policy (package policy) allows, refuses with an A-ASSOCIATE-RJ or a
// DIMSE failure status (PS3.7 Annex C) what they may not do, and forwards the rest to the
// upstream archive unchanged: PDUs pass as they come, data sets are never decoded or re-encoded,
// only command sets and C-FIND, C-GET and C-MOVE identifiers are read (and forgotten once
// checked). It writes an audit record per association and per DIMSE request as JSON Lines and,
// optionally, as DICOM audit messages (PS3.15 Annex A.5) over syslog, with no patient data:
// only allow-listed facts (who, from where, service, level, status, counts, bytes).
//
// Every read from either side has a deadline and a byte cap; a client can make the guard hold
// at most one PDU and one identifier in memory per association.
package guard

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/pacswatch/pacswatch/internal/dicom/ul"
	"github.com/pacswatch/pacswatch/internal/guard/policy"
)

// Defaults of Config.
const (
	DefaultDialTimeout  = 10 * time.Second
	DefaultAssocTimeout = 30 * time.Second
	DefaultIdleTimeout  = 10 * time.Minute
	DefaultWriteTimeout = time.Minute
	// DefaultMaxPDU caps any PDU the guard reads, and is the most it lets either side announce.
	DefaultMaxPDU = ul.DefaultMaxReadPDU
)

// Config configures a Guard.
type Config struct {
	// Upstream is the archive's host:port.
	Upstream string
	// UpstreamTLS, when set, speaks DICOM TLS to the upstream with this configuration.
	UpstreamTLS *tls.Config
	// Audit receives the JSON Lines audit records; nil discards them.
	Audit io.Writer
	// Events, when set, also receives every audit record, e.g. to send DICOM audit messages
	// over syslog. It is called synchronously and must not block.
	Events func(Record)
	// Metrics, when set, counts associations, requests and bytes.
	Metrics *Metrics
	// Logger reports the guard's own troubles (upstream unreachable, audit write failures); nil
	// discards them.
	Logger *slog.Logger
	// DialTimeout bounds connecting to the upstream (TLS handshake included); AssocTimeout
	// bounds a client's A-ASSOCIATE-RQ (TLS handshake included) and the upstream's answer;
	// IdleTimeout ends an association on which neither side sent anything for that long;
	// WriteTimeout bounds each write. Zero means the default.
	DialTimeout, AssocTimeout, IdleTimeout, WriteTimeout time.Duration
	// MaxPDU caps the PDUs read from either side; zero means DefaultMaxPDU.
	MaxPDU uint32
	// Splice forwards the data sets of C-STORE and of C-GET's sub-operations from one plain TCP
	// connection to the other without reading them into the guard (splice(2) on Linux): only
	// the PDU and PDV headers are read and checked. Off by default: on loopback with 16 KiB
	// PDUs it costs four system calls a PDU where reading costs one for several, and measured
	// slower (bench/RESULTS.md). TLS connections always take the reading path.
	Splice bool
	// Now returns the time for audit records; nil means time.Now.
	Now func() time.Time
}

// Guard is a running guard. Its methods are safe for concurrent use.
type Guard struct {
	cfg    Config
	pol    atomic.Pointer[policy.Policy]
	audit  *auditLog
	nextID atomic.Uint64

	mu      sync.Mutex // protects the fields below
	active  int
	peers   map[string]*peerState
	lns     map[net.Listener]bool
	conns   map[net.Conn]bool
	closed  bool
	serving sync.WaitGroup
}

// peerState is what the limits of one policy entry count; it outlives reloads, by name.
type peerState struct {
	active int
	lim    *rate.Limiter
}

// New returns a guard that enforces p.
func New(cfg Config, p *policy.Policy) (*Guard, error) {
	if cfg.Upstream == "" {
		return nil, errors.New("guard: no upstream")
	}
	if _, _, err := net.SplitHostPort(cfg.Upstream); err != nil {
		return nil, fmt.Errorf("guard: upstream %q is not host:port", cfg.Upstream)
	}
	if p == nil {
		return nil, errors.New("guard: no policy")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.DialTimeout, DefaultDialTimeout)
	def(&cfg.AssocTimeout, DefaultAssocTimeout)
	def(&cfg.IdleTimeout, DefaultIdleTimeout)
	def(&cfg.WriteTimeout, DefaultWriteTimeout)
	if cfg.MaxPDU == 0 {
		cfg.MaxPDU = DefaultMaxPDU
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	g := &Guard{cfg: cfg, peers: map[string]*peerState{}, lns: map[net.Listener]bool{}, conns: map[net.Conn]bool{}}
	g.audit = &auditLog{w: cfg.Audit, events: cfg.Events, now: cfg.Now, log: cfg.Logger}
	g.pol.Store(p)
	return g, nil
}

// Policy returns the policy in force.
func (g *Guard) Policy() *policy.Policy { return g.pol.Load() }

// SetPolicy puts p in force for the associations that start from now on; those under way keep
// the policy they were admitted with. The limits' counters carry over to entries of the same
// name.
func (g *Guard) SetPolicy(p *policy.Policy) {
	g.pol.Store(p)
	if m := g.cfg.Metrics; m != nil {
		m.reloads.WithLabelValues("ok").Inc()
	}
}

// PolicyRejected records a reload that failed, for metrics and the audit log; the policy in
// force stays.
func (g *Guard) PolicyRejected(err error) {
	if m := g.cfg.Metrics; m != nil {
		m.reloads.WithLabelValues("error").Inc()
	}
	g.cfg.Logger.Warn("policy reload failed; keeping the policy in force", "error", err.Error())
}

// Serve accepts connections on l until ctx is done or Close is called, and serves each in a
// goroutine of its own. A listener made by tls.NewListener serves DICOM TLS: the handshake
// happens before the A-ASSOCIATE-RQ is read, and a verified client certificate is what the
// policy's client_cert entries match. Serve returns nil when stopped, and an error when l fails.
func (g *Guard) Serve(ctx context.Context, l net.Listener) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		l.Close()
		return nil
	}
	g.lns[l] = true
	g.serving.Add(1)
	g.mu.Unlock()
	defer g.serving.Done()
	stop := context.AfterFunc(ctx, func() { g.Close() })
	defer stop()
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if g.isClosed() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("guard: accept: %w", err)
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second) // out of descriptors
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !g.track(c) {
			c.Close()
			return nil
		}
		go func() {
			defer g.untrack(c)
			g.serveConn(ctx, c)
		}()
	}
}

func (g *Guard) track(c net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.conns[c] = true
	g.serving.Add(1)
	return true
}

func (g *Guard) untrack(c net.Conn) {
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
	g.serving.Done()
}

func (g *Guard) isClosed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// Close stops every listener and connection and waits for their goroutines to end.
func (g *Guard) Close() error {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		for l := range g.lns {
			l.Close()
		}
		for c := range g.conns {
			c.Close()
		}
	}
	g.mu.Unlock()
	g.serving.Wait()
	return nil
}

// Active returns the number of associations admitted and not yet ended.
func (g *Guard) Active() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.active
}

// Refusals of the guard's limits, as audit records name them.
const (
	refusedGuardFull = "guard-association-limit"
	refusedPeerFull  = "peer-association-limit"
	refusedPeerRate  = "peer-rate-limit"
)

// acquire takes a place for one association of pe under p's limits, or says which limit refused
// it and with which A-ASSOCIATE-RJ (rejected-transient, service-provider-presentation, local
// limit exceeded or temporary congestion: PS3.8 Table 9-21).
func (g *Guard) acquire(p *policy.Policy, pe *policy.Peer) (release func(), rj *ul.AAssociateRJ, why string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.peers[pe.Name]
	if st == nil {
		st = &peerState{}
		g.peers[pe.Name] = st
	}
	switch {
	case g.active >= p.MaxAssociations:
		return nil, &ul.AAssociateRJ{Result: 2, Source: 3, Reason: 2}, refusedGuardFull
	case st.active >= pe.MaxAssociations:
		return nil, &ul.AAssociateRJ{Result: 2, Source: 3, Reason: 2}, refusedPeerFull
	}
	if pe.Rate > 0 {
		if st.lim == nil || st.lim.Limit() != rate.Limit(pe.Rate) || st.lim.Burst() != pe.Burst {
			st.lim = rate.NewLimiter(rate.Limit(pe.Rate), pe.Burst)
		}
		if !st.lim.Allow() {
			return nil, &ul.AAssociateRJ{Result: 2, Source: 3, Reason: 1}, refusedPeerRate
		}
	}
	g.active++
	st.active++
	if m := g.cfg.Metrics; m != nil {
		m.active.Inc()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			g.active--
			st.active--
			g.mu.Unlock()
			if m := g.cfg.Metrics; m != nil {
				m.active.Dec()
			}
		})
	}, nil, ""
}
