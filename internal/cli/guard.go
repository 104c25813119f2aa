package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/pacswatch/pacswatch/internal/guard"
	"github.com/pacswatch/pacswatch/internal/guard/policy"
	"github.com/pacswatch/pacswatch/internal/guard/syslog"
)

type guardFlags struct {
	listen, listenTLS         string
	tlsCert, tlsKey, clientCA string
	upstream                  string
	upstreamTLS               bool
	upstreamCA, upstreamName  string
	upstreamCert, upstreamKey string
	policy, checkPolicy       string
	audit                     string
	syslogAddr, syslogCA      string
	syslogTLS                 bool
	auditSourceID             string
	metrics                   string
	idleTimeout, assocTimeout time.Duration
}

const guardExamples = `  # Check a policy file
  pacswatch guard --check-policy policy.yaml

  # Guard an Orthanc on this host: clients connect to port 11112, with TLS on 2762
  pacswatch guard --listen :11112 --listen-tls :2762 --tls-cert guard.pem --tls-key guard.key \
      --upstream 127.0.0.1:4242 --policy policy.yaml --audit /var/log/pacswatch-guard.jsonl \
      --metrics 127.0.0.1:9104

  # Reload the policy without dropping associations
  kill -HUP $(pidof pacswatch)`

func newGuardCmd(e *env) *cobra.Command {
	var f guardFlags
	cmd := &cobra.Command{
		Use:   "guard --listen ADDR --upstream HOST:PORT --policy FILE",
		Short: "DICOM proxy that puts TLS, AE/IP allow-lists and audit logs in front of a legacy PACS",
		Long: `DICOM proxy that puts TLS, AE/IP allow-lists and audit logs in front of a legacy PACS.

It accepts DICOM associations on --listen (and DICOM TLS on --listen-tls), admits only the peers
its --policy allows (calling AE title + source network, optionally a client certificate), lets
each use only the services and query levels listed, refuses universal C-FINDs unless allowed, pins
C-MOVE destinations, and limits each peer's associations. Refusals are clean: an
A-ASSOCIATE-RJ with the right reason, or a DIMSE failure status. Admitted traffic goes to
--upstream unchanged.

Every association and every DIMSE request is written to --audit as one JSON line (who, from
where, service, level, status, counts, bytes; never patient data) and, with --syslog, sent as a
DICOM audit message (PS3.15 A.5) over syslog (RFC 5424, TCP or TLS). SIGHUP reloads the policy;
a policy that does not parse is reported and the one in force stays. The policy format is
described by "pacswatch guard --check-policy" on an empty file and in docs/guard.md.`,
		Example: guardExamples,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.checkPolicy != "" {
				return checkPolicy(e, f.checkPolicy)
			}
			return runGuard(cmd.Context(), e, &f)
		},
	}
	fl := cmd.Flags()
	fl.SortFlags = false
	fl.StringVar(&f.checkPolicy, "check-policy", "", "validate the policy `FILE`, print a summary and exit")
	fl.StringVar(&f.policy, "policy", "", "policy `FILE` (YAML)")
	fl.StringVar(&f.listen, "listen", "", "plain DICOM listen address, e.g. :11112")
	fl.StringVar(&f.listenTLS, "listen-tls", "", "DICOM TLS listen address, e.g. :2762 (needs --tls-cert and --tls-key)")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "PEM certificate `FILE` of the TLS listener")
	fl.StringVar(&f.tlsKey, "tls-key", "", "PEM private key `FILE` of the TLS listener")
	fl.StringVar(&f.clientCA, "client-ca", "", "PEM `FILE` of the CAs that sign client certificates (verified when presented)")
	fl.StringVar(&f.upstream, "upstream", "", "the archive's `HOST:PORT`")
	fl.BoolVar(&f.upstreamTLS, "upstream-tls", false, "speak DICOM TLS to the upstream")
	fl.StringVar(&f.upstreamCA, "upstream-ca", "", "PEM `FILE` of the CAs that sign the upstream's certificate (default: the system's)")
	fl.StringVar(&f.upstreamName, "upstream-server-name", "", "name to verify in the upstream's certificate (default: the --upstream host)")
	fl.StringVar(&f.upstreamCert, "upstream-cert", "", "PEM certificate `FILE` the guard presents to the upstream")
	fl.StringVar(&f.upstreamKey, "upstream-key", "", "PEM private key `FILE` the guard presents to the upstream")
	fl.StringVar(&f.audit, "audit", "-", "append JSON Lines audit records to `FILE` (- = stdout)")
	fl.StringVar(&f.syslogAddr, "syslog", "", "send DICOM audit messages to the syslog collector at `HOST:PORT` (TCP)")
	fl.BoolVar(&f.syslogTLS, "syslog-tls", false, "speak TLS to the syslog collector (RFC 5425)")
	fl.StringVar(&f.syslogCA, "syslog-ca", "", "PEM `FILE` of the CAs that sign the collector's certificate")
	fl.StringVar(&f.auditSourceID, "audit-source-id", "", "AuditSourceID of the DICOM audit messages (default: the host name)")
	fl.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics on `ADDR` at /metrics")
	fl.DurationVar(&f.idleTimeout, "idle-timeout", guard.DefaultIdleTimeout, "end an association on which nothing was sent for this long")
	fl.DurationVar(&f.assocTimeout, "assoc-timeout", guard.DefaultAssocTimeout, "bound on a client's association request and the upstream's answer")
	return cmd
}

