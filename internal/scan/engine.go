package scan

import (
	"context"
	"fmt"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/pacswatch/pacswatch/internal/discover"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/targets"
)

// counters are Stats, updated while Run runs.
type counters struct {
	done, skipped, excluded, open, dicom, exposed, errors, retried atomic.Uint64
	closed, filtered, unreachable                                  atomic.Uint64
}

// tally counts a result that is counted, not stored (see tallyOf).
func (c *counters) tally(t store.Tally) {
	c.done.Add(1)
	c.closed.Add(t.Closed)
	c.filtered.Add(t.Filtered)
	c.unreachable.Add(t.Unreachable)
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
	att        *attempt // the probe that made res, with a Dialer
	// preset: res is the target's result already (discovery found it
	// closed), and it is not probed.
	preset bool
	lost   uint8 // SYN stage attempts whose answer may have been dropped (discover.ErrLost)
	// below counts the targets done without a stored result between the
	// job before this one in the list (or the last checkpoint) and this
	// one: below its position (see tallies).
	below tallies
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
	lim    *rate.Limiter // a token per target; nil: no limit
	admit  chan struct{} // with a Dialer, bounds the workers waiting for a target's token
	hosts  hosts
	sem    chan struct{} // one token per job, so memory is O(Concurrency)
	total  uint64
	start  time.Time
	stats  counters

	written  uint64  // last checkpoint stored; writer goroutine only
	excluded uint64  // excluded targets below it; writer goroutine only
	tallies  tallies // the tallies stored with it; writer goroutine only

	discovery func() error            // with RunHits, the discovery's error once its hits end
	spawn     func(*job) bool         // with a connect stage, starts a worker for a job if workers() allows; dispatcher only
	started   int                     // workers started; dispatcher only
	connector *discover.Connector     // the connect stage; nil: the probes connect
	syn       *synStage               // the SYN stage of IPv4 targets (Config.SYN); nil: connect()
	stop      context.CancelCauseFunc // stops the run, for the SYN stage
	probes    chan struct{}           // with a connect stage, one token per probe running

	mu        sync.Mutex // protects the fields below
	head      *job       // oldest job not stored; jobs are linked in rising position
	tail      *job       // newest job
	pending   int        // jobs in the list
	frontier  uint64     // the position after the last one taken from the iterator
	tailBelow tallies    // targets done without a stored result after the tail (after the checkpoint when the list is empty)
}

// newEngine returns the engine of one Run, its counters not yet set.
func newEngine(st store.Store, sc store.Scan, total uint64, p Prober, cfg Config) *engine {
	e := &engine{
		st:       st,
		scanID:   sc.ID,
		p:        p,
		cfg:      cfg,
		hosts:    hosts{busy: make(map[netip.Addr][]*job)},
		total:    total,
		start:    cfg.Now(),
		written:  sc.Progress.Done,
		excluded: sc.Progress.Excluded,
		tallies:  tallies(sc.Progress.Clone().Tallies),
		frontier: sc.Progress.Done,
	}
	switch d := cfg.Dialer; {
	case d != nil:
		e.lim = d.lim
		// Admissions queued for tokens span 2 ms of the rate at most, so that a
		// running probe's next connection waits behind few new targets.
		e.admit = make(chan struct{}, max(1, int(d.cfg.Rate/500)))
		d.reach.reset()
		if n := d.MaxSockets(); e.cfg.Concurrency > n {
			cfg.Logger.Info("concurrency lowered to the sockets the file descriptor limit allows",
				"concurrency", e.cfg.Concurrency, "max_sockets", n, "file_limit", FileLimit())
			e.cfg.Concurrency = n
		}
	case cfg.Rate > 0:
		e.lim = rate.NewLimiter(rate.Limit(cfg.Rate), 1)
	}
	held := 2 * e.workers()
	if cfg.synStage() {
		held = max(held, SYNInFlight+2*e.cfg.Concurrency)
	}
	e.sem = make(chan struct{}, held)
	e.stats.excluded.Store(sc.Progress.Excluded)
	return e
}

// workers returns how many workers the engine runs: Concurrency, or one per connection
// attempt in flight with a connect stage.
func (e *engine) workers() int {
	if e.cfg.ConnectTimeout > 0 {
		return connectWorkers(e.cfg.Dialer.MaxSockets(), e.cfg.Concurrency)
	}
	return e.cfg.Concurrency
}

