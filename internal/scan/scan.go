// Package scan is pacswatch's scan engine, as the "scan" section of the SPEC
// describes it: it walks one shard of a target space in its permutation order,
// probes each target at a global rate with bounded concurrency and at most one
// probe per address at a time ("polite by default"), and writes the results
// with a checkpoint to a store, so that a scan killed at any point resumes
// with the same results as an uninterrupted run ("nothing lost").
//
// The pipeline is zgrab2's: one goroutine takes targets from the iterator and
// hands them over an unbuffered channel to a pool of workers, which send each
// result to a single writer goroutine that stores them in batches.
//
// The probes connect through a Dialer ("Scale and discovery"): it counts
// every new connection against --rate, keeps the sockets in flight within
// the process's file-descriptor limit (RaiseFileLimit, SocketBudget), and
// tells the engine when the scanner's own limits, not a target, made a probe
// fail, so that the target is probed again rather than given a false result.
// Through it Run also stops a scan whose first connection attempts all find
// no route ("Safety of a run", ErrNetworkUnreachable).
package scan

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/pacswatch/pacswatch/internal/discover"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/targets"
)

// Defaults of the Config fields left zero.
const (
	DefaultConcurrency   = 1000
	DefaultMaxHostTime   = 60 * time.Second
	DefaultBatchSize     = 500
	DefaultFlushInterval = time.Second
)

// ProgressInterval is how often Run calls Config.Progress.
const ProgressInterval = 200 * time.Millisecond

// Result.Error texts of the error results the engine makes itself.
const (
	TextOverrun  = probe.TextOverrun  // the probe ignored its deadline
	TextPanic    = probe.TextPanic    // the panic value is logged, not stored
	TextNoStatus = probe.TextNoStatus // the probe returned a zero Status
	// TextUnreachable is the Error of a filtered result whose connection found no route
	// (probe.Classify's word): such a target is tallied as unreachable.
	TextUnreachable = "unreachable"
)

// A Prober probes one target: probe.Prober, whose contract Run follows
// (ctx's deadline is Config.MaxHostTime).
type Prober = probe.Prober

// Config tunes Run. The zero Config is valid: every zero field takes its
// default.
type Config struct {
	// Rate is how many targets may start per second, without a Dialer.
	// 0 means no limit. With a Dialer it must be 0: the Dialer's rate
	// counts connections (SPEC --rate), and the engine takes each probe's
	// first token from it before the probe starts, so that waiting for its
	// turn never eats into a target's timeouts.
	Rate float64
	// Dialer, if not nil, is the Dialer the probers connect through (it is
	// their Config.Dial). Run then lowers Concurrency to its MaxSockets,
	// probes again a target whose probe the scanner's own limits spoilt
	// (ErrOwnLimit), and stops on ErrNetworkUnreachable and ErrOutOfFiles.
	Dialer *Dialer
	// Exclude, if not nil, names targets never to probe: exclusions added
	// after the scan started (SPEC "Safety of a run"). They get no result
	// and are counted in Stats.Excluded and store.Progress.Excluded. It is
	// called from one goroutine, once per target taken from the iterator.
	Exclude func(targets.Target) bool
	// Concurrency is how many targets are probed at once, at most
	// (SPEC --concurrency). Default DefaultConcurrency.
	Concurrency int
	// ConnectTimeout, with a Dialer, splits the scan in two stages (SPEC
	// "Scale and discovery"): a connect stage that keeps many connection
	// attempts in flight (discover.Connector), each waiting ConnectTimeout
	// for an answer, as many as the Dialer's sockets allow less one per
	// probe (at least Concurrency), and a probe stage, Concurrency at once,
	// for the targets that accepted. The probe takes over the connect
	// stage's connection for its first dial (see Redial). 0: one stage,
	// the probes connect themselves (the only way without a Dialer).
	ConnectTimeout time.Duration
	// SYN, with ConnectTimeout, makes the connect stage of IPv4 targets send SYNs from raw
	// sockets (discover.SYNScanner: SPEC --syn) rather than call connect(): an attempt in
	// flight then holds no socket and no goroutine, SYNInFlight at most, and the probe of an
	// open target connects itself, as with Redial. IPv6 targets use connect(). Run fails when
	// the system refuses raw sockets (the error wraps discover.ErrSYNUnavailable).
	SYN bool
	// Redial makes the probe open its own connection after the connect
	// stage found the port open, as zgrab2 behind ZMap does, rather than
	// take over the connect stage's. It costs a second connection (and a
	// rate token) per open target; for measurement.
	Redial bool
	// AllTargets stores a result for every target (SPEC --all-targets).
	// Otherwise closed, filtered and unreachable targets that told nothing
	// more are counted in the checkpoint's tallies (store.Progress.Tallies),
	// not stored, and not passed to OnResult.
	AllTargets bool
	// MaxHostTime is the deadline of each target's probe (SPEC
	// --max-host-time). Default DefaultMaxHostTime. A probe that has not
	// returned a grace period after its deadline (a tenth of MaxHostTime,
	// at least 250 ms and at most 5 s) is abandoned: the target gets an
	// error result with Error TextOverrun, and its address is free
	// for the next target although the runaway probe may still run.
	MaxHostTime time.Duration
	// BatchSize is how many results are stored per transaction, at most.
	// Default DefaultBatchSize.
	BatchSize int
	// FlushInterval is how long a result may wait to be stored.
	// Default DefaultFlushInterval.
	FlushInterval time.Duration

	// Logger receives the engine's own log: a warning per abandoned probe,
	// an error (with the panic value and stack) per panicking probe, and at
	// debug level one line per target. Nil discards it.
	Logger *slog.Logger
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time

	// OnResult, if not nil, is called with each result (sanitized, see
	// probe.Result.Sanitize) once it is stored, in the order the probes
	// finished, from one goroutine: for example to write JSON Lines. An
	// error stops the scan as a store error does, and Run returns it.
	OnResult func(probe.Result) error
	// Progress, if not nil, is called with the running totals every
	// ProgressInterval while Run runs, from one goroutine. Run returns the
	// final totals.
	Progress func(Stats)
}