func checkPolicy(e *env, path string) error {
	p, err := policy.Load(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: valid: %d peers, at most %d associations at once\n", path, len(p.Peers), p.MaxAssociations)
	for _, pe := range p.Peers {
		svcs := make([]string, len(pe.Services))
		for i, s := range pe.Services {
			svcs[i] = string(s)
		}
		fmt.Fprintf(e.stdout, "  %s: %d AE titles from %d networks: %s\n", pe.Name, len(pe.CallingAE), len(pe.Sources), orNone(strings.Join(svcs, ", ")))
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "nothing allowed"
	}
	return s
}

func (f *guardFlags) validate() error {
	switch {
	case f.upstream == "":
		return errors.New("guard needs --upstream HOST:PORT")
	case f.policy == "":
		return errors.New("guard needs --policy FILE (default deny: write the peers you allow)")
	case f.listen == "" && f.listenTLS == "":
		return errors.New("guard needs --listen ADDR, --listen-tls ADDR or both")
	case f.listenTLS != "" && (f.tlsCert == "" || f.tlsKey == ""):
		return errors.New("--listen-tls needs --tls-cert and --tls-key")
	case (f.upstreamCert == "") != (f.upstreamKey == ""):
		return errors.New("--upstream-cert and --upstream-key go together")
	case f.syslogAddr == "" && (f.syslogTLS || f.syslogCA != ""):
		return errors.New("--syslog-tls and --syslog-ca need --syslog HOST:PORT")
	}
	return nil
}

func runGuard(ctx context.Context, e *env, f *guardFlags) error {
	if err := f.validate(); err != nil {
		return err
	}
	pol, err := policy.Load(f.policy)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, nil))
	cfg := guard.Config{Upstream: f.upstream, Logger: logger, IdleTimeout: f.idleTimeout, AssocTimeout: f.assocTimeout}
	if cfg.UpstreamTLS, err = f.upstreamTLSConfig(); err != nil {
		return err
	}
	auditW, closeAudit, err := openAudit(e, f.audit)
	if err != nil {
		return err
	}
	defer closeAudit()
	cfg.Audit = auditW
	if f.syslogAddr != "" {
		w, err := f.syslogWriter(logger)
		if err != nil {
			return err
		}
		defer w.Close()
		src := f.auditSourceID
		if src == "" {
			src, _ = os.Hostname()
		}
		cfg.Events = func(r guard.Record) {
			if msg, alert, ok := guard.DICOMAudit(r, src, f.upstream); ok {
				sev := syslog.SeverityNotice
				if alert {
					sev = syslog.SeverityWarning
				}
				w.Send(syslog.FacilityAuthPriv, sev, "DICOM+RFC3881", msg)
			}
		}
	}
	reg := prometheus.NewRegistry()
	if cfg.Metrics, err = guard.NewMetrics(reg); err != nil {
		return err
	}
	g, err := guard.New(cfg, pol)
	if err != nil {
		return err
	}
	listeners, err := f.listeners()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if f.metrics != "" {
		stop, err := serveMetrics(ctx, f.metrics, reg)
		if err != nil {
			closeAll(listeners)
			return err
		}
		defer stop()
	}
	go reloadOnHUP(ctx, g, f.policy, logger)
	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		logger.Info("guard listening", "addr", l.Addr().String(), "upstream", f.upstream, "peers", len(pol.Peers))
		go func() { errc <- g.Serve(ctx, l) }()
	}
	var first error
	for range listeners {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	g.Close()
	return first
}

