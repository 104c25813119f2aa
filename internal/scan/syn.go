package scan

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/pacswatch/pacswatch/internal/discover"
	"github.com/pacswatch/pacswatch/internal/fifo"
)

// The SYN stage (Config.SYN): the connect stage of IPv4 targets sends SYNs from raw sockets
// (discover.SYNScanner) instead of calling connect(). An attempt in flight is then a job
// waiting in the scanner's table, with no socket and no goroutine: the dispatcher starts it
// (after the target's rate token, and once its address is free: one attempt or probe per
// address at a time), the scanner's goroutine hands the answer to one completer goroutine
// through an unbounded queue (so that reading answers never waits for the store), and the
// completer sends a closed, filtered or unreachable target's result to the writer, or starts
// the probe of an open target in a goroutine of its own, Concurrency at a time. An attempt that
// found no answer while the stage's receive buffer dropped packets (discover.ErrLost) is made
// again: the scanner's own limit is never a target's result. The probe
// connects itself (as with Config.Redial: a second connection, with a rate token of its own);
// the kernel already reset the SYN stage's half-open connection. When a target is done, the
// next target waiting for its address starts. IPv6 targets go through the connect() workers.

// SYNInFlight bounds the SYN stage's attempts in flight (the jobs the dispatcher holds): with
// the default connect timeout of 2 s, 32,768 attempts a second at most when none answers.
const SYNInFlight = 1 << 16

// synStage reports whether a run of cfg has a SYN stage: Config.SYN with a connect stage.
func (cfg Config) synStage() bool { return cfg.SYN && cfg.ConnectTimeout > 0 }

// synStage is the engine's SYN stage.
type synStage struct {
	s      *discover.SYNScanner
	q      synQueue
	chains sync.WaitGroup // jobs of the stage, each with the jobs that wait for its address
}

// synDone is an attempt's answer, for the completer.
type synDone struct {
	j   *job
	err error
}

// synQueue is an unbounded FIFO of answers, safe for concurrent use.
type synQueue struct {
	mu     sync.Mutex
	cond   sync.Cond
	items  fifo.Queue[synDone]
	closed bool
}

func (q *synQueue) push(d synDone) {
	q.mu.Lock()
	q.items.Push(d)
	q.mu.Unlock()
	q.cond.Signal()
}

// pop returns the oldest answer, waiting for one; false once the queue is closed and empty.
func (q *synQueue) pop() (synDone, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.items.Len() == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.items.Len() == 0 {
		return synDone{}, false
	}
	d := q.items.First()
	q.items.Pop()
	return d, true
}

