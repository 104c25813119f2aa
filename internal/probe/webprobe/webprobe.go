// Package webprobe fingerprints the HTTP front ends of PACS on one host:port,
// as the SPEC's --web flag asks: the Orthanc REST API, DICOMweb QIDO-RS
// (PS3.18 §10.6), dcm4chee-arc-light and dcm4chee 2.x, the OHIF viewer and
// Dicoogle. For each front end it finds, it says which product and version it
// is, whether it asks for credentials, and, where the product offers a count
// that lists no patient, how many studies and instances it holds.
//
// It speaks HTTPS first, then HTTP, with certificate checks off (it only
// fingerprints). Every response is untrusted: each request has a deadline,
// bodies are read through io.LimitReader (after gzip decoding), JSON is decoded
// into small structs only, and redirects are followed at most MaxRedirects
// times and only to the same scheme, host and port. A DICOMweb answer is
// checked by its first bytes and discarded: its attributes carry patient names.
//
// No credentials are ever sent unless Config.DefaultCreds is set, and then only
// the documented default login of the product already identified (SPEC
// --default-creds).
package webprobe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/targets"
	"github.com/pacswatch/pacswatch/internal/version"
)

// Defaults of the Config fields left zero, and fixed bounds.
const (
	DefaultTimeout = 5 * time.Second
	DefaultMaxBody = 1 << 20 // bytes of one response body, after decoding
	MaxRedirects   = 3       // redirects followed per request, same scheme, host and port only
	maxHeaderBytes = 64 << 10
	maxHTML        = 64 << 10 // bytes of an HTML page searched for its title
	maxQIDO        = 64       // bytes of a QIDO-RS answer looked at: its shape, never its attributes
)

// Product names put in probe.Web.Product.
const (
	ProductOrthanc     = "Orthanc"
	ProductDcm4cheeArc = "dcm4chee-arc-light"
	ProductDcm4chee2   = "dcm4chee 2.x"
	ProductOHIF        = "OHIF"
	ProductDicoogle    = "Dicoogle"
)

// Config configures a Prober. The zero value of each field has the documented default.
type Config struct {
	// Timeout bounds each HTTP request, from connect to the last body byte. Default DefaultTimeout.
	Timeout time.Duration
	// DefaultCreds tries the documented default login of an identified product that asks for
	// credentials (SPEC --default-creds): Orthanc's orthanc:orthanc (HTTP Basic) and dcm4chee
	// 2.x's admin:admin (its login form). Off, no credentials are ever sent.
	DefaultCreds bool
	// MaxBody caps the bytes read of any response body, after gzip decoding. Default DefaultMaxBody.
	MaxBody int64
	// UserAgent is sent with every request. Default version.UserAgent.
	UserAgent string
	// Dial opens TCP connections; default a net.Dialer. Tests and the sim inject theirs.
	Dial   func(ctx context.Context, network, addr string) (net.Conn, error)
	Logger *slog.Logger // each request at debug level (method, path, status, kind of error; never a body); nil: discard
	Now    func() time.Time
}

// Prober fingerprints web front ends. It is safe for concurrent use.
type Prober struct {
	cfg Config
}

var _ probe.Prober = (*Prober)(nil)

// New returns a Prober with cfg's defaults filled in.
func New(cfg Config) *Prober {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = version.UserAgent
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

// Probe fingerprints the web server on t and returns its result: Status (closed, filtered, open
// or error), and for an open port an Exposure at probe.LevelNotDICOM and one probe.Web per
// front end found, or a single record with no product when the port speaks HTTP but no known
// PACS front end answered. Counts beyond the plausibility bounds are kept apart: zero in the
// probe.Web, told in an implausible caveat of the Exposure (probe.BoundWeb). A port that is open but does not speak HTTP has no Web and Error
// "not http". Probe never returns an error: failures are data.
func (p *Prober) Probe(ctx context.Context, t targets.Target) (r probe.Result) {
	r = probe.Result{IP: t.Addr, Port: t.Port}
	defer func() { r.Time = p.cfg.Now().UTC() }()
	s := p.newSession(netip.AddrPortFrom(t.Addr, t.Port), t.Host)
	defer s.close()

	root, err := s.start(ctx)
	var de *dialError
	if errors.As(err, &de) && !probe.ResetOnConnect(de.err) {
		r.Status, r.Error = probe.ClassifyConnect(de.err)
		return r
	}
	r.Status = probe.StatusOpen
	r.Exposure = &probe.Exposure{Level: probe.LevelNotDICOM}
	if err != nil {
		switch _, r.Error = probe.Classify(err); {
		case probe.Known(err):
		case strings.Contains(err.Error(), "server closed idle connection"):
			// net/http's unexported errServerClosedIdle: the peer closed a fresh connection
			// before answering, which Classify calls EOF when the read loses the race.
			r.Error = "connection closed by peer"
		default:
			r.Error = "not http"
		}
		return r
	}
	r.Web = s.identify(ctx, root)
	for i := range r.Web {
		for _, c := range probe.BoundWeb(&r.Web[i]) {
			r.Exposure.AddCaveat(c.Kind, c.Reason)
		}
	}
	return r
}

// A session is one probe of one host:port: its own transport (one connection at a time, closed
// at the end), and the scheme that answered.
type session struct {
	p      *Prober
	addr   netip.AddrPort
	host   string // Host header: the target's hostname and port, else its address
	tr     *http.Transport
	client *http.Client
	scheme string      // "https" or "http", set by start
	tlsUp  atomic.Bool // a TLS handshake completed
	dialed atomic.Bool // a TCP connection opened
	log    *slog.Logger
}

// dialError marks a failure to open the TCP connection, as opposed to one after it opened.
type dialError struct{ err error }

func (e *dialError) Error() string { return "dial: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

func (p *Prober) newSession(addr netip.AddrPort, hostname string) *session {
	s := &session{p: p, addr: addr, log: p.cfg.Logger.With("target", addr.String())}
	s.host = addr.String()
	serverName := ""
	if hostname != "" {
		s.host = net.JoinHostPort(hostname, strconv.Itoa(int(addr.Port())))
		serverName = hostname
	}
	timeout := p.cfg.Timeout
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		c, err := p.cfg.Dial(ctx, network, addr.String()) // never another address, whatever a URL says
		if err != nil {
			return nil, &dialError{err}
		}
		s.dialed.Store(true)
		return c, nil
	}
	tlsConfig := &tls.Config{
		InsecureSkipVerify: true, // we only fingerprint; the certificate is not what is measured here
		ServerName:         serverName,
		MinVersion:         tls.VersionTLS10, // old PACS front ends
	}
	s.tr = &http.Transport{
		Proxy:       nil, // never through a proxy from the environment
		DialContext: dial,
		DialTLSContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			c, err := dial(ctx, network, a)
			if err != nil {
				return nil, err
			}
			hctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			tc := tls.Client(c, tlsConfig)
			if err := tc.HandshakeContext(hctx); err != nil {
				c.Close()
				return nil, fmt.Errorf("tls handshake: %w", err)
			}
			s.tlsUp.Store(true)
			return tc, nil
		},
		ResponseHeaderTimeout:  timeout,
		MaxResponseHeaderBytes: maxHeaderBytes,
		MaxConnsPerHost:        1, // polite: one connection at a time
		MaxIdleConnsPerHost:    1,
		IdleConnTimeout:        timeout,
	}
	s.client = &http.Client{Transport: s.tr, CheckRedirect: sameOrigin}
	return s
}

