package cli

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/pacswatch/pacswatch/internal/discover"
	"github.com/pacswatch/pacswatch/internal/fileout"
	"github.com/pacswatch/pacswatch/internal/honeypot"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/probe/dicomprobe"
	"github.com/pacswatch/pacswatch/internal/probe/webprobe"
	"github.com/pacswatch/pacswatch/internal/scan"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/targets"
)

// runScan is `pacswatch scan`: check everything, then open the store, the output and the scan,
// then probe. Nothing is created before every flag and target has been checked (SPEC "Safety of
// a run"), and nothing is contacted before the scan is recorded.
func runScan(ctx context.Context, e *env, fl *pflag.FlagSet, f *scanFlags, args []string) error {
	logger, err := newLogger(e.stderr, f.verbose, f.logFormat)
	if err != nil {
		return err
	}
	var (
		st      store.Store
		resumed *store.Scan
	)
	if f.resume {
		if len(args) > 0 || f.inputList != "" {
			return errors.New("scan: --resume takes no targets: it continues the stored scan with its own")
		}
		if _, err := os.Stat(f.db); err != nil && !isPostgres(f.db) {
			return fmt.Errorf("scan: --resume: no store at %s", showDB(f.db))
		}
		if st, err = openStore(ctx, f.db); err != nil {
			return err
		}
		defer st.Close()
		sc, err := unfinishedScan(ctx, st, f.shard)
		if err != nil {
			return err
		}
		if err := checkResumeFlags(fl, sc); err != nil {
			return err
		}
		if err := restoreFlags(fl, sc.Settings); err != nil {
			return fmt.Errorf("scan: resume scan %s: %w", sc.ID, err)
		}
		resumed, args = &sc, sc.Targets
	}
	plan, err := planScan(ctx, e, fl, f, args, resumed)
	if err != nil {
		return err
	}
	if err := plan.checkSize(f); err != nil {
		return err
	}
	if f.output != "" && f.output != "-" {
		if err := checkOutput(f.output, f.db); err != nil {
			return err
		}
	}

	var sc store.Scan
	if resumed != nil {
		sc = *resumed
	} else {
		_, statErr := os.Stat(f.db)
		if st, err = openStore(ctx, f.db); err != nil {
			return err
		}
		defer st.Close()
		if sc, err = shardToContinue(ctx, e, st, fl, f, plan); err == nil && sc.ID == "" {
			sc, err = createScan(ctx, st, fl, f, plan)
		}
		if err != nil {
			if errors.Is(statErr, fs.ErrNotExist) && !isPostgres(f.db) {
				removeStore(st, f.db) // ours, empty: leave nothing behind
			}
			return err
		}
	}
	release, err := holdLease(ctx, st, sc)
	if err != nil {
		return err
	}
	defer release()

	out, closeOut, err := openJSONLines(e, f.output)
	if err != nil {
		return err
	}
	defer closeOut()
	return probeScan(ctx, e, st, sc, plan, f, out, logger)
}

// shardToContinue returns the unfinished scan that a re-run of one shard continues: with
// --shard I/N and no --resume, a scan of the same shard, name, seed and target space that has
// not finished (a pod of a Kubernetes Indexed Job restarted after a crash runs the same command
// again). The zero Scan when there is none: a new scan starts.
func shardToContinue(ctx context.Context, e *env, st store.Store, fl *pflag.FlagSet, f *scanFlags, plan *scanPlan) (store.Scan, error) {
	if f.shard == "" {
		return store.Scan{}, nil
	}
	sc, err := store.Unfinished(ctx, st, f.shard)
	if errors.Is(err, store.ErrNotFound) {
		return store.Scan{}, nil
	}
	if err != nil {
		return store.Scan{}, err
	}
	if sc.Seed != f.seed || sc.Name != f.name || sc.SpaceDigest != plan.space.Digest() {
		return store.Scan{}, nil
	}
	if err := checkResumeFlags(fl, sc); err != nil {
		return store.Scan{}, err
	}
	fmt.Fprintf(e.stderr, "scan %s: shard %s of this run did not finish: continuing it\n", sc.ID, f.shard)
	return sc, nil
}

