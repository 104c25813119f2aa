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
package scan

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

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
	TextOverrun  = "max host time exceeded"                   // the probe ignored its deadline
	TextPanic    = "internal error: probe panicked"           // the panic value is logged, not stored
	TextNoStatus = "internal error: probe returned no status" // the probe returned a zero Status
)

// A Prober probes one target. The DICOM and web probes implement it.
type Prober interface {
	// Probe returns what it learned about t. It never fails: a failed probe
	// is a Result with the matching Status and Error. It must return soon
	// after ctx is done; ctx's deadline is Config.MaxHostTime. Probe is
	// called concurrently, never twice at once for the same address.
	// The engine fills in the Result's ScanID, IP and Port, and Time when
	// it is zero.
	Probe(ctx context.Context, t targets.Target) probe.Result
}

// Config tunes Run. The zero Config is valid: every zero field takes its
// default.
type Config struct {
	// Rate is how many targets may start per second (SPEC --rate).
	// 0 means no limit.
	Rate float64
	// Concurrency is how many targets are probed at once, at most
	// (SPEC --concurrency). Default DefaultConcurrency.
	Concurrency int
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

// Stats are a scan's running totals. Open, DICOM, Exposed and Errors count
// the results of this run only, not those an earlier run stored.
type Stats struct {
	Total   uint64    // targets in the shard
	Done    uint64    // targets whose results are stored, Skipped included
	Skipped uint64    // targets left alone because an earlier run stored their results
	Open    uint64    // results with status open
	DICOM   uint64    // results with an association answer (dicom.association not none)
	Exposed uint64    // results exposed at level query or above
	Errors  uint64    // results with status error
	Started time.Time // when Run started
}

// counters are Stats, updated while Run runs.
type counters struct {
	done, skipped, open, dicom, exposed, errors atomic.Uint64
}

// count adds a stored result to c.
func (c *counters) count(r *probe.Result) {
	c.done.Add(1)
	if r.Status == probe.StatusOpen {
		c.open.Add(1)
	}
	if r.Status == probe.StatusError {
		c.errors.Add(1)
	}
	if r.DICOM != nil && r.DICOM.Association != probe.AssociationNone {
		c.dicom.Add(1)
	}
	if r.Level() >= probe.LevelQuery {
		c.exposed.Add(1)
	}
}

// A job is one target taken from the iterator and not yet stored.
type job struct {
	t          targets.Target
	pos        uint64
	prev, next *job // in engine.head's list
	res        probe.Result
}

// key identifies a target as the store does.
type key struct {
	addr netip.Addr
	port uint16
}

// engine is the state of one Run.
type engine struct {
	st     store.Store
	scanID string
	p      Prober
	cfg    Config
	lim    *rate.Limiter
	hosts  hosts
	sem    chan struct{} // one token per job, so memory is O(Concurrency)
	total  uint64
	start  time.Time
	stats  counters

	written uint64 // last checkpoint stored; writer goroutine only

	mu       sync.Mutex // protects the fields below
	head     *job       // oldest job not stored; jobs are linked in rising position
	tail     *job       // newest job
	pending  int        // jobs in the list
	frontier uint64     // the position after the last one taken from the iterator
}

// Run scans the targets of it for scan sc, probing each with p and storing
// the results in st with a checkpoint, until every target is done, ctx is
// cancelled or the store fails.
//
// Run resumes a scan: it seeks it to sc.Progress.Done, the checkpoint (every
// position below it has a stored result), and leaves alone the targets past
// the checkpoint that already have a stored result. The checkpoint stored
// with each batch is the lowest position whose result is not stored yet, so
// it only rises.
//
// When ctx is cancelled, Run starts no more targets, cancels the probes in
// flight and drops their results (a probe cut short says nothing true about
// its target), stores the results already complete with their checkpoint,
// and returns ctx.Err(); a later Run continues the scan. When every target
// is done, Run marks the scan finished (store.Store.FinishScan), unless it
// was already.
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
	e := &engine{
		st:       st,
		scanID:   sc.ID,
		p:        p,
		cfg:      cfg,
		lim:      rate.NewLimiter(rate.Inf, 1),
		hosts:    hosts{busy: make(map[netip.Addr][]*job)},
		sem:      make(chan struct{}, 2*cfg.Concurrency),
		total:    it.Len(),
		start:    cfg.Now(),
		written:  sc.Progress.Done,
		frontier: sc.Progress.Done,
	}
	if cfg.Rate > 0 {
		e.lim.SetLimit(rate.Limit(cfg.Rate))
	}

	prefix := seekCount(it, sc.Progress.Done)
	// Targets past the checkpoint already stored: the few results the last
	// run stored out of order. A matched entry is deleted.
	skip, err := storedAhead(ctx, st, sc.ID, it, sc.Progress.Done, prefix, 4*cfg.Concurrency+cfg.BatchSize)
	if err != nil {
		return e.snapshot(), fmt.Errorf("read stored results of scan %q: %w", sc.ID, err)
	}
	e.stats.done.Store(prefix)
	e.stats.skipped.Store(prefix)
	if prefix > 0 || len(skip) > 0 {
		cfg.Logger.Info("resuming scan", "scan", sc.ID, "checkpoint", sc.Progress.Done,
			"done", prefix, "stored", len(skip), "total", e.total)
	}

	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	jobs := make(chan *job)
	results := make(chan *job, cfg.Concurrency)

	var workers sync.WaitGroup
	for range min(uint64(cfg.Concurrency), e.total-prefix) {
		workers.Go(func() { e.work(runCtx, stop, jobs, results) })
	}
	wrote := make(chan error, 1)
	go func() { wrote <- e.write(ctx, stop, results) }()
	var progress sync.WaitGroup
	progressDone := make(chan struct{})
	if cfg.Progress != nil {
		progress.Go(func() {
			tick := time.NewTicker(ProgressInterval)
			defer tick.Stop()
			for {
				select {
				case <-tick.C:
					cfg.Progress(e.snapshot())
				case <-progressDone:
					return
				}
			}
		})
	}

	exhausted := e.dispatch(runCtx, it, skip, jobs)
	close(jobs)
	workers.Wait()
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
	if sc.Finished.IsZero() {
		if err := st.FinishScan(ctx, sc.ID, cfg.Now()); err != nil {
			return e.snapshot(), fmt.Errorf("finish scan %q: %w", sc.ID, err)
		}
	}
	return e.snapshot(), nil
}

