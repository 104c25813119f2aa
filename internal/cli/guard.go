package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
	splice                    bool // hidden: data sets forwarded unread (guard.Config.Splice), for measurement
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
a policy that does not parse is reported and the one in force stays.

The policy (YAML) denies everything it does not list:

  called_ae: [ORTHANC]               # optional: the called AE titles a request may name
  max_associations: 200              # optional, all peers together (default 1000)
  peers:
    - name: reading-room             # names the entry in audit records and metrics
      calling_ae: [WS01, WS02]       # "*" matches any title
      source: [10.1.2.0/24]          # addresses or CIDR networks
      client_cert: {common_name: ws01.example.org}   # optional; or sha256: FINGERPRINT
      require_tls: false             # optional
      services: [echo, find, get, move, store]
      query_levels: [STUDY, SERIES]  # for find, get and move
      universal_find: false          # C-FINDs that match the whole index
      move_destinations: [WS01]      # the only AE titles a C-MOVE may send to
      max_associations: 4            # at once (default 16)
      rate: 10/s                     # new associations (or /m, /h); burst: N`,
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
	fl.BoolVar(&f.splice, "splice", false, "forward data sets unread with splice(2) between plain TCP connections (measurement: slower on loopback)")
	_ = fl.MarkHidden("splice")
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
	case !f.upstreamTLS && (f.upstreamCA != "" || f.upstreamCert != "" || f.upstreamName != ""):
		return errors.New("--upstream-ca, --upstream-cert and --upstream-server-name need --upstream-tls")
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
	cfg := guard.Config{Upstream: f.upstream, Logger: logger, IdleTimeout: f.idleTimeout, AssocTimeout: f.assocTimeout, Splice: f.splice}
	if f.upstreamTLS {
		files := guard.TLSFiles{Cert: f.upstreamCert, Key: f.upstreamKey, CA: f.upstreamCA, ServerName: f.upstreamName}
		if cfg.UpstreamTLS, err = guard.ClientTLS(files, f.upstream); err != nil {
			return fmt.Errorf("--upstream-tls: %w", err)
		}
	}
	auditW, closeAudit, err := openAudit(e, f.audit)
	if err != nil {
		return err
	}
	defer closeAudit()
	cfg.Audit = auditW
	reg := prometheus.NewRegistry()
	if cfg.Metrics, err = guard.NewMetrics(reg); err != nil {
		return err
	}
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
		cfg.Events = guard.SyslogEvents(w, src, f.upstream)
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "pacswatch_guard_syslog_dropped_total",
			Help: "DICOM audit messages dropped because the syslog queue was full (collector down or slow).",
		}, func() float64 { return float64(w.Dropped()) }))
	}
	g, err := guard.New(cfg, pol)
	if err != nil {
		return err
	}
	eps, err := f.endpoints()
	if err != nil {
		return err
	}
	if f.metrics != "" {
		stop, err := guard.ServeMetrics(f.metrics, reg)
		if err != nil {
			return err
		}
		defer stop()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go reloadOnHUP(ctx, hup, g, f.policy, logger)
	err = g.ListenAndServe(ctx, eps, func(addr string) {
		logger.Info("guard listening", "addr", addr, "upstream", f.upstream, "peers", len(pol.Peers))
	})
	g.Close()
	return err
}

// reloadOnHUP reloads the policy at each signal on hup until ctx is done.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, g *guard.Guard, path string, logger *slog.Logger) {
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

func (f *guardFlags) endpoints() ([]guard.Endpoint, error) {
	var out []guard.Endpoint
	if f.listen != "" {
		out = append(out, guard.Endpoint{Addr: f.listen})
	}
	if f.listenTLS != "" {
		cfg, err := guard.ServerTLS(guard.TLSFiles{Cert: f.tlsCert, Key: f.tlsKey, CA: f.clientCA})
		if err != nil {
			return nil, err
		}
		out = append(out, guard.Endpoint{Addr: f.listenTLS, TLS: cfg})
	}
	return out, nil
}

// openAudit opens the audit log for appending, 0600, or stdout for "-".
func openAudit(e *env, path string) (io.Writer, func(), error) {
	if path == "-" {
		return e.stdout, func() {}, nil
	}
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, nil, fmt.Errorf("open --audit %s: %w", path, err)
	}
	return fh, func() { fh.Close() }, nil
}

func (f *guardFlags) syslogWriter(logger *slog.Logger) (*syslog.Writer, error) {
	cfg := syslog.Config{Addr: f.syslogAddr, AppName: "pacswatch", Logger: logger}
	cfg.Hostname, _ = os.Hostname()
	if f.syslogTLS {
		tc, err := guard.ClientTLS(guard.TLSFiles{CA: f.syslogCA}, f.syslogAddr)
		if err != nil {
			return nil, fmt.Errorf("--syslog-tls: %w", err)
		}
		cfg.TLS = tc
	}
	return syslog.New(cfg)
}