// sameOrigin is the redirect policy: at most MaxRedirects, and only to the scheme, host and port
// of the first request (named by its address or by the Host it was sent with). Otherwise the
// redirect itself is the answer. Connections go to the target's address whatever a URL says.
func sameOrigin(req *http.Request, via []*http.Request) error {
	first := via[0]
	sameHost := req.URL.Host == first.URL.Host || req.URL.Host == first.Host
	if len(via) > MaxRedirects || req.URL.Scheme != first.URL.Scheme || !sameHost {
		return http.ErrUseLastResponse
	}
	return nil
}

func (s *session) close() { s.tr.CloseIdleConnections() }

// start fetches "/" over HTTPS, then over HTTP when no TLS handshake completed, and keeps the
// scheme that answered. A *dialError means the port is not open.
func (s *session) start(ctx context.Context) (*response, error) {
	s.scheme = "https"
	root, err := s.get(ctx, "/", nil, maxHTML)
	var de *dialError
	if err != nil && !s.dialed.Load() && !errors.As(err, &de) {
		// The request's deadline (or ctx) ended while its connection was being opened: the
		// transport then reports that, not the dial's error. No connection ever opened, so the
		// port did not answer: a dial failure (filtered), not an open port.
		err = &dialError{err}
	}
	if err == nil || ctx.Err() != nil || s.tlsUp.Load() {
		return root, err
	}
	if errors.As(err, &de) {
		return nil, err
	}
	s.scheme = "http"
	root, err = s.get(ctx, "/", nil, maxHTML)
	if errors.As(err, &de) {
		return nil, de.err // the port was open a moment ago: not a dial failure of the target
	}
	return root, err
}

// url returns the URL of path (which may carry a query) on the target: scheme://ip:port/path,
// never with credentials.
func (s *session) url(path string) string {
	return s.scheme + "://" + s.addr.String() + path
}

// A credential is a product's documented default login.
type credential struct{ user, pass string }

// response is what is kept of an HTTP response: at most the requested number of body bytes.
type response struct {
	status int
	header http.Header
	body   []byte
}

// get fetches path with GET, sending cred only if it is not nil (the caller passes one only
// under DefaultCreds), and reads at most limit body bytes (and never more than MaxBody).
func (s *session) get(ctx context.Context, path string, cred *credential, limit int64) (*response, error) {
	return s.do(ctx, s.client, http.MethodGet, path, nil, cred, "", limit)
}

func (s *session) do(ctx context.Context, c *http.Client, method, path string, body url.Values, cred *credential, accept string, limit int64) (*response, error) {
	ctx, cancel := context.WithTimeout(ctx, s.p.cfg.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(body.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, s.url(path), rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Host = s.host
	req.Header.Set("User-Agent", s.p.cfg.UserAgent)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cred != nil {
		req.SetBasicAuth(cred.user, cred.pass)
	}
	resp, err := c.Do(req)
	if err != nil {
		s.log.Debug("http", "method", method, "path", path, "error", safeError(err))
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, min(limit, s.p.cfg.MaxBody)))
	s.log.Debug("http", "method", method, "path", path, "status", resp.StatusCode, "bytes", len(b), "error", safeError(err))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// safeError is err as the log may show it: its kind, never bytes the server sent (Go's HTTP
// errors quote malformed responses).
func safeError(err error) string {
	if err == nil {
		return ""
	}
	_, text := probe.Classify(err)
	return text
}
