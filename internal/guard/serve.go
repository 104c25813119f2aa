package guard

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// What a command line needs around a Guard: listeners, TLS configurations from PEM files, and
// the metrics endpoint. Errors name the file or address concerned in one line.

// TLSFiles names the PEM files of one side of a TLS connection.
type TLSFiles struct {
	Cert, Key string // this side's certificate and private key
	CA        string // the CAs that sign the other side's certificate
	// ServerName is the name to verify in a server's certificate (client side only).
	ServerName string
}

// ServerTLS returns the configuration of a DICOM TLS listener (PS3.15 B.1): TLS 1.2 or later,
// f.Cert and f.Key, and, when f.CA is set, client certificates verified when presented.
func ServerTLS(f TLSFiles) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("load certificate %s and key %s: %w", f.Cert, f.Key, plainErr(err))
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if f.CA != "" {
		if cfg.ClientCAs, err = loadPool(f.CA); err != nil {
			return nil, err
		}
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}

// ClientTLS returns the configuration for connecting to a TLS server at hostport: TLS 1.2 or
// later, the server's certificate verified against f.CA (default: the system's roots) for
// f.ServerName (default: hostport's host), and f.Cert and f.Key presented when set.
func ClientTLS(f TLSFiles, hostport string) (*tls.Config, error) {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("%q is not host:port", hostport)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	if f.ServerName != "" {
		cfg.ServerName = f.ServerName
	}
	if f.CA != "" {
		if cfg.RootCAs, err = loadPool(f.CA); err != nil {
			return nil, err
		}
	}
	if (f.Cert == "") != (f.Key == "") {
		return nil, errors.New("a client certificate needs its key, and a key its certificate")
	}
	if f.Cert != "" {
		cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("load certificate %s and key %s: %w", f.Cert, f.Key, plainErr(err))
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func loadPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA file %s: %w", path, plainErr(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// plainErr drops what a user need not read: the operation and path of an *os.PathError (the
// message names the file), the "listen tcp ADDR:" of a *net.OpError (it names the address),
// and crypto/tls's package prefix.
func plainErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return errors.New(strings.TrimPrefix(err.Error(), "tls: "))
}

// Listen listens on addr over TCP, with TLS when cfg is set.
func Listen(addr string, cfg *tls.Config) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, plainErr(err))
	}
	if cfg != nil {
		l = tls.NewListener(l, cfg)
	}
	return l, nil
}

// ServeMetrics serves g's metrics registry reg at /metrics on addr until stop is called.
func ServeMetrics(addr string, reg *prometheus.Registry) (stop func(), err error) {
	l, err := Listen(addr, nil)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// Endpoint is an address to listen on, for DICOM TLS when TLS is set.
type Endpoint struct {
	Addr string
	TLS  *tls.Config
}

// ListenAndServe listens on every endpoint (none when any fails), calls ready with each
// listener's address, and serves them all until ctx is done or Close is called. It returns the
// first listener's failure, or nil once all have stopped.
func (g *Guard) ListenAndServe(ctx context.Context, eps []Endpoint, ready func(addr string)) error {
	var ls []net.Listener
	for _, ep := range eps {
		l, err := Listen(ep.Addr, ep.TLS)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return err
		}
		ls = append(ls, l)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(ls))
	for _, l := range ls {
		if ready != nil {
			ready(l.Addr().String())
		}
		go func() { errc <- g.Serve(ctx, l) }()
	}
	var first error
	for range ls {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}
