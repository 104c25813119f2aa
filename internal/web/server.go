package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pacswatch/pacswatch/internal/geo"
	"github.com/pacswatch/pacswatch/internal/report"
	"github.com/pacswatch/pacswatch/internal/store"
)

// ErrNeedToken is returned by CheckListen for an address beyond loopback without a token.
var ErrNeedToken = errors.New("web: listening beyond loopback needs a token")

// Config configures a Server.
type Config struct {
	Store store.Reader // read only; required
	Geo   *geo.DB      // places systems in countries and regions; nil: no map, no places
	ASN   *geo.ASNDB   // places systems in autonomous systems; nil: no ASN table

	Thresholds report.Thresholds // the trend rule; zero means report's defaults

	// Token, when set, is required on every request (Authorization: Bearer, or basic
	// authentication with the token as password), compared in constant time, never logged.
	Token string

	Logger   *slog.Logger         // access and error log; nil discards
	Registry *prometheus.Registry // where the metrics live (served on /metrics); nil: a new one

	// Wait is how long a page waits for a report being built before it answers with a page that
	// says so and refreshes itself; default 300 ms.
	Wait time.Duration
	// Fresh is how long an unfinished run's report is kept before it is built again; default 10 s.
	Fresh time.Duration
	// PageSize is the number of systems per page of a list; default 100, at most 1,000.
	PageSize int
}

// Server is the dashboard: an http.Handler. Close stops the reports it is building.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	cache   *cache
	metrics *metrics
	token   [32]byte // SHA-256 of the token: compared in constant time whatever its length
	stop    context.CancelFunc
}

var _ http.Handler = (*Server)(nil)

// Defaults and limits of a Config.
const (
	defaultWait     = 300 * time.Millisecond
	defaultFresh    = 10 * time.Second
	defaultPageSize = 100
	maxPageSize     = 1000
)

// New returns a Server over cfg.Store.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("web: no store")
	}
	if cfg.Thresholds == (report.Thresholds{}) {
		cfg.Thresholds = report.Thresholds{GoodDrop: report.DefaultGoodDrop, UglyRise: report.DefaultUglyRise}
	}
	if err := cfg.Thresholds.Validate(); err != nil {
		return nil, err
	}
	if cfg.Wait <= 0 {
		cfg.Wait = defaultWait
	}
	if cfg.Fresh <= 0 {
		cfg.Fresh = defaultFresh
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = defaultPageSize
	}
	cfg.PageSize = min(cfg.PageSize, maxPageSize)
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, log: log, mux: http.NewServeMux(), stop: stop}
	if cfg.Token != "" {
		s.token = sha256.Sum256([]byte(cfg.Token))
	}
	var err error
	if s.metrics, err = newMetrics(cfg.Registry); err != nil {
		stop()
		return nil, err
	}
	s.cache = newCache(ctx, cfg, s.metrics, log)
	s.routes()
	return s, nil
}

// Close stops the reports and indexes being built; requests waiting for them fail.
func (s *Server) Close() error {
	s.stop()
	return nil
}

// Warm starts building the report of the store's latest run, and reading every run's figures,
// so that the first visitor finds them ready. It returns at once; ctx bounds the reading.
func (s *Server) Warm(ctx context.Context) error {
	scans, err := s.cfg.Store.Scans(ctx)
	if err != nil || len(scans) == 0 {
		return err
	}
	runs := store.Groups(scans)
	s.cache.report(runs[len(runs)-1])
	go func() {
		if _, err := s.cache.runs(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("warm", "err", err)
		}
	}()
	return nil
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /{$}", s.pageIndex)
	m.HandleFunc("GET /scans/{id}", s.pageScan)
	m.HandleFunc("GET /scans/{id}/countries/{cc}", s.pageCountry)
	m.HandleFunc("GET /scans/{id}/hosts", s.pageHosts)
	m.HandleFunc("GET /scans/{id}/changes", s.pageChanges)
	m.HandleFunc("GET /hosts/{ip}", s.pageHost)
	m.HandleFunc("GET /static/style.css", s.static("text/css; charset=utf-8", styleCSS))
	m.HandleFunc("GET /static/icon.svg", s.static("image/svg+xml", iconSVG))
	m.HandleFunc("GET /favicon.ico", s.static("image/svg+xml", iconSVG))
	m.HandleFunc("GET /api/v1/runs", s.apiRuns)
	m.HandleFunc("GET /api/v1/scans/{id}/report", s.apiReport)
	m.HandleFunc("GET /api/v1/scans/{id}/hosts", s.apiHosts)
	m.HandleFunc("GET /api/v1/scans/{id}/changes", s.apiChanges)
	m.HandleFunc("GET /api/v1/hosts/{ip}", s.apiHost)
	m.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{}))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { s.notFound(w, r, "no such page") })
}

// csp allows the server's own stylesheet and icon and nothing else: no script, no frame, no
// form, no connection, and no other origin.
const csp = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// ServeHTTP implements http.Handler: security headers, the token, metrics and the access log
// (method, path, status and time: never a header, so never the token).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	if !s.authorized(r) {
		rec.Header().Set("WWW-Authenticate", `Basic realm="pacswatch", charset="UTF-8"`)
		http.Error(rec, "unauthorized: this dashboard needs its token (Authorization: Bearer TOKEN)", http.StatusUnauthorized)
	} else if r.Method != http.MethodGet && r.Method != http.MethodHead {
		rec.Header().Set("Allow", "GET, HEAD")
		http.Error(rec, "method not allowed: the dashboard is read-only", http.StatusMethodNotAllowed)
	} else {
		s.mux.ServeHTTP(rec, r)
	}
	route := routeOf(r)
	s.metrics.requests.WithLabelValues(route, fmt.Sprint(rec.status)).Inc()
	s.metrics.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	s.log.Info("request", "method", r.Method, "path", capPath(r.URL.Path), "status", rec.status, "ms", time.Since(start).Milliseconds())
}

// authorized reports whether r carries the token, when one is set: "Bearer TOKEN", or basic
// authentication whose password is the token (any user name), so that a browser asks for it.
func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.Token == "" {
		return true
	}
	var given string
	auth := r.Header.Get("Authorization")
	if scheme, rest, ok := strings.Cut(auth, " "); ok && strings.EqualFold(scheme, "Bearer") {
		given = strings.TrimSpace(rest)
	} else if _, pass, ok := r.BasicAuth(); ok {
		given = pass
	} else {
		return false
	}
	sum := sha256.Sum256([]byte(given))
	return subtle.ConstantTimeCompare(sum[:], s.token[:]) == 1
}

// routeOf names a request's route for metrics (a pattern, never a path: bounded labels).
func routeOf(r *http.Request) string {
	if r.Pattern == "" {
		return "other"
	}
	return r.Pattern
}

// capPath caps a path for the log: a request cannot make a huge log line.
func capPath(p string) string {
	const n = 200
	if len(p) > n {
		return p[:n] + "…"
	}
	return p
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// CheckListen refuses to serve beyond loopback without a token (SPEC "serve and watch"): addr
// is host:port as --listen gives it; its host must be a loopback address or "localhost" unless
// token is set. An empty host (every interface) is beyond loopback.
func CheckListen(addr, token string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("web: listen address %q is not host:port", capPath(addr))
	}
	if token != "" || isLoopback(host) {
		return nil
	}
	shown := host
	if shown == "" {
		shown = "every interface"
	}
	return fmt.Errorf("%w: %s is beyond loopback; give --token (or listen on 127.0.0.1)", ErrNeedToken, capPath(shown))
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
