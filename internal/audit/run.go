package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/probe/dicomprobe"
	"github.com/pacswatch/pacswatch/internal/probe/webprobe"
	"github.com/pacswatch/pacswatch/internal/targets"
)

// Config configures Run. The zero value of each field has the documented default.
type Config struct {
	// Target is the system: HOST or HOST:PORT. Without a port, the SPEC's default DICOM ports
	// (104, 11112, 4242, 2761, 2762) are tried in order and the first that speaks DICOM is audited.
	Target string
	// Web lists the system's web front ends as URLs (http or https, host and port; no path).
	Web []string
	// CalledAE is the archive's own AE title, when the user knows it: with it the calling-AE
	// check can be judged on an archive that checks the called AE title.
	CalledAE string
	// CallingAE is our calling AE title; default version.CallingAE.
	CallingAE string
	// DefaultCreds tries the web front ends' documented default logins.
	DefaultCreds bool
	// Product overrides the product remediation is written for (ProductKeys).
	Product string
	TLS     dicomprobe.TLSMode // DICOM TLS: auto (default), on, off
	Timeout time.Duration      // per step; default 5s
	Logger  *slog.Logger       // each step at debug level; nil: discard
	Now     func() time.Time
	// Resolve looks up host names; nil: the system's resolver.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
}

// Run audits cfg.Target: the probe steps of a scan at depth query (no retrieval of any image),
// a storage context proposal (no object sent), the web front ends, then Evaluate. It returns an
// error when it could not run: a bad target or flag, nothing listening, or no DICOM there.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Product != "" && !slices.Contains(ProductKeys, cfg.Product) {
		return nil, fmt.Errorf("--product: %q is not one of %s", cfg.Product, strings.Join(ProductKeys, ", "))
	}
	if cfg.CalledAE != "" {
		if err := dicomprobe.ValidAE(cfg.CalledAE); err != nil {
			return nil, fmt.Errorf("--called-ae: %w", err)
		}
	}
	webs, err := webTargets(ctx, cfg)
	if err != nil {
		return nil, err
	}
	cands, host, err := dicomTargets(ctx, cfg)
	if err != nil {
		return nil, err
	}
	rec, err := probeDICOM(ctx, cfg, cands)
	if err != nil {
		return nil, err
	}
	wp := webprobe.New(webprobe.Config{Timeout: cfg.Timeout, DefaultCreds: cfg.DefaultCreds, Logger: cfg.Logger})
	for _, t := range webs {
		rec.Web = append(rec.Web, wp.Probe(ctx, t).Web...)
	}
	return Evaluate(Input{
		Record: rec, Host: host, CalledAE: cfg.CalledAE, StorageProposed: true,
		WebChecked: len(webs) > 0, DefaultCreds: cfg.DefaultCreds, Product: cfg.Product, Now: cfg.Now(),
	}), nil
}