func (q *synQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

// startSYN opens the SYN stage of a run, which ends when runCtx does.
func (e *engine) startSYN(runCtx context.Context, results chan<- *job) (stop func(), err error) {
	s, err := discover.NewSYNScanner(e.cfg.ConnectTimeout)
	if err != nil {
		return nil, fmt.Errorf("scan: syn stage: %w", err)
	}
	e.syn = &synStage{s: s}
	e.syn.q.cond.L = &e.syn.q.mu
	unhook := context.AfterFunc(runCtx, func() { s.Close() }) // the attempts in flight end: dropped
	completed := make(chan struct{})
	go func() {
		defer close(completed)
		for {
			d, ok := e.syn.q.pop()
			if !ok {
				return
			}
			e.synAnswered(runCtx, d.j, d.err, results)
		}
	}()
	return func() {
		e.syn.chains.Wait()
		e.syn.q.close()
		<-completed
		unhook()
		s.Close()
	}, nil
}

// synTakes reports whether j goes through the SYN stage.
func (e *engine) synTakes(j *job) bool {
	return e.syn != nil && !j.preset && j.t.Addr.Unmap().Is4()
}

// synStart starts j's attempt, j's address being held for it; its answer goes to the
// completer. Called by the dispatcher, and by whoever finished the job before j on its address.
func (e *engine) synStart(ctx context.Context, j *job) {
	if ctx.Err() != nil {
		e.synDrop(j)
		return
	}
	if err := e.wait(ctx); err != nil {
		if ctx.Err() == nil {
			e.stop(fmt.Errorf("scan: rate limit: %w", err))
		}
		e.synDrop(j)
		return
	}
	ap := netip.AddrPortFrom(j.t.Addr, j.t.Port)
	var w fileWait
	for {
		err := e.syn.s.Start(ap, func(err error) { e.syn.q.push(synDone{j, err}) })
		if err == nil {
			return
		}
		if !outOfFiles(err) { // no route at once (ENETUNREACH), or the stage closed
			e.syn.q.push(synDone{j, err})
			return
		}
		// The route lookup found no descriptor: our limit, not the target's answer.
		if giveUp := w.short(e.cfg.Dialer); ctx.Err() != nil || giveUp || !w.pause(ctx) {
			if giveUp && ctx.Err() == nil {
				e.outOfFiles(e.stop)
			}
			e.synDrop(j)
			return
		}
	}
}

// synAnswered takes an attempt's answer (completer goroutine): a closed, filtered or
// unreachable target's result goes to the writer, an open target to its probe.
func (e *engine) synAnswered(ctx context.Context, j *job, err error, results chan<- *job) {
	if ctx.Err() != nil || errors.Is(err, discover.ErrClosed) {
		e.synDrop(j) // the run stopped: the attempt says nothing
		return
	}
	if errors.Is(err, discover.ErrLost) {
		// Our receive buffer dropped packets while j waited: its answer may have been one.
		// Again after a pause that grows, so that a stage overloaded for long backs off.
		e.stats.retried.Add(1)
		e.cfg.Logger.Debug("syn stage dropped answers; trying again", "target", j.t.String(), "try", j.lost+1)
		pause := min(50*time.Millisecond<<min(j.lost, 6), 2*time.Second)
		j.lost = min(j.lost+1, 100)
		time.AfterFunc(pause, func() { e.synStart(ctx, j) })
		return
	}
	a := new(attempt)
	e.cfg.Dialer.reach.report(err, a)
	if err != nil {
		j.res, j.att = connectResult(j.t, err, e.cfg.Now()), a
		results <- j
		e.synNext(ctx, j)
		return
	}
	go func() {
		if e.synProbe(ctx, j) {
			results <- j
		}
		e.synNext(ctx, j)
	}()
}

// synProbe probes j, whose port answered the SYN stage, again while the scanner's own limits
// spoil the probe; it reports whether j has a result to store.
func (e *engine) synProbe(ctx context.Context, j *job) bool {
	for try := 0; ; try++ {
		a := new(attempt) // no credit: the probe's connection takes a rate token of its own
		if !e.stagedProbe(ctx, j, a) {
			return false
		}
		if a.outOfFiles.Load() {
			e.outOfFiles(e.stop)
			return false
		}
		if !a.spoilt() {
			j.att = a
			return true
		}
		e.stats.retried.Add(1)
		pause := time.NewTimer(min(50*time.Millisecond<<min(try, 6), 2*time.Second))
		select {
		case <-pause.C:
		case <-ctx.Done():
			pause.Stop()
			return false
		}
	}
}

// synNext starts the job that waited for j's address, if any; otherwise j's chain ends.
func (e *engine) synNext(ctx context.Context, j *job) {
	next := e.hosts.release(j.t.Addr)
	if next == nil {
		e.syn.chains.Done()
		return
	}
	if ctx.Err() != nil {
		e.synDrop(next)
		return
	}
	e.synStart(ctx, next)
}

// synDrop drops j, and the jobs that wait for its address, without a result: they stay below
// the next checkpoint. j's chain ends.
func (e *engine) synDrop(j *job) {
	for n := e.hosts.release(j.t.Addr); n != nil; n = e.hosts.release(n.t.Addr) {
	}
	e.syn.chains.Done()
}