// storedAhead returns the targets of it from position p, the checkpoint,
// that already have a stored result. The store keeps (address, port), not
// positions, so they are found by looking ahead: every target below p is
// stored, prefix of them, so the others number stored − prefix, and an
// earlier run stored them while older targets were in flight: among the next
// few. The look-ahead starts at window targets and doubles until it holds
// them all, reading the stored targets once per try, so memory is O(window),
// not O(targets). It leaves it at p.
func storedAhead(ctx context.Context, st store.Store, scanID string, it *targets.Iter, p, prefix uint64, window int) (map[key]struct{}, error) {
	defer it.Seek(p)
	for ; ; window *= 2 {
		it.Seek(p)
		ahead := make(map[key]struct{})
		end := false
		for len(ahead) < window && !end {
			t, _, ok := it.Next()
			if end = !ok; ok {
				ahead[key{t.Addr, t.Port}] = struct{}{}
			}
		}
		found := make(map[key]struct{})
		var stored uint64
		err := st.Done(ctx, scanID, func(ip netip.Addr, port uint16) error {
			stored++
			if _, ok := ahead[key{ip, port}]; ok {
				found[key{ip, port}] = struct{}{}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		// At the end, the whole rest was looked at: a stored target outside it
		// (none, unless the target space changed) needs no skipping.
		if stored <= prefix+uint64(len(found)) || end {
			return found, nil
		}
	}
}

// seekCount seeks it to position p and returns how many targets of its shard
// lie below p. A shard's positions are I, I+N, I+2N... (Space.Order), so two
// steps from the start give I and N.
func seekCount(it *targets.Iter, p uint64) uint64 {
	defer it.Seek(p)
	it.Seek(0)
	_, first, ok := it.Next()
	if !ok || p <= first {
		return 0
	}
	_, second, ok := it.Next()
	if !ok {
		return 1
	}
	step := second - first
	n := (p - first) / step
	if (p-first)%step != 0 {
		n++
	}
	return min(n, it.Len())
}

// snapshot returns the running totals.
func (e *engine) snapshot() Stats {
	return Stats{
		Total:   e.total,
		Done:    e.stats.done.Load(),
		Skipped: e.stats.skipped.Load(),
		Open:    e.stats.open.Load(),
		DICOM:   e.stats.dicom.Load(),
		Exposed: e.stats.exposed.Load(),
		Errors:  e.stats.errors.Load(),
		Started: e.start,
	}
}

// dispatch takes targets from it, skips those already stored, and hands the
// others to the workers, each when its address is free. It reports whether
// it reached the end of it, rather than ctx's.
func (e *engine) dispatch(ctx context.Context, it *targets.Iter, skip map[key]struct{}, jobs chan<- *job) bool {
	for {
		select {
		case e.sem <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		var j *job
		for j == nil {
			t, pos, ok := it.Next()
			if !ok {
				<-e.sem
				return true
			}
			e.mu.Lock()
			if k := (key{t.Addr, t.Port}); len(skip) > 0 {
				if _, stored := skip[k]; stored {
					delete(skip, k)
					e.frontier = pos + 1
					e.mu.Unlock()
					e.stats.skipped.Add(1)
					e.stats.done.Add(1)
					continue
				}
			}
			j = &job{t: t, pos: pos, prev: e.tail}
			if e.tail == nil {
				e.head = j
			} else {
				e.tail.next = j
			}
			e.tail = j
			e.pending++
			e.frontier = pos + 1
			e.mu.Unlock()
		}
		if !e.hosts.acquire(j) {
			continue // queued behind its address's probe; that worker runs it
		}
		select {
		case jobs <- j:
		case <-ctx.Done():
			return false
		}
	}
}

// checkpoint returns the lowest position whose result is not stored or in
// the batch being written. e.mu must be held.
func (e *engine) checkpoint() uint64 {
	if e.head != nil {
		return e.head.pos
	}
	return e.frontier
}

// unlink removes a job whose result goes into the batch from the list.
func (e *engine) unlink(j *job) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if j.prev == nil {
		e.head = j.next
	} else {
		j.prev.next = j.next
	}
	if j.next == nil {
		e.tail = j.prev
	} else {
		j.next.prev = j.prev
	}
	j.prev, j.next = nil, nil
	e.pending--
}

// work runs jobs, each followed by the jobs that waited for its address,
// and sends those with a result to the writer. A job dropped because ctx
// ended is not sent: it stays in the list, below the next checkpoint.
func (e *engine) work(ctx context.Context, stop context.CancelCauseFunc, jobs <-chan *job, results chan<- *job) {
	for j := range jobs {
		for ; j != nil; j = e.hosts.release(j.t.Addr) {
			if ctx.Err() != nil {
				continue
			}
			if err := e.lim.Wait(ctx); err != nil {
				// ctx ended, or its deadline is too near for our turn.
				stop(fmt.Errorf("scan: rate limit: %w", err))
				continue
			}
			if e.probe(ctx, j) {
				results <- j
			}
		}
	}
}

// probe probes j.t into j.res under its own deadline. It reports false when
// the result must be dropped because ctx ended (the user's cancellation or a
// failed run, not the target's deadline).
func (e *engine) probe(ctx context.Context, j *job) bool {
	pctx, cancel := context.WithTimeout(ctx, e.cfg.MaxHostTime)
	defer cancel()
	done := make(chan probe.Result, 1) // the probe may outlive us
	go e.call(pctx, j.t, done)
	overrun := time.NewTimer(e.cfg.MaxHostTime + e.cfg.grace())
	defer overrun.Stop()
	select {
	case j.res = <-done:
	case <-overrun.C:
		e.cfg.Logger.Warn("probe did not return after its deadline; abandoned", "target", j.t.String(),
			"max_host_time", e.cfg.MaxHostTime)
		j.res = e.failed(j.t, TextOverrun)
	case <-ctx.Done():
		// The result is dropped; wait a little for the probe so that none
		// outlives Run.
		grace := time.NewTimer(e.cfg.grace())
		defer grace.Stop()
		select {
		case <-done:
		case <-grace.C:
		}
		return false
	}
	return ctx.Err() == nil
}

// call runs the prober, turning a panic into an error result.
func (e *engine) call(ctx context.Context, t targets.Target, done chan<- probe.Result) {
	defer func() {
		if v := recover(); v != nil {
			e.cfg.Logger.Error("probe panicked", "target", t.String(), "panic", fmt.Sprint(v),
				"stack", string(debug.Stack()))
			done <- e.failed(t, TextPanic)
		}
	}()
	done <- e.p.Probe(ctx, t)
}

// failed returns an error result for t.
func (e *engine) failed(t targets.Target, msg string) probe.Result {
	return probe.Result{IP: t.Addr, Port: t.Port, Time: e.cfg.Now(), Status: probe.StatusError, Error: msg}
}

// write stores the results that arrive in batches, with the checkpoint,
// until results is closed. On a store or OnResult error it stops the run
// and drains results; it returns the error.
func (e *engine) write(ctx context.Context, stop context.CancelCauseFunc, results <-chan *job) error {
	// The last batch is written after a cancellation: the scan stays resumable.
	wctx := context.WithoutCancel(ctx)
	batch := make([]probe.Result, 0, e.cfg.BatchSize)
	tick := time.NewTicker(e.cfg.FlushInterval)
	defer tick.Stop()
	var err error
	flush := func() {
		if err != nil {
			return
		}
		if err = e.flush(wctx, batch); err != nil {
			stop(err)
		}
		clear(batch)
		batch = batch[:0]
	}
	for {
		select {
		case j, ok := <-results:
			if !ok {
				flush()
				return err
			}
			<-e.sem
			if err != nil {
				continue
			}
			e.unlink(j)
			r := j.res
			r.ScanID, r.IP, r.Port = e.scanID, j.t.Addr, j.t.Port
			if r.Time.IsZero() {
				r.Time = e.cfg.Now()
			}
			if r.Status == 0 {
				r.Status, r.Error = probe.StatusError, TextNoStatus
			}
			r.Sanitize()
			if e.cfg.Logger.Enabled(ctx, slog.LevelDebug) {
				e.cfg.Logger.Debug("target done", "target", j.t.String(), "status", r.Status, "level", r.Level())
			}
			batch = append(batch, r)
			if len(batch) >= e.cfg.BatchSize {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}

// flush stores batch and the checkpoint in one transaction, then counts
// the results and passes them to OnResult.
func (e *engine) flush(ctx context.Context, batch []probe.Result) error {
	e.mu.Lock()
	cp := e.checkpoint()
	e.mu.Unlock()
	if len(batch) == 0 && cp == e.written {
		return nil
	}
	if err := e.st.PutResults(ctx, e.scanID, batch, store.Progress{Done: cp}); err != nil {
		return fmt.Errorf("store %d results with checkpoint %d: %w", len(batch), cp, err)
	}
	e.written = cp
	for i := range batch {
		e.stats.count(&batch[i])
	}
	if e.cfg.OnResult == nil {
		return nil
	}
	for _, r := range batch {
		if err := e.cfg.OnResult(r); err != nil {
			return fmt.Errorf("output result for %s: %w", netip.AddrPortFrom(r.IP, r.Port), err)
		}
	}
	return nil
}

// hosts holds the addresses being probed, so that each address has one
// probe at a time (SPEC: per-host concurrency of 1).
type hosts struct {
	mu   sync.Mutex            // protects busy
	busy map[netip.Addr][]*job // address being probed → jobs waiting for it, oldest first
}

// acquire marks j's address busy and reports true when it was free;
// otherwise it queues j behind the address's probe.
func (h *hosts) acquire(j *job) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if q, busy := h.busy[j.t.Addr]; busy {
		h.busy[j.t.Addr] = append(q, j)
		return false
	}
	h.busy[j.t.Addr] = nil
	return true
}

// release hands on addr: it returns the next job waiting for it, which the
// caller runs, or frees addr and returns nil.
func (h *hosts) release(addr netip.Addr) *job {
	h.mu.Lock()
	defer h.mu.Unlock()
	q := h.busy[addr]
	if len(q) == 0 {
		delete(h.busy, addr)
		return nil
	}
	j := q[0]
	q[0] = nil
	h.busy[addr] = q[1:]
	return j
}