// checkOutput refuses an -o that would destroy the store or follow a symlink, before anything
// is created.
func checkOutput(path, db string) error {
	if err := fileout.NotStore(path, db); err != nil {
		return err
	}
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if _, err := os.Stat(dirOf(path)); err != nil {
			return fmt.Errorf("-o %s: directory %s does not exist", path, dirOf(path))
		}
		return nil
	case err != nil:
		return fmt.Errorf("-o %s: %w", path, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("-o %s: is a symbolic link; pacswatch does not follow links for its output", path)
	case fi.IsDir():
		return fmt.Errorf("-o %s: is a directory", path)
	}
	return nil
}

// openJSONLines opens -o: stdout for "-", else the file, truncated, mode 0600, never through a
// symlink. JSON Lines are a stream (tail -f, a pipeline): written as results are stored, and
// rewritten whole from the store by --resume.
func openJSONLines(e *env, path string) (io.Writer, func(), error) {
	switch path {
	case "":
		return nil, func() {}, nil
	case "-":
		return e.stdout, func() {}, nil
	}
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|noFollow, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("-o %s: %w", path, unwrapPath(err))
	}
	if err := file.Chmod(0o600); err != nil {
		file.Close()
		return nil, nil, fmt.Errorf("-o %s: %w", path, unwrapPath(err))
	}
	return file, func() { file.Close() }, nil
}

// createScan records a new scan with its seed, settings, target-space digest and exclusions.
func createScan(ctx context.Context, st store.Store, fl *pflag.FlagSet, f *scanFlags, plan *scanPlan) (store.Scan, error) {
	seed := f.seed
	if !fl.Changed("seed") {
		var b [8]byte
		_, _ = rand.Read(b[:])
		seed = binary.LittleEndian.Uint64(b[:])
		_ = fl.Set("seed", strconv.FormatUint(seed, 10))
	}
	return st.CreateScan(ctx, store.Scan{
		Name:        f.name,
		Targets:     plan.specs,
		Settings:    changedFlags(fl),
		Total:       plan.space.Order(seed, plan.shard, plan.shards).Len(),
		Seed:        seed,
		Shard:       f.shard,
		SpaceDigest: plan.space.Digest(),
		Exclusions:  plan.exclusions,
	})
}

