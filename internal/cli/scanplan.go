package cli

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/pacswatch/pacswatch/internal/probe/dicomprobe"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/targets"
)

// hugeScan is the size above which a scan with public addresses needs --yes (SPEC "Safety of a
// run"): a /16 on one port. Above it a slip (0.0.0.0/0 typed while checking a message) reaches
// hosts nobody here owns for hours.
const hugeScan = 65536

// scanPlan is a scan command line checked and parsed, before anything is created or contacted.
type scanPlan struct {
	specs          []string // targets as given (or as stored, on --resume)
	ports          []uint16 // DICOM ports
	webPorts       []uint16 // with --web
	exclusions     []string // entries that shape the space: stored ones on --resume
	shard, shards  uint64
	depth          dicomprobe.Depth
	tls            dicomprobe.TLSMode
	dict           dicomprobe.Dict
	space          *targets.Space
	lateExclusions *targets.Exclusions // on --resume: exclusions added since the scan started
}

// planScan checks every flag and argument and builds the target space. It creates nothing.
// On --resume, sc is the scan resumed, whose settings the flags already carry.
func planScan(ctx context.Context, e *env, fl *pflag.FlagSet, f *scanFlags, args []string, sc *store.Scan) (*scanPlan, error) {
	p := &scanPlan{specs: args}
	if f.inputList != "" && sc == nil {
		list, err := readTargets(e, f.inputList)
		if err != nil {
			return nil, fmt.Errorf("-iL: %w", err)
		}
		p.specs = append(p.specs, list...)
	}
	if len(p.specs) == 0 {
		return nil, errors.New("scan: no targets (give TARGET arguments or -iL FILE)")
	}
	var err error
	if p.ports, err = targets.ParsePorts(f.ports); err != nil {
		return nil, fmt.Errorf("--ports: %w", err)
	}
	if f.web {
		if p.webPorts, err = targets.ParsePorts(f.webPorts); err != nil {
			return nil, fmt.Errorf("--web-ports: %w", err)
		}
	} else if fl.Changed("web-ports") || f.defCreds {
		return nil, errors.New("scan: --web-ports and --default-creds go with --web")
	}
	exclude, err := f.exclusions(e)
	if err != nil {
		return nil, err
	}
	if f.shard != "" {
		if p.shard, p.shards, err = targets.ParseShard(f.shard); err != nil {
			return nil, fmt.Errorf("--shard: %w", err)
		}
		if sc == nil && !fl.Changed("seed") {
			return nil, errors.New("--shard needs --seed: every shard of a run must walk the same permutation (give the same --seed to all)")
		}
	} else {
		p.shards = 1
	}
	if err := f.checkProbeFlags(p); err != nil {
		return nil, err
	}
	if err := f.scale.check(); err != nil {
		return nil, err
	}
	p.exclusions = exclude
	if sc != nil && sc.SpaceDigest != "" {
		// The space is rebuilt with the exclusions the scan started with, so that every
		// checkpoint position names the same target; newer ones filter at probe time.
		p.exclusions = sc.Exclusions
		if p.lateExclusions, err = lateExclusions(sc.Exclusions, exclude); err != nil {
			return nil, err
		}
	}
	p.space, err = targets.Parse(ctx, withWebPorts(p.specs, p.webPorts), targets.Options{Ports: union(p.ports, p.webPorts), Exclude: p.exclusions})
	if err != nil {
		return nil, err
	}
	if err := f.scale.checkSpace(p.space); err != nil {
		return nil, err
	}
	if p.space.Order(0, p.shard, p.shards).Len() == 0 {
		what := "every target is excluded (--exclude, --exclude-file, or reserved and private ranges not named explicitly)"
		if p.space.Len() > 0 {
			what = fmt.Sprintf("shard %s holds none of the %d targets", f.shard, p.space.Len())
		}
		return nil, fmt.Errorf("scan: nothing to scan: %s", what)
	}
	if sc != nil {
		if err := p.sameSpace(sc); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// withWebPorts adds, for each host:port target, the same host on every web port: with --web,
// a named service's host is probed for its web front end too (a host:port target otherwise
// takes that one port only).
func withWebPorts(specs []string, webPorts []uint16) []string {
	if len(webPorts) == 0 {
		return specs
	}
	out := slices.Clone(specs)
	for _, s := range specs {
		// "[v6]:port" or "host:port" (one colon); a bare IPv6 address has more colons.
		var host string
		switch i := strings.LastIndex(s, "]:"); {
		case strings.HasPrefix(s, "[") && i > 0:
			host = s[:i+1]
		case strings.Count(s, ":") == 1:
			host = s[:strings.IndexByte(s, ':')]
		}
		if host == "" || host == "[]" {
			continue // not a host:port (an address, a range, a CIDR, a hostname)
		}
		for _, wp := range webPorts {
			out = append(out, host+":"+strconv.Itoa(int(wp)))
		}
	}
	return out
}

// exclusions returns the entries of --exclude and --exclude-file.
func (f *scanFlags) exclusions(e *env) ([]string, error) {
	var out []string
	for _, x := range f.exclude {
		out = append(out, strings.Split(x, ",")...)
	}
	if f.excludeFile != "" {
		list, err := readList(e, f.excludeFile)
		if err != nil {
			return nil, fmt.Errorf("--exclude-file: %w", err)
		}
		out = append(out, list...)
	}
	return out, nil
}

// checkProbeFlags checks the flags of how targets are probed.
func (f *scanFlags) checkProbeFlags(p *scanPlan) error {
	var err error
	if p.depth, err = dicomprobe.ParseDepth(f.depth); err != nil {
		return fmt.Errorf("--depth: %w", err)
	}
	if p.tls, err = dicomprobe.ParseTLSMode(f.tls); err != nil {
		return fmt.Errorf("--tls: %w", err)
	}
	if err := dicomprobe.ValidAE(f.callingAE); err != nil {
		return fmt.Errorf("--calling-ae: %w", err)
	}
	if f.calledAE != "" {
		if err := dicomprobe.ValidAE(f.calledAE); err != nil {
			return fmt.Errorf("--called-ae: %w", err)
		}
	}
	if f.aeDict != "" {
		if p.dict, err = dicomprobe.LoadDict(f.aeDict); err != nil {
			return fmt.Errorf("--ae-dict: %w", err)
		}
	}
	if f.memBudget < dicomprobe.MinMemoryBudget>>20 {
		return fmt.Errorf("--memory-budget: %d MiB is below the least, %d MiB", f.memBudget, dicomprobe.MinMemoryBudget>>20)
	}
	if math.IsNaN(f.rate) || f.rate < 0 || f.concurrency < 1 || f.timeout <= 0 || f.maxHostTime <= 0 || f.maxAETries < 1 {
		return errors.New("scan: --rate must be ≥ 0, --concurrency and --max-ae-tries ≥ 1, --timeout and --max-host-time > 0")
	}
	if f.logFormat != "text" && f.logFormat != "json" {
		return fmt.Errorf("--log-format: %q is not text or json", f.logFormat)
	}
	if f.errorsExit != ExitOK && f.errorsExit != ExitPartial {
		return fmt.Errorf("--errors-exit-code: %d is not 0 or 1 (2 and 130 mean could not run and interrupted)", f.errorsExit)
	}
	return nil
}

// lateExclusions returns the exclusions given now that the scan did not start with. An entry
// dropped since then stays in force: a resumed scan never contacts what it promised to leave alone.
func lateExclusions(started, now []string) (*targets.Exclusions, error) {
	old, err := targets.ParseExclusions(started)
	if err != nil {
		return nil, fmt.Errorf("stored exclusions: %w", err)
	}
	cur, err := targets.ParseExclusions(now)
	if err != nil {
		return nil, err
	}
	return cur.Without(old), nil
}

// sameSpace refuses to resume sc over another target space than the one it started: positions
// of its checkpoint would name other targets, and some would never be scanned.
func (p *scanPlan) sameSpace(sc *store.Scan) error {
	it := p.space.Order(sc.Seed, p.shard, p.shards)
	if sc.SpaceDigest != "" && p.space.Digest() != sc.SpaceDigest || it.Len() != sc.Total {
		return fmt.Errorf("scan: --resume: the target space of scan %s changed since it started (%d targets then, %d now: a hostname resolves elsewhere or a target file changed); start a new scan instead", sc.ID, sc.Total, it.Len())
	}
	return nil
}

// checkSize refuses a huge scan with public addresses unless --yes is given.
func (p *scanPlan) checkSize(f *scanFlags) error {
	n := p.space.Order(0, p.shard, p.shards).Len()
	if f.yes || n <= hugeScan || !p.space.Public() {
		return nil
	}
	took := "as fast as this machine and network allow"
	if f.rate > 0 {
		took = "at least " + humanDuration(time.Duration(float64(n)/f.rate*float64(time.Second))) + " at --rate " + fmt.Sprint(f.rate)
	}
	return fmt.Errorf("scan: %s targets, public addresses among them: that takes %s; add --yes to scan them (or scan less)", thousands(n), took)
}

// resumeMayChange lists the flags --resume accepts with another value than the scan started with:
// they change neither what is scanned nor how a target is probed (SPEC "Safety of a run").
// Exclusions may only grow: see lateExclusions.
var resumeMayChange = map[string]bool{
	"db": true, "output": true, "quiet": true, "verbose": true, "log-format": true, "yes": true,
	"rate": true, "concurrency": true, "memory-budget": true, "exclude": true, "exclude-file": true, "resume": true,
	"errors-exit-code": true,
}

// notStored lists flags never kept with a scan: --yes is asked for again on every --resume, and
// how a run shows itself (-q, -v, --log-format) is the resuming user's choice.
var notStored = map[string]bool{"resume": true, "input-list": true, "yes": true, "quiet": true, "verbose": true, "log-format": true}

// checkResumeFlags refuses, on --resume, a flag given now whose value differs from the one the
// scan started with. Flags never stored (notStored) are not compared: -iL's targets are told by
// the target space's digest, which the caller checks.
func checkResumeFlags(fl *pflag.FlagSet, sc store.Scan) error {
	var bad []string
	fl.Visit(func(f *pflag.Flag) {
		if resumeMayChange[f.Name] || notStored[f.Name] {
			return
		}
		stored, ok := sc.Settings[f.Name]
		if !ok {
			stored = defaultValue(f)
		}
		if flagValue(f) != stored {
			bad = append(bad, f.Name)
		}
	})
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	name := bad[0]
	was, ok := sc.Settings[name]
	if !ok {
		was = defaultValue(fl.Lookup(name))
	}
	return fmt.Errorf("scan: --resume continues scan %s with its own settings: --%s cannot change (it started with %s); start a new scan to change what is scanned or how",
		sc.ID, name, quoteValue(was))
}

// defaultValue is a flag's default as flagValue would write it.
func defaultValue(f *pflag.Flag) string {
	if _, ok := f.Value.(pflag.SliceValue); ok && f.DefValue == "[]" {
		return ""
	}
	return f.DefValue
}

// quoteValue quotes a flag value for a message, capped.
func quoteValue(v string) string {
	if len(v) > 60 {
		v = v[:60] + "…"
	}
	return fmt.Sprintf("%q", v)
}

// flagValue is a flag's value as changedFlags stores it.
func flagValue(f *pflag.Flag) string {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		return strings.Join(sv.GetSlice(), ",")
	}
	return f.Value.String()
}

// changedFlags records the flags the user set (and the seed), to resume with the same settings.
func changedFlags(fl *pflag.FlagSet) map[string]string {
	m := map[string]string{}
	fl.Visit(func(f *pflag.Flag) {
		if !notStored[f.Name] {
			m[f.Name] = flagValue(f)
		}
	})
	return m
}

// restoreFlags applies a stored scan's settings; flags given now on the command line win.
func restoreFlags(fl *pflag.FlagSet, settings map[string]string) error {
	names := make([]string, 0, len(settings))
	for k := range settings {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if fl.Changed(k) || fl.Lookup(k) == nil || notStored[k] {
			continue
		}
		if err := fl.Set(k, settings[k]); err != nil {
			return fmt.Errorf("stored flag --%s: %w", k, err)
		}
	}
	return nil
}

// unfinishedScan returns the latest unfinished scan of the store, of the given shard ("I/N")
// when one is named: a shard never resumes a sibling's checkpoint.
func unfinishedScan(ctx context.Context, st store.Reader, shard string) (store.Scan, error) {
	sc, err := store.Unfinished(ctx, st, shard)
	if errors.Is(err, store.ErrNotFound) {
		if shard != "" {
			return store.Scan{}, fmt.Errorf("scan: --resume: no unfinished scan of shard %s in the store", quoteValue(shard))
		}
		return store.Scan{}, errors.New("scan: --resume: no unfinished scan in the store")
	}
	return sc, err
}

// thousands writes n with thousands separators: 18,592,637,410.
func thousands(n uint64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// humanDuration writes d in the largest sensible unit: "5,425 h", "12 min", "40 s".
func humanDuration(d time.Duration) string {
	switch {
	case d >= 2*time.Hour:
		return thousands(uint64(d.Hours())) + " h"
	case d >= 2*time.Minute:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	}
	return fmt.Sprintf("%d s", int(math.Ceil(d.Seconds())))
}