// grace is how long after its deadline the engine waits for a probe.
func (c *Config) grace() time.Duration {
	return min(max(c.MaxHostTime/10, 250*time.Millisecond), 5*time.Second)
}

// withDefaults checks c and fills in its zero fields.
func (c Config) withDefaults() (Config, error) {
	switch {
	case math.IsNaN(c.Rate) || c.Rate < 0:
		return c, fmt.Errorf("scan: rate %v: want a number of targets per second, or 0 for no limit", c.Rate)
	case c.Concurrency < 0:
		return c, fmt.Errorf("scan: concurrency %d: want at least 1", c.Concurrency)
	case c.MaxHostTime < 0:
		return c, fmt.Errorf("scan: max host time %v: want a positive duration", c.MaxHostTime)
	case c.BatchSize < 0:
		return c, fmt.Errorf("scan: batch size %d: want at least 1", c.BatchSize)
	case c.FlushInterval < 0:
		return c, fmt.Errorf("scan: flush interval %v: want a positive duration", c.FlushInterval)
	case c.ConnectTimeout < 0:
		return c, fmt.Errorf("scan: connect timeout %v: want a positive duration", c.ConnectTimeout)
	case c.ConnectTimeout > 0 && c.Dialer == nil:
		return c, fmt.Errorf("scan: a connect stage needs a dialer, which bounds its sockets")
	}
	if c.Dialer != nil {
		if c.Dialer.err != nil {
			return c, c.Dialer.err
		}
		if c.Rate != 0 {
			return c, fmt.Errorf("scan: rate %v with a dialer: set the rate on the dialer, which counts connections", c.Rate)
		}
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.MaxHostTime == 0 {
		c.MaxHostTime = DefaultMaxHostTime
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// Stats are a scan's running totals. Open, DICOM, Exposed, Errors,
// Retried, Closed, Filtered and Unreachable count this run only, not an earlier run of the scan; Done, Skipped
// and Excluded count the whole scan.
type Stats struct {
	Total    uint64    // targets in the shard
	Done     uint64    // targets done: their results stored, Skipped and Excluded included
	Skipped  uint64    // targets left alone because an earlier run stored their results
	Excluded uint64    // targets never probed because Config.Exclude names them (below the checkpoint)
	Open     uint64    // results with status open
	DICOM    uint64    // results with an association answer (dicom.association not none)
	Exposed  uint64    // results exposed at level query or above
	Errors   uint64    // results with status error
	Retried  uint64    // probes repeated because the scanner's own limits spoilt them (see ErrOwnLimit)
	Started  time.Time // when Run started

	// Targets counted, not stored (without Config.AllTargets), this run:
	// they are in Done too.
	Closed      uint64 // connection refused
	Filtered    uint64 // no answer before the connect timeout (or the probe's)
	Unreachable uint64 // no route
}

// Run scans the targets of it for scan sc, probing each with p and storing
// the results in st with a checkpoint, until every target is done, ctx is
// cancelled or the store fails.
//
// Run resumes a scan: it seeks it to sc.Progress.Done, the checkpoint (every
// position below it has a stored result or is excluded), and leaves alone
// the targets past the checkpoint that already have a stored result. The
// checkpoint stored with each batch is the lowest position whose result is
// not stored yet, so it only rises. Targets Config.Exclude names are never
// probed and have no result; the Progress stored with each batch counts
// those below its checkpoint, from sc.Progress.Excluded on, so that a scan
// killed and resumed counts each once.
//
// When ctx is cancelled, Run starts no more targets, cancels the probes in
// flight and drops their results (a probe cut short says nothing true about
// its target), stores the results already complete with their checkpoint,
// and returns ctx.Err(); a later Run continues the scan. When every target
// is done, Run marks the scan finished (store.Store.FinishScan), unless it
// was already. With a Config.Dialer, Run also stops, resumable, with an
// error wrapping ErrNetworkUnreachable or ErrOutOfFiles (see them).
//
// Run holds at most 2×Concurrency targets between the iterator and the
// store, whatever the size of the shard; resuming, it also holds the
// (address, port) of the targets it looks ahead at to find those stored past
// the checkpoint (see storedAhead), about as many.
func Run(ctx context.Context, st store.Store, sc store.Scan, it *targets.Iter, p Prober, cfg Config) (Stats, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Stats{}, err
	}
	e := newEngine(st, sc, it.Len(), p, cfg)
	prefix := seekCount(it, sc.Progress.Done)
	// Targets past the checkpoint already stored: the few results the last
	// run stored out of order. A matched entry is deleted.
	skip, err := storedAhead(ctx, st, sc.ID, it, sc.Progress.Done, prefix, 4*cfg.Concurrency+cfg.BatchSize)
	if err != nil {
		return e.snapshot(), fmt.Errorf("read stored results of scan %q: %w", sc.ID, err)
	}
	e.stats.done.Store(prefix)
	e.stats.skipped.Store(prefix - min(sc.Progress.Excluded, prefix))
	if prefix > 0 || len(skip) > 0 {
		cfg.Logger.Info("resuming scan", "scan", sc.ID, "checkpoint", sc.Progress.Done,
			"done", prefix, "excluded", sc.Progress.Excluded, "stored", len(skip), "total", e.total)
	}
	return e.execute(ctx, sc, iterSource{it}, skip, e.total-prefix)
}

// execute runs the engine over src until it is exhausted and every target is done, or ctx
// ends or the run fails; then it marks sc finished. left bounds the workers worth starting.
func (e *engine) execute(ctx context.Context, sc store.Scan, src source, skip map[key]struct{}, left uint64) (Stats, error) {
	cfg := e.cfg
	var err error
	if cfg.ConnectTimeout > 0 {
		if e.connector, err = discover.NewConnector(cfg.ConnectTimeout); err != nil {
			return e.snapshot(), fmt.Errorf("scan: connect stage: %w", err)
		}
		defer e.connector.Close()
		e.probes = make(chan struct{}, e.cfg.Concurrency)
	}

	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	e.stop = stop
	jobs := make(chan *job)
	results := make(chan *job, e.workers())
	endSYN := func() {}
	if cfg.synStage() {
		if endSYN, err = e.startSYN(runCtx, results); err != nil {
			return e.snapshot(), err
		}
	}

	var workers sync.WaitGroup
	start := min(uint64(e.workers()), left)
	if e.connector != nil {
		// Connect workers start as they are needed (see spawn): as many as the attempts in
		// flight need, so that a scan of answering targets holds few goroutines.
		start = min(start, uint64(e.cfg.Concurrency))
		e.spawn = func(j *job) bool {
			if e.started >= e.workers() {
				return false
			}
			e.started++
			workers.Go(func() { e.workFrom(runCtx, stop, j, jobs, results) })
			return true
		}
	}
	e.started = int(start)
	for range start {
		workers.Go(func() { e.work(runCtx, stop, jobs, results) })
	}
	wrote := make(chan error, 1)
	go func() { wrote <- e.write(ctx, runCtx, stop, results) }()
	progressDone := make(chan struct{})
	progress := e.report(progressDone)

	exhausted := e.dispatch(runCtx, src, skip, jobs)
	close(jobs)
	workers.Wait()
	endSYN()
	close(results)
	werr := <-wrote
	close(progressDone)
	progress.Wait()

	switch {
	case werr != nil:
		return e.snapshot(), werr
	case ctx.Err() != nil:
		return e.snapshot(), ctx.Err()
	case runCtx.Err() != nil:
		return e.snapshot(), context.Cause(runCtx)
	case !exhausted || e.pending > 0:
		// Unreachable: the dispatcher and workers stop early only when
		// runCtx is done.
		return e.snapshot(), fmt.Errorf("scan: %d targets left unscanned", e.pending)
	}
	if e.discovery != nil {
		if err := e.discovery(); err != nil {
			return e.snapshot(), err // the hits stopped short: not finished, resumable
		}
	}
	if sc.Finished.IsZero() {
		if err := e.st.FinishScan(ctx, sc.ID, cfg.Now()); err != nil {
			return e.snapshot(), fmt.Errorf("finish scan %q: %w", sc.ID, err)
		}
	}
	return e.snapshot(), nil
}

// report calls Config.Progress every ProgressInterval until done is closed.
func (e *engine) report(done <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	if e.cfg.Progress == nil {
		return &wg
	}
	wg.Go(func() {
		tick := time.NewTicker(ProgressInterval)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				e.cfg.Progress(e.snapshot())
			case <-done:
				return
			}
		}
	})
	return &wg
}
