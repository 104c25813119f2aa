package scan

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// write stores the results that arrive in batches, with the checkpoint,
// until results is closed. On a store or OnResult error it stops the run
// and drains results; it returns the error.
//
// While the Dialer's reachWatch is undecided, a result whose connection
// found no route is held back, its job still in the list below the next
// checkpoint: if the watch finds the network unreachable, the run stops and
// those results are never stored (the targets were not really probed); if
// not, or if the run ends with too few attempts to judge, they are stored.
func (e *engine) write(ctx, runCtx context.Context, stop context.CancelCauseFunc, results <-chan *job) error {
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
	add := func(j *job) {
		r, stored := e.settle(ctx, j)
		if !stored {
			return
		}
		batch = append(batch, r)
		if len(batch) >= e.cfg.BatchSize {
			flush()
		}
	}
	var held []*job
	var decided <-chan struct{}
	if d := e.cfg.Dialer; d != nil {
		_, decided = d.reach.state()
	}
	for {
		select {
		case j, ok := <-results:
			if !ok {
				if runCtx.Err() == nil {
					for _, h := range held { // too few attempts to judge: the results stand
						add(h)
					}
				}
				flush()
				return err
			}
			<-e.sem
			if err != nil {
				continue
			}
			switch e.holdBack(j) {
			case unreachable:
				continue // dropped: the run stops
			case undecided:
				held = append(held, j)
				continue
			}
			add(j)
		case <-decided:
			decided = nil
			if v, _ := e.cfg.Dialer.reach.state(); v == unreachable {
				stop(e.cfg.Dialer.reach.err())
				clear(held)
				held = nil // never stored: their jobs stay below the checkpoint
				continue
			}
			for _, h := range held {
				add(h)
			}
			clear(held)
			held = nil
		case <-tick.C:
			flush()
		}
	}
}

// holdBack returns what to do with j's result: undecided to hold it back,
// unreachable to drop it, reachable to store it.
func (e *engine) holdBack(j *job) int {
	if j.att == nil || !j.att.unreach.Load() {
		return reachable
	}
	v, _ := e.cfg.Dialer.reach.state()
	return v
}

// settle unlinks j and returns its result, ready to store, or counts it in
// the tallies (a closed, filtered or unreachable target without
// Config.AllTargets) and returns false.
func (e *engine) settle(ctx context.Context, j *job) (probe.Result, bool) {
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
	if t, ok := tallyOf(&r); ok && !e.cfg.AllTargets {
		e.unlink(j, &t)
		e.stats.tally(t)
		return r, false
	}
	e.unlink(j, nil)
	return r, true
}

// flush stores batch and the checkpoint in one transaction, with the
// tallies of the targets below it (excluded ones, and closed, filtered and
// unreachable ones unless Config.AllTargets), then counts the results and
// passes them to OnResult.
func (e *engine) flush(ctx context.Context, batch []probe.Result) error {
	e.mu.Lock()
	cp, below := e.checkpoint()
	e.mu.Unlock()
	if len(batch) == 0 && cp == e.written && len(below) == 0 {
		return nil
	}
	excluded := below.excluded()
	progress := store.Progress{Done: cp, Excluded: e.excluded + excluded, Tallies: e.tallies.clone().merge(below)}
	if err := e.st.PutResults(ctx, e.scanID, batch, progress); err != nil {
		return fmt.Errorf("store %d results with checkpoint %d: %w", len(batch), cp, err)
	}
	e.written, e.excluded, e.tallies = cp, progress.Excluded, progress.Tallies
	e.stats.excluded.Add(excluded)
	e.stats.done.Add(excluded)
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
