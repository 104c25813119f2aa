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
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pacswatch/pacswatch/internal/fileout"
	"github.com/pacswatch/pacswatch/internal/web"
)

// serveFlags are the SPEC's serve flags.
type serveFlags struct {
	groupFlags
	listen    string
	token     string
	tokenFile string
	verbose   bool
}

const serveExamples = `  # The dashboard of ./pacswatch.db on http://127.0.0.1:8080/
  pacswatch serve --geo GeoLite2-City.mmdb

  # For colleagues on the network: a token is required beyond loopback
  pacswatch serve --listen 0.0.0.0:8080 --token-file /etc/pacswatch/token
  curl -H "Authorization: Bearer $(cat /etc/pacswatch/token)" http://HOST:8080/api/v1/runs`

func newServeCmd(e *env) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:     "serve [flags]",
		Short:   "Read-only dashboard over the store, and its JSON API (loopback by default)",
		Example: serveExamples,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd.Context(), e, &f)
		},
	}
	cmd.SetFlagErrorFunc(flagError)
	fl := cmd.Flags()
	fl.SortFlags = false
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8080", "`HOST:PORT` to listen on; beyond loopback it needs --token")
	fl.StringVar(&f.token, "token", "", "require this `TOKEN` on every request (Authorization: Bearer, or as the basic-auth password)")
	fl.StringVar(&f.tokenFile, "token-file", "", "read the token from `FILE` (first line), so that it stays out of the process list")
	fl.StringVar(&f.geo, "geo", "", "MaxMind DB `FILE` for countries and regions (as report --geo)")
	fl.StringVar(&f.asn, "asn", "", "MaxMind DB `FILE` for autonomous systems (as report --asn)")
	f.thresholdFlags(fl)
	fl.StringVar(&f.db, "db", "pacswatch.db", "store: SQLite `PATH` (opened read-only)")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "log each request (method, path, status, time; never a header)")
	return cmd
}

// maxToken caps a token file read.
const maxToken = 4096

// readToken returns the token of --token or --token-file.
func readToken(f *serveFlags) (string, error) {
	if f.tokenFile == "" {
		return f.token, nil
	}
	if f.token != "" {
		return "", errors.New("serve: give --token or --token-file, not both")
	}
	fh, err := os.Open(f.tokenFile)
	if err != nil {
		return "", fmt.Errorf("--token-file: %s: %w", fileout.Show(f.tokenFile), cause(err))
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxToken))
	if err != nil {
		return "", fmt.Errorf("--token-file: %s: %w", fileout.Show(f.tokenFile), cause(err))
	}
	tok, _, _ := strings.Cut(string(b), "\n")
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", fmt.Errorf("--token-file: %s holds no token", fileout.Show(f.tokenFile))
	}
	return tok, nil
}

// cause strips the path an os error repeats.
func cause(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func runServe(ctx context.Context, e *env, f *serveFlags) error {
	token, err := readToken(f)
	if err != nil {
		return err
	}
	if err := web.CheckListen(f.listen, token); errors.Is(err, web.ErrNeedToken) {
		return fmt.Errorf("serve: --listen %s is beyond loopback: give --token or --token-file (or listen on 127.0.0.1)", fileout.Show(f.listen))
	} else if err != nil {
		return fmt.Errorf("serve: --listen %s is not host:port", fileout.Show(f.listen))
	}
	opt, st, done, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	level := slog.LevelError
	if f.verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	srv, err := web.New(web.Config{Store: st, Geo: opt.Geo, ASN: opt.ASN, Thresholds: opt.Thresholds, Token: token, Logger: logger})
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Err != nil {
			err = oe.Err
		}
		return fmt.Errorf("serve: listen on %s: %w", f.listen, cause(err))
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 15 * time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: log.New(io.Discard, "", 0)} // net/http would print client bytes through it
	auth := ""
	if token != "" {
		auth = ", token required"
	}
	fmt.Fprintf(e.stderr, "serve: http://%s/ (read-only%s)\n", ln.Addr(), auth)
	if err := srv.Warm(ctx); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hs.Shutdown(shut)
	return nil
}