// probeScan builds the probers and runs the engine over the scan's shard.
func probeScan(ctx context.Context, e *env, st store.Store, sc store.Scan, plan *scanPlan, f *scanFlags, out io.Writer, logger *slog.Logger) error {
	enc := json.NewEncoder(out)
	if f.resume && out != nil {
		// The store is the truth: a kill can fall between a batch's commit and its JSON Lines.
		// Write what is stored first, then what this run adds: complete, and nothing twice.
		if err := st.Results(ctx, sc.ID, func(r probe.Result) error { return enc.Encode(r) }); err != nil {
			return fmt.Errorf("-o: rewrite stored results: %w", err)
		}
	}
	secret, err := st.Secret(ctx)
	if err != nil {
		return err
	}
	// The counting budget is also the runtime's soft memory limit (with room for the rest), so
	// that the collector works harder before a hostile fleet reaches it.
	debug.SetMemoryLimit((f.memBudget + 256) << 20)
	if _, err := scan.RaiseFileLimit(); err != nil {
		logger.Warn("cannot raise the descriptor limit; scanning within it", "error", err)
	}
	dialer := scan.NewDialer(scan.DialerConfig{Rate: f.rate, Logger: logger})
	p := newProber(plan, f, secret, dialer, logger)
	it := plan.space.Order(sc.Seed, plan.shard, plan.shards)
	cfg := scan.Config{
		Concurrency: f.concurrency,
		MaxHostTime: f.maxHostTime,
		Logger:      logger,
		Dialer:      dialer,
	}
	if plan.lateExclusions.Len() > 0 {
		late := plan.lateExclusions
		cfg.Exclude = func(t targets.Target) bool { return late.Contains(t.Addr) }
		fmt.Fprintf(e.stderr, "scan %s: exclusions added since it started (%d ranges): their targets are left alone\n", sc.ID, late.Len())
	}
	if out != nil {
		cfg.OnResult = func(r probe.Result) error { return enc.Encode(r) }
	}
	var prog *progress
	if file, ok := e.stderr.(*os.File); ok && !f.quiet && f.verbose == 0 && isTerminal(file) {
		prog = newProgress(e.stderr, it.Len())
		cfg.Progress = prog.update
	}
	logger.Info("scan", "id", sc.ID, "targets", it.Len(), "resume", f.resume)
	stats, err := runStages(ctx, st, sc, plan, f, it, p, cfg)
	if prog != nil {
		prog.finish(stats)
	}
	resume := "pacswatch scan --resume --db " + showDB(f.db)
	switch {
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return fmt.Errorf("%w: scan %s stopped after %d of %d targets; continue with: %s", errInterrupted, sc.ID, stats.Done, stats.Total, resume)
	case errors.Is(err, scan.ErrNetworkUnreachable):
		return fmt.Errorf("scan %s: stopped: the first %d connection attempts all found the network unreachable (no route: offline, or a firewall); once fixed, continue with: %s", sc.ID, scan.UnreachableAfter, resume)
	case errors.Is(err, discover.ErrNoZMap):
		return fmt.Errorf("scan %s: --discover zmap: zmap is not installed (Debian: apt-get install zmap); the scan is kept: continue with %s once it is, or start one with --discover connect", sc.ID, resume)
	case errors.Is(err, errDiscovery):
		return fmt.Errorf("scan %s: %w; what was stored is kept: once fixed, continue with: %s", sc.ID, err, resume)
	case errors.Is(err, scan.ErrOutOfFiles):
		return fmt.Errorf("scan %s: stopped: out of file descriptors (raise ulimit -n); what was stored is kept: continue with: %s", sc.ID, resume)
	case err != nil:
		// A store that filled up or failed keeps every batch committed before: say how to go on.
		return fmt.Errorf("scan %s: %w; what was stored is kept: once fixed, continue with: %s", sc.ID, err, resume)
	}
	// Honeypots are told apart once the scan has finished (SPEC caveats): known fingerprints,
	// and clusters of hosts serving one study set, over the whole run of shards.
	flagged, err := honeypot.Flag(ctx, st, sc.ID, honeypot.Config{})
	if err != nil {
		return fmt.Errorf("scan %s: flag honeypots: %w; the scan's results are stored", sc.ID, err)
	}
	if len(flagged) > 0 {
		logger.Info("honeypots flagged", "scan", sc.ID, "ports", len(flagged))
	}
	return summarize(ctx, e, st, sc, f)
}

// errDiscovery marks a discovery (zmap) that failed.
var errDiscovery = errors.New("discovery failed")

// runStages runs the engine: over the shard with a connect stage (--discover connect), or over
// what zmap reports (--discover zmap; a resumed run runs zmap again and skips what is stored).
func runStages(ctx context.Context, st store.Store, sc store.Scan, plan *scanPlan, f *scanFlags, it *targets.Iter, p scan.Prober, cfg scan.Config) (scan.Stats, error) {
	cfg.AllTargets, cfg.Redial = f.scale.allTargets, f.scale.redial
	if f.scale.discover != "zmap" {
		cfg.ConnectTimeout, cfg.SYN = f.scale.connectTimeout, f.scale.useSYN()
		return scan.Run(ctx, st, sc, it, p, cfg)
	}
	started, _ := targets.ParseExclusions(sc.Exclusions) // parsed when the plan was made
	allow, block, err := plan.space.ZMapLists(started, plan.lateExclusions)
	if err != nil {
		return scan.Stats{}, fmt.Errorf("--discover zmap: %w", err)
	}
	z := &discover.ZMap{Ports: plan.ports, Allow: allow, Block: block, Seed: sc.Seed,
		Shard: plan.shard, Shards: plan.shards, Rate: f.rate, Args: strings.Fields(f.scale.zmapArgs)}
	hits := make(chan discover.Hit, 1<<16) // zmap's output is not held up by a slow probe stage
	zerr := make(chan error, 1)
	zctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(hits)
		zerr <- z.Run(zctx, func(h discover.Hit) {
			select {
			case hits <- h:
			case <-zctx.Done():
			}
		})
	}()
	done := func() error {
		if err := <-zerr; err != nil && !errors.Is(err, context.Canceled) {
			if errors.Is(err, discover.ErrNoZMap) {
				return err
			}
			return fmt.Errorf("%w: %w", errDiscovery, err)
		}
		return nil
	}
	stats, err := scan.RunHits(ctx, st, sc, hits, done, p, cfg)
	cancel()
	return stats, err
}