// snapshot returns the running totals.
func (e *engine) snapshot() Stats {
	return Stats{
		Total:    e.total,
		Done:     e.stats.done.Load(),
		Skipped:  e.stats.skipped.Load(),
		Excluded: e.stats.excluded.Load(),
		Open:     e.stats.open.Load(),
		DICOM:    e.stats.dicom.Load(),
		Exposed:  e.stats.exposed.Load(),
		Errors:   e.stats.errors.Load(),
		Retried:  e.stats.retried.Load(),
		Started:  e.start,

		Closed:      e.stats.closed.Load(),
		Filtered:    e.stats.filtered.Load(),
		Unreachable: e.stats.unreachable.Load(),
	}
}

// dispatch takes targets from it, skips those already stored and those
// excluded, and hands the others to the workers, each when its address is
// free. It reports whether it reached the end of it, rather than ctx's.
func (e *engine) dispatch(ctx context.Context, it source, skip map[key]struct{}, jobs chan<- *job) bool {
	for {
		select {
		case e.sem <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		j, ok := e.take(it, skip)
		if !ok {
			<-e.sem
			return true
		}
		if !e.hosts.acquire(j) {
			continue // queued behind its address's probe; that worker runs it
		}
		if e.synTakes(j) {
			e.syn.chains.Add(1)
			e.synStart(ctx, j)
			continue
		}
		select {
		case jobs <- j:
			continue
		default:
		}
		if e.spawn != nil && e.spawn(j) {
			continue // no worker was free: a new one runs j
		}
		select {
		case jobs <- j:
		case <-ctx.Done():
			return false
		}
	}
}

// take returns the next target of it to probe as a job linked at the tail
// of the list; false at the end of it.
func (e *engine) take(it source, skip map[key]struct{}) (*job, bool) {
	for {
		t, pos, closed, ok := it.next()
		if !ok {
			return nil, false
		}
		excluded := e.cfg.Exclude != nil && e.cfg.Exclude(t)
		e.mu.Lock()
		if k := (key{t.Addr, t.Port}); len(skip) > 0 {
			if _, stored := skip[k]; stored {
				// Probed and stored before it was excluded, if it is.
				delete(skip, k)
				e.frontier = pos + 1
				e.mu.Unlock()
				e.stats.skipped.Add(1)
				e.stats.done.Add(1)
				continue
			}
		}
		e.frontier = pos + 1
		if excluded {
			// Counted once the checkpoint passes it: see flush.
			e.tailBelow = e.tailBelow.add(t.Port, store.Tally{Excluded: 1})
			e.mu.Unlock()
			continue
		}
		j := &job{t: t, pos: pos, prev: e.tail, below: e.tailBelow, preset: closed}
		if closed {
			j.res = probe.Result{IP: t.Addr, Port: t.Port, Time: e.cfg.Now().UTC(), Status: probe.StatusClosed, Error: "connection refused"}
		}
		e.tailBelow = nil
		if e.tail == nil {
			e.head = j
		} else {
			e.tail.next = j
		}
		e.tail = j
		e.pending++
		e.mu.Unlock()
		return j, true
	}
}

// checkpoint returns the lowest position whose result is not stored or in
// the batch being written, and takes the tallies of the targets below it
// that are not counted yet. e.mu must be held.
func (e *engine) checkpoint() (cp uint64, below tallies) {
	if e.head != nil {
		below, e.head.below = e.head.below, nil
		return e.head.pos, below
	}
	below, e.tailBelow = e.tailBelow, nil
	return e.frontier, below
}

// unlink removes a job whose result goes into the batch, or is counted in
// the tallies (own, for its port), from the list; the targets counted
// below it, and it when own is not nil, stay below the job after it.
func (e *engine) unlink(j *job, own *store.Tally) {
	if own != nil {
		j.below = j.below.add(j.t.Port, *own)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if j.prev == nil {
		e.head = j.next
	} else {
		j.prev.next = j.next
	}
	if j.next == nil {
		e.tail = j.prev
		e.tailBelow = e.tailBelow.merge(j.below)
	} else {
		j.next.prev = j.prev
		j.next.below = j.next.below.merge(j.below)
	}
	j.prev, j.next, j.below = nil, nil, nil
	e.pending--
}

// work runs jobs, each followed by the jobs that waited for its address,
// and sends those with a result to the writer. A job dropped because ctx
// ended is not sent: it stays in the list, below the next checkpoint.
func (e *engine) work(ctx context.Context, stop context.CancelCauseFunc, jobs <-chan *job, results chan<- *job) {
	for j := range jobs {
		e.chain(ctx, stop, j, results)
	}
}

// workFrom is work that starts with j.
func (e *engine) workFrom(ctx context.Context, stop context.CancelCauseFunc, j *job, jobs <-chan *job, results chan<- *job) {
	e.chain(ctx, stop, j, results)
	e.work(ctx, stop, jobs, results)
}

// chain runs j, then the jobs that waited for its address.
func (e *engine) chain(ctx context.Context, stop context.CancelCauseFunc, j *job, results chan<- *job) {
	for ; j != nil; j = e.hosts.release(j.t.Addr) {
		if e.run(ctx, stop, j) {
			results <- j
		}
	}
}

// run probes j, again while the scanner's own limits spoil the probe, and
// reports whether j has a result to store.
func (e *engine) run(ctx context.Context, stop context.CancelCauseFunc, j *job) bool {
	if j.preset {
		return ctx.Err() == nil
	}
	for try := 0; ; try++ {
		if ctx.Err() != nil {
			return false
		}
		if err := e.wait(ctx); err != nil {
			// ctx ended, or its deadline is too near for our turn.
			stop(fmt.Errorf("scan: rate limit: %w", err))
			return false
		}
		var a *attempt
		if e.cfg.Dialer != nil {
			a = new(attempt)
			a.credit.Store(e.lim != nil)
		}
		if e.connector != nil {
			open, ok := e.connect(ctx, j, a) // the rate token was the connect's
			if !ok && a.outOfFiles.Load() {
				e.outOfFiles(stop)
				return false
			}
			if !ok || !open {
				j.att = a
				return ok
			}
		}
		if !e.stagedProbe(ctx, j, a) {
			return false
		}
		switch {
		case a == nil:
			return true
		case a.outOfFiles.Load():
			e.outOfFiles(stop)
			return false
		case !a.spoilt():
			j.att = a
			return true
		}
		e.stats.retried.Add(1)
		e.cfg.Logger.Debug("probe spoilt by the scanner's own limits; probing again", "target", j.t.String(), "try", try+1)
		pause := time.NewTimer(min(50*time.Millisecond<<min(try, 6), 2*time.Second))
		select {
		case <-pause.C:
		case <-ctx.Done():
			pause.Stop()
		}
	}
}

// outOfFiles stops the run: the process has no descriptor for a socket, and none of ours.
func (e *engine) outOfFiles(stop context.CancelCauseFunc) {
	stop(fmt.Errorf("%w: the process has no file descriptor left for a socket (limit %d); raise it with ulimit -n, then resume",
		ErrOutOfFiles, FileLimit()))
}

// stagedProbe probes j (see probe), with a connect stage one of Concurrency probes at a time,
// and closes the connect stage's connection if the probe did not take it.
func (e *engine) stagedProbe(ctx context.Context, j *job, a *attempt) bool {
	if e.probes == nil {
		return e.probe(ctx, j, a)
	}
	defer a.closePre()
	select {
	case e.probes <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	defer func() { <-e.probes }()
	return e.probe(ctx, j, a)
}

// wait waits for a target's rate token. With a Dialer, it is the token of
// the probe's first connection, and few workers at a time wait for one
// (see engine.admit), so that the connections of running probes do not queue
// behind every idle worker's.
func (e *engine) wait(ctx context.Context) error {
	if e.lim == nil {
		return nil
	}
	if e.admit != nil {
		select {
		case e.admit <- struct{}{}:
			defer func() { <-e.admit }()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return e.lim.Wait(ctx)
}

// probe probes j.t into j.res under its own deadline, telling the Dialer
// of a through the probe's context. It reports false when the result must
// be dropped because ctx ended (the user's cancellation or a failed run,
// not the target's deadline).
func (e *engine) probe(ctx context.Context, j *job, a *attempt) bool {
	pctx, cancel := context.WithTimeout(ctx, e.cfg.MaxHostTime)
	defer cancel()
	if a != nil {
		pctx = context.WithValue(pctx, attemptKey{}, a)
	}
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