// resolveOne parses spec as `pacswatch scan` does, with ports for a spec without one, and
// returns its pairs in port order; they must all be of one address.
func resolveOne(ctx context.Context, spec string, ports []uint16, resolve func(context.Context, string) ([]netip.Addr, error)) ([]targets.Target, error) {
	space, err := targets.Parse(ctx, []string{spec}, targets.Options{Ports: ports, Resolve: resolve})
	if err != nil {
		return nil, err
	}
	it := space.Order(0, 0, 1)
	var out []targets.Target
	for t, _, ok := it.Next(); ok; t, _, ok = it.Next() {
		out = append(out, t)
		if len(out) > 64 {
			break
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: nothing to audit", spec)
	}
	for _, t := range out {
		if t.Addr != out[0].Addr {
			return nil, fmt.Errorf("%s names more than one address (%s, %s, ...): audit one system at a time", spec, out[0].Addr, t.Addr)
		}
	}
	slices.SortFunc(out, func(a, b targets.Target) int { return slices.Index(ports, a.Port) - slices.Index(ports, b.Port) })
	return out, nil
}

// auditPorts are the ports tried when the target names none: the SPEC's default DICOM ports
// (targets.DefaultPorts), in its order.
var auditPorts = []uint16{104, 11112, 4242, 2761, 2762}

// dicomTargets returns the host:port pairs to try, in order, and the host name the user gave.
func dicomTargets(ctx context.Context, cfg Config) ([]targets.Target, string, error) {
	ts, err := resolveOne(ctx, cfg.Target, auditPorts, cfg.Resolve)
	if err != nil {
		return nil, "", errors.New(strings.TrimPrefix(err.Error(), "targets: "))
	}
	return ts, ts[0].Host, nil
}

// webTargets parses the --web URLs into targets.
func webTargets(ctx context.Context, cfg Config) ([]targets.Target, error) {
	var out []targets.Target
	for _, raw := range cfg.Web {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || u.Scheme != "http" && u.Scheme != "https" {
			return nil, fmt.Errorf("--web %q: give a URL such as http://HOST:8042", raw)
		}
		if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("--web %q: give only scheme, host and port: front ends are probed at their root", raw)
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil || p == 0 {
			return nil, fmt.Errorf("--web %q: bad port", raw)
		}
		ts, err := resolveOne(ctx, net.JoinHostPort(u.Hostname(), port), []uint16{uint16(p)}, cfg.Resolve)
		if err != nil {
			return nil, fmt.Errorf("--web %q: %s", raw, strings.TrimPrefix(err.Error(), "targets: "))
		}
		out = append(out, ts[0])
	}
	return out, nil
}

// probeDICOM runs the scan's probe steps on the first candidate that speaks DICOM, then the
// storage proposal, and returns its record; an error when none does.
func probeDICOM(ctx context.Context, cfg Config, cands []targets.Target) (probe.Result, error) {
	dict := dicomprobe.DefaultDict()
	tries := 0 // the prober's default
	if cfg.CalledAE != "" {
		// The archive's own title right after the generic one: the generic one tells whether the
		// called AE title is checked, the own one whether the calling AE title is.
		// (A dictionary of that title alone: the prober tries the generic title first, then this;
		// the default dictionary's ranked titles would come before an unranked one.)
		dict, tries = dicomprobe.Dict{{Title: cfg.CalledAE, Ports: []uint16{cands[0].Port}}}, 2
	}
	var tried []string
	for _, t := range cands {
		if cfg.CalledAE != "" {
			dict[0].Ports = []uint16{t.Port}
		}
		p := dicomprobe.New(dicomprobe.Config{
			CallingAE: cfg.CallingAE, Dict: dict, MaxAETries: tries, Depth: dicomprobe.DepthQuery,
			Timeout: cfg.Timeout, TLS: cfg.TLS, Logger: cfg.Logger, Now: cfg.Now,
		})
		s := p.NewSession(t)
		if !s.Connect(ctx) {
			tried = append(tried, fmt.Sprintf("%s: %s", t, statusText(s.Result())))
			continue
		}
		if !s.Associate(ctx) && s.Result().DICOM == nil {
			s.Close(ctx)
			tried = append(tried, fmt.Sprintf("%s: open, but no DICOM (%s)", t, s.Result().Error))
			continue
		}
		if s.Echo(ctx) && s.Count(ctx) {
			s.Retrieve(ctx)
		}
		s.Close(ctx)
		s.ProposeStorage(ctx)
		r := s.Result()
		r.Depth = dicomprobe.DepthQuery.String()
		return r, nil
	}
	return probe.Result{}, fmt.Errorf("nothing to audit: %s", strings.Join(tried, "; "))
}

func statusText(r probe.Result) string {
	if r.Status == probe.StatusOpen {
		return fmt.Sprintf("open, but no DICOM (%s)", r.Error)
	}
	if r.Error != "" {
		return r.Error
	}
	return r.Status.String()
}
