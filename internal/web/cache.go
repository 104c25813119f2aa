package web

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/pacswatch/pacswatch/internal/report"
	"github.com/pacswatch/pacswatch/internal/store"
)

// errStopped is what a request waiting for a build gets once the server is closed.
var errStopped = errors.New("web: server stopped")

// job is a value being built once for everyone who asks: a run's report or host index.
type job[T any] struct {
	done  chan struct{} // closed when val and err are set
	val   T
	err   error
	built time.Time // when it was started
	final bool      // of a finished run: never built again
	used  time.Time // last asked for, for eviction
}

// wait returns the value when it is ready within d (ready false otherwise), or ctx's error.
func (j *job[T]) wait(ctx context.Context, d time.Duration) (val T, ready bool, err error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-j.done:
		return j.val, true, j.err
	case <-t.C:
		return val, false, nil
	case <-ctx.Done():
		return val, false, ctx.Err()
	}
}

// jobs is one kind of job per run, at most maxJobs of them kept.
type jobs[T any] struct {
	kind string
	m    map[string]*job[T]
}

// maxJobs bounds the reports (and indexes) kept: memory in the number of runs looked at
// recently, not in the store.
const maxJobs = 12

// runInfo is a run and the store's per-system figures of it.
type runInfo struct {
	run     store.Group
	systems store.Systems
}

// cache holds what the pages show: the runs' figures, their reports and host indexes. A
// finished run's are kept until evicted; an unfinished run's for cfg.Fresh.
type cache struct {
	ctx     context.Context // the server's: builds outlive the request that started them
	cfg     Config
	metrics *metrics
	log     *slog.Logger
	sem     chan struct{} // one build at a time: the machine is shared with scans

	mu      sync.Mutex // protects the fields below
	systems map[string]systemsEntry
	reading map[string]chan struct{} // systems being read in the background, closed when read
	reports jobs[*report.Report]
	indexes jobs[*hostIndex]
	diffs   jobs[*changeList]
}

type systemsEntry struct {
	sys   store.Systems
	at    time.Time
	final bool
}

func newCache(ctx context.Context, cfg Config, m *metrics, log *slog.Logger) *cache {
	return &cache{ctx: ctx, cfg: cfg, metrics: m, log: log, sem: make(chan struct{}, 1),
		systems: map[string]systemsEntry{}, reading: map[string]chan struct{}{},
		reports: jobs[*report.Report]{kind: "report", m: map[string]*job[*report.Report]{}},
		indexes: jobs[*hostIndex]{kind: "hosts", m: map[string]*job[*hostIndex]{}},
		diffs:   jobs[*changeList]{kind: "changes", m: map[string]*job[*changeList]{}}}
}

// runKey names a run's state: its scans, and whether it is finished.
func runKey(g store.Group) string {
	k := strings.Join(g.IDs(), "\x00")
	if g.Finished() {
		return k + "\x00finished"
	}
	return k
}

// runs returns every run of the store, oldest first, with its figures (store.Reader.Systems,
// kept for finished runs).
func (c *cache) runs(ctx context.Context) ([]runInfo, error) {
	scans, err := c.cfg.Store.Scans(ctx)
	if err != nil {
		return nil, err
	}
	groups := store.Groups(scans)
	out := make([]runInfo, len(groups))
	for i, g := range groups {
		sys, err := c.systemsOf(ctx, g)
		if err != nil {
			return nil, err
		}
		out[i] = runInfo{run: g, systems: sys}
	}
	c.metrics.scans.Set(float64(len(scans)))
	if len(out) > 0 {
		c.metrics.exposed.Set(float64(out[len(out)-1].systems.Accessible))
	}
	return out, nil
}

// systemsOf returns a run's per-system figures, kept for a finished run and for cfg.Fresh for
// another.
func (c *cache) systemsOf(ctx context.Context, g store.Group) (store.Systems, error) {
	key := runKey(g)
	c.mu.Lock()
	e, ok := c.systems[key]
	c.mu.Unlock()
	if ok && (e.final || time.Since(e.at) <= c.cfg.Fresh) {
		return e.sys, nil
	}
	sys, err := c.cfg.Store.Systems(ctx, g.IDs()...)
	if err != nil {
		return sys, err
	}
	c.mu.Lock()
	if len(c.systems) > 10*maxJobs {
		clear(c.systems) // kept small: a store of many runs reads them again
	}
	c.systems[key] = systemsEntry{sys: sys, at: time.Now(), final: g.Finished()}
	c.mu.Unlock()
	return sys, nil
}

