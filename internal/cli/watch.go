package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/pacswatch/pacswatch/internal/geo"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/watch"
	"github.com/pacswatch/pacswatch/internal/web"
)

const watchExamples = `  # Rescan every week, alert a webhook on new exposure, growth and fixes
  pacswatch watch weekly.yaml

  # weekly.yaml:
  #   targets: [203.0.113.0/24]
  #   scan_args: [-p, "104,11112,4242"]
  #   schedule: {every: 168h}
  #   alerts: {webhook: {url: "https://cert.example/pacswatch"}}`

func newWatchCmd(e *env) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:     "watch CONFIG",
		Short:   "Rescan on a schedule, compare each scan with the last, alert on changes",
		Example: watchExamples,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runWatch(cmd.Context(), e, args[0], quiet)
		},
	}
	cmd.SetFlagErrorFunc(flagError)
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "log errors only")
	return cmd
}

// cliScanner runs the watch's scans through `pacswatch scan` in this process: the scanner's own
// engine, lease and resume rules.
type cliScanner struct {
	e     *env
	cfg   watch.Config
	total atomic.Uint64 // targets of the last scan run, for the metrics
}

func (s *cliScanner) Scan(ctx context.Context, resume bool) error {
	args := []string{"scan", "--db", s.cfg.DB, "-q"}
	if s.cfg.Yes {
		args = append(args, "--yes")
	}
	if resume {
		args = append(args, "--resume")
	} else {
		args = append(args, "--name", s.cfg.Name)
		args = append(args, s.cfg.ScanArgs...)
		if s.cfg.TargetsFile != "" {
			args = append(args, "--input-list", s.cfg.TargetsFile)
		} else {
			args = append(append(args, "--"), s.cfg.Targets...)
		}
	}
	code := Run(ctx, args, nil, io.Discard, s.e.stderr)
	if st, err := openExistingStore(ctx, s.cfg.DB); err == nil {
		if sc, err := st.LatestScan(ctx); err == nil {
			s.total.Store(sc.Total)
		}
		st.Close()
	}
	switch {
	case code == ExitOK || code == ExitPartial:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return fmt.Errorf("pacswatch scan exited %d (its error is on the line above)", code)
}

func runWatch(ctx context.Context, e *env, path string, quiet bool) error {
	cfg, err := watch.LoadConfig(path)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if quiet {
		level = slog.LevelError
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	var g *geo.DB
	if cfg.Geo != "" {
		if g, err = geo.Open(cfg.Geo); err != nil {
			return fmt.Errorf("watch: geo: %w", err)
		}
		defer g.Close()
	}
	scanner := &cliScanner{e: e, cfg: cfg}
	reg := prometheus.NewRegistry()
	m, err := watch.NewMetrics(reg, func() float64 { return float64(scanner.total.Load()) })
	if err != nil {
		return err
	}
	if cfg.Metrics != "" {
		stop, err := serveMetrics(cfg.Metrics, reg)
		if err != nil {
			return err
		}
		defer stop()
	}
	w := &watch.Watcher{Config: cfg, Scanner: scanner, Geo: g, Log: logger, Metrics: m,
		Open: func(ctx context.Context) (store.Reader, error) {
			if _, err := os.Stat(cfg.DB); errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
			return openExistingStore(ctx, cfg.DB)
		}}
	if cfg.Alerts.Webhook != nil {
		w.Sinks = append(w.Sinks, cfg.Alerts.Webhook)
	}
	if cfg.Alerts.SMTP != nil {
		w.Sinks = append(w.Sinks, cfg.Alerts.SMTP)
	}
	logger.Info("watch", "name", cfg.Name, "db", cfg.DB, "sinks", len(w.Sinks))
	return w.Run(ctx)
}

// serveMetrics serves /metrics on a loopback address until stop is called.
func serveMetrics(addr string, reg *prometheus.Registry) (stop func(), err error) {
	if err := web.CheckListen(addr, ""); err != nil {
		return nil, fmt.Errorf("watch: metrics_listen %s must be a loopback address", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("watch: metrics_listen %s: %w", addr, cause(err))
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go hs.Serve(ln)
	return func() { hs.Close() }, nil
}