// reloadOnHUP reloads the policy on SIGHUP until ctx is done.
func reloadOnHUP(ctx context.Context, g *guard.Guard, path string, logger *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			p, err := policy.Load(path)
			if err != nil {
				g.PolicyRejected(err)
				continue
			}
			g.SetPolicy(p)
			logger.Info("policy reloaded", "file", path, "peers", len(p.Peers))
		}
	}
}

func (f *guardFlags) listeners() ([]net.Listener, error) {
	var out []net.Listener
	if f.listen != "" {
		l, err := net.Listen("tcp", f.listen)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", f.listen, opErr(err))
		}
		out = append(out, l)
	}
	if f.listenTLS != "" {
		cfg, err := f.serverTLSConfig()
		if err != nil {
			closeAll(out)
			return nil, err
		}
		l, err := net.Listen("tcp", f.listenTLS)
		if err != nil {
			closeAll(out)
			return nil, fmt.Errorf("listen on %s: %w", f.listenTLS, opErr(err))
		}
		out = append(out, tls.NewListener(l, cfg))
	}
	return out, nil
}

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		l.Close()
	}
}

// opErr drops the "listen tcp ADDR:" prefix of a *net.OpError, which the caller's message names.
func opErr(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

func (f *guardFlags) serverTLSConfig() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("load --tls-cert/--tls-key: %w", plainErr(err))
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if f.clientCA != "" {
		pool, err := loadPool(f.clientCA, "--client-ca")
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}

func (f *guardFlags) upstreamTLSConfig() (*tls.Config, error) {
	if !f.upstreamTLS {
		if f.upstreamCA != "" || f.upstreamCert != "" || f.upstreamName != "" {
			return nil, errors.New("--upstream-ca, --upstream-cert and --upstream-server-name need --upstream-tls")
		}
		return nil, nil
	}
	host, _, err := net.SplitHostPort(f.upstream)
	if err != nil {
		return nil, fmt.Errorf("--upstream %q is not host:port", f.upstream)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	if f.upstreamName != "" {
		cfg.ServerName = f.upstreamName
	}
	if f.upstreamCA != "" {
		if cfg.RootCAs, err = loadPool(f.upstreamCA, "--upstream-ca"); err != nil {
			return nil, err
		}
	}
	if f.upstreamCert != "" {
		cert, err := tls.LoadX509KeyPair(f.upstreamCert, f.upstreamKey)
		if err != nil {
			return nil, fmt.Errorf("load --upstream-cert/--upstream-key: %w", plainErr(err))
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func (f *guardFlags) syslogWriter(logger *slog.Logger) (*syslog.Writer, error) {
	cfg := syslog.Config{Addr: f.syslogAddr, AppName: "pacswatch", Logger: logger}
	cfg.Hostname, _ = os.Hostname()
	if f.syslogTLS {
		host, _, _ := net.SplitHostPort(f.syslogAddr)
		cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
		if f.syslogCA != "" {
			pool, err := loadPool(f.syslogCA, "--syslog-ca")
			if err != nil {
				return nil, err
			}
			cfg.TLS.RootCAs = pool
		}
	}
	return syslog.New(cfg)
}

func loadPool(path, flag string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", flag, path, plainErr(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s %s: no PEM certificate in it", flag, path)
	}
	return pool, nil
}

// plainErr drops what a user need not read: the operation and path of an *os.PathError (the
// message names the file) and crypto/tls's package prefix.
func plainErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return errors.New(strings.TrimPrefix(err.Error(), "tls: "))
}

// openAudit opens the audit log for appending, 0600, or stdout for "-".
func openAudit(e *env, path string) (io.Writer, func(), error) {
	if path == "-" {
		return e.stdout, func() {}, nil
	}
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("open --audit %s: %w", path, plainErr(err))
	}
	return fh, func() { fh.Close() }, nil
}

// serveMetrics serves reg's metrics at /metrics on addr until stop is called.
func serveMetrics(ctx context.Context, addr string, reg *prometheus.Registry) (stop func(), err error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on --metrics %s: %w", addr, opErr(err))
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}, nil
}