// systemsSoon returns a run's per-system figures if they are kept or read within d; it starts
// reading them in the background (outside the one-build-at-a-time rule: an index read is short)
// so that a later call has them.
func (c *cache) systemsSoon(ctx context.Context, g store.Group, d time.Duration) (store.Systems, bool) {
	key := runKey(g)
	c.mu.Lock()
	if e, ok := c.systems[key]; ok && (e.final || time.Since(e.at) <= c.cfg.Fresh) {
		c.mu.Unlock()
		return e.sys, true
	}
	ch, ok := c.reading[key]
	if !ok {
		ch = make(chan struct{})
		c.reading[key] = ch
		go func() {
			if _, err := c.systemsOf(c.ctx, g); err != nil && c.ctx.Err() == nil {
				c.log.Error("systems", "run", g.ID(), "err", err)
			}
			c.mu.Lock()
			delete(c.reading, key)
			c.mu.Unlock()
			close(ch)
		}()
	}
	c.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
		return store.Systems{}, false
	case <-ctx.Done():
		return store.Systems{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.systems[key]
	return e.sys, ok
}

// run returns the run that holds scan id (its figures not read: see systemsOf), or
// store.ErrNotFound.
func (c *cache) run(ctx context.Context, id string) (runInfo, error) {
	scans, err := c.cfg.Store.Scans(ctx)
	if err != nil {
		return runInfo{}, err
	}
	groups := store.Groups(scans)
	i, ok := store.GroupOf(groups, id)
	if !ok {
		return runInfo{}, store.ErrNotFound
	}
	return runInfo{run: groups[i]}, nil
}

// report returns the job building the run's report (report.Build, as `pacswatch report` makes
// it with the same databases and thresholds), starting it when there is none.
func (c *cache) report(run store.Group) *job[*report.Report] {
	return start(c, &c.reports, run, func(ctx context.Context) (*report.Report, error) {
		return report.Build(ctx, c.cfg.Store, report.Options{Scan: run.ID(), Geo: c.cfg.Geo, ASN: c.cfg.ASN, Thresholds: c.cfg.Thresholds})
	})
}

// changes returns the job comparing the run with prev (watch.Changes), starting it when there is
// none. The key is the run's: a run's report always compares it with the same earlier run.
func (c *cache) changes(prev, run store.Group) *job[*changeList] {
	return start(c, &c.diffs, run, func(ctx context.Context) (*changeList, error) {
		return buildChanges(ctx, c.cfg, prev, run)
	})
}

// index returns the job building the run's host index, starting it when there is none.
func (c *cache) index(run store.Group) *job[*hostIndex] {
	return start(c, &c.indexes, run, func(ctx context.Context) (*hostIndex, error) {
		return buildIndex(ctx, c.cfg.Store, run, c.cfg.Geo)
	})
}

// start returns js's job for run, starting a build when there is none, or when an unfinished
// run's is older than cfg.Fresh; it evicts the least recently used finished jobs beyond maxJobs.
func start[T any](c *cache, js *jobs[T], run store.Group, build func(context.Context) (T, error)) *job[T] {
	key := runKey(run)
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if j, ok := js.m[key]; ok && (j.final || now.Sub(j.built) < c.cfg.Fresh || !isDone(j.done)) {
		j.used = now
		return j
	}
	j := &job[T]{done: make(chan struct{}), built: now, final: run.Finished(), used: now}
	js.m[key] = j
	evict(js)
	go func() {
		defer close(j.done)
		select {
		case c.sem <- struct{}{}:
		case <-c.ctx.Done():
			j.err = errStopped
			return
		}
		defer func() { <-c.sem }()
		t := time.Now()
		j.val, j.err = build(c.ctx)
		result := "ok"
		if j.err != nil {
			result = "error"
			c.log.Error("build", "kind", js.kind, "run", run.ID(), "err", j.err)
			if c.ctx.Err() != nil {
				j.err = errStopped
			}
			c.mu.Lock()
			j.final = false // tried again after Fresh
			c.mu.Unlock()
		}
		c.metrics.builds.WithLabelValues(js.kind, result).Inc()
		c.metrics.buildSec.WithLabelValues(js.kind).Observe(time.Since(t).Seconds())
	}()
	return j
}

func isDone(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// evict drops the least recently used finished jobs beyond maxJobs. Caller holds c.mu.
func evict[T any](js *jobs[T]) {
	for len(js.m) > maxJobs {
		var oldest string
		var at time.Time
		for k, j := range js.m {
			if isDone(j.done) && (oldest == "" || j.used.Before(at)) {
				oldest, at = k, j.used
			}
		}
		if oldest == "" {
			return
		}
		delete(js.m, oldest)
	}
}