// newProber returns the DICOM prober, or with --web one that routes each port to the DICOM or
// the web prober.
func newProber(plan *scanPlan, f *scanFlags, secret []byte, dialer *scan.Dialer, logger *slog.Logger) probe.Prober {
	prober := dicomprobe.New(dicomprobe.Config{
		TLS:            plan.tls,
		VerifyRetrieve: f.verify,
		Secret:         secret,
		CallingAE:      f.callingAE,
		CalledAE:       f.calledAE,
		Dict:           plan.dict,
		MaxAETries:     f.maxAETries,
		MemoryBudget:   f.memBudget << 20,
		Depth:          plan.depth,
		Timeout:        f.timeout,
		Logger:         logger,
		Dial:           dialer.DialContext,
	})
	if !f.web {
		return prober
	}
	return probe.ByPort{
		DICOM: prober, DICOMPorts: plan.ports, WebPorts: plan.webPorts,
		Web: webprobe.New(webprobe.Config{Timeout: f.timeout, DefaultCreds: f.defCreds, Logger: logger, Dial: dialer.DialContext}),
	}
}

// summarize prints the whole scan's totals (every run of it, not only this one's).
func summarize(ctx context.Context, e *env, st store.Store, sc store.Scan, f *scanFlags) error {
	sum, err := st.Summary(ctx, sc.ID)
	if err != nil {
		return fmt.Errorf("scan %s: read its totals: %w", sc.ID, err)
	}
	if !f.quiet {
		line := fmt.Sprintf("scan %s: %s targets, %s open, %s DICOM, %s exposed, %s errors",
			sc.ID, thousands(sc.Total), thousands(sum.Open), thousands(sum.DICOM), thousands(sum.Exposed), thousands(sum.Errors))
		if sum.Excluded > 0 {
			line += fmt.Sprintf(", %s excluded after it started", thousands(sum.Excluded))
		}
		say(e.stderr, f.logFormat, line, "scan finished", "scan", sc.ID, "targets", sc.Total, "open", sum.Open,
			"dicom", sum.DICOM, "exposed", sum.Exposed, "errors", sum.Errors, "excluded", sum.Excluded)
		if n := sum.Closed + sum.Filtered + sum.Unreachable; n > 0 {
			say(e.stderr, f.logFormat, fmt.Sprintf("scan %s: %s targets probed; %s closed, %s filtered, %s unreachable: counted, not stored",
				sc.ID, thousands(sum.Probed()), thousands(sum.Closed), thousands(sum.Filtered), thousands(sum.Unreachable)),
				"targets counted", "scan", sc.ID, "probed", sum.Probed(), "closed", sum.Closed, "filtered", sum.Filtered, "unreachable", sum.Unreachable)
		}
		// On a terminal, the services that answered (SPEC scan): an administrator who scanned one
		// address reads the answer here.
		if file, ok := e.stderr.(*os.File); ok && isTerminal(file) && f.logFormat != "json" {
			if err := printScanTable(ctx, e.stderr, st, sc.ID); err != nil {
				return err
			}
		}
	}
	if sum.Errors > 0 && f.errorsExit != ExitOK {
		return errPartial
	}
	return nil
}
