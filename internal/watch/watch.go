// Package watch is `pacswatch watch` (SPEC "serve and watch"): scans on a schedule, each run
// compared with the one before, and alerts on what changed — new exposure, growth beyond a
// threshold, fixes with their time to fix — by JSON webhook (retried with backoff) and,
// optionally, e-mail.
//
// The scans themselves go through the scanner's own command (a Scanner: the cli runs `scan` and
// `scan --resume` in-process), so that the engine, the lease and the resume rules are the
// scanner's: a run interrupted by a restart is resumed, and two never run at once. What changed
// is report.Diff's comparison; when a system was first seen exposed and when it was fixed is
// derived from the store's scans (HostHistory), never kept apart. What was alerted is kept in a
// small state file, so that a restart neither repeats nor loses an alert.
package watch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/pacswatch/pacswatch/internal/fileout"
	"github.com/pacswatch/pacswatch/internal/geo"
	"github.com/pacswatch/pacswatch/internal/store"
)

// Scanner runs the watch's scans.
type Scanner interface {
	// Scan runs a new scan of the watch's targets to its end, or with resume the store's
	// unfinished scan of the watch. It returns ctx's error when interrupted.
	Scan(ctx context.Context, resume bool) error
}

// Watcher runs a watch. Config, Scanner and Open are required.
type Watcher struct {
	Config  Config
	Scanner Scanner
	// Open opens the store for reading (between scans; closed after each look).
	Open  func(ctx context.Context) (store.Reader, error)
	Geo   *geo.DB // places alerts; may be nil
	Sinks []Sink
	Log   *slog.Logger // nil discards
	// Metrics, when set, counts scans and alerts.
	Metrics *Metrics
	// Now and After are the clock; default time.Now and time.After.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
}

// Alerted is what a watch alerted (its state file): per sink, the last run whose alerts it took.
type Alerted struct {
	Alerted map[string]string `json:"alerted"`
}

func (w *Watcher) defaults() {
	if w.Log == nil {
		w.Log = slog.New(slog.DiscardHandler)
	}
	if w.Now == nil {
		w.Now = time.Now
	}
	if w.After == nil {
		w.After = time.After
	}
}

// Run resumes an interrupted scan of the watch, sends the alerts not sent yet, and then scans
// on the schedule until ctx ends, when it returns nil. A failed scan is logged and counted; the
// next start resumes it.
func (w *Watcher) Run(ctx context.Context) error {
	w.defaults()
	w.Metrics.sinks(w.Sinks)
	sched, err := w.Config.Schedule.Parse()
	if err != nil {
		return err
	}
	if err := w.cycle(ctx, true); err != nil && ctx.Err() == nil {
		w.Log.Error("watch", "err", err)
	}
	next, err := w.first(ctx, sched)
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return err
	}
	for {
		w.Log.Info("next scan", "at", next.UTC().Format(time.RFC3339))
		select {
		case <-ctx.Done():
			return nil
		case <-w.After(max(0, next.Sub(w.Now()))):
		}
		if err := w.cycle(ctx, false); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			w.Log.Error("watch", "err", err)
		}
		// Starts missed while a scan ran are skipped, never run back to back.
		for now := w.Now(); !next.After(now); {
			next = sched.Next(next)
		}
	}
}

// first returns when the first scheduled run starts: now for a watch that never ran or missed
// a start while it was stopped, else the schedule's next start after its latest run's.
func (w *Watcher) first(ctx context.Context, sched Next) (time.Time, error) {
	now := w.Now()
	st, err := w.Open(ctx)
	if errors.Is(err, os.ErrNotExist) {
		return now, nil
	}
	if err != nil {
		return now, err
	}
	defer st.Close()
	scans, err := st.Scans(ctx)
	if err != nil {
		return now, err
	}
	var last time.Time
	for _, g := range store.Groups(scans) {
		if g.Scans[0].Name == w.Config.Name {
			last = g.Started()
		}
	}
	if last.IsZero() {
		return now, nil
	}
	if next := sched.Next(last); next.After(now) {
		return next, nil
	}
	return now, nil
}

// cycle runs one scan (at startup only the resumption of an unfinished one) and alerts.
func (w *Watcher) cycle(ctx context.Context, startup bool) error {
	resume, err := w.unfinished(ctx)
	if err != nil {
		return err
	}
	if resume || !startup {
		start := w.Now()
		err := w.Scanner.Scan(ctx, resume)
		w.Metrics.scanned(err, start, w.Now())
		if err != nil {
			return fmt.Errorf("scan: %w", err)
		}
	}
	return w.alert(ctx)
}

// unfinished reports whether the store's latest unfinished scan is the watch's.
func (w *Watcher) unfinished(ctx context.Context) (bool, error) {
	st, err := w.Open(ctx)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer st.Close()
	sc, err := store.Unfinished(ctx, st, "")
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return sc.Name == w.Config.Name, nil
}

// alert sends, to each sink, the alerts of every finished run of the watch it has not taken yet
// (each compared with the watch's finished run before it), oldest first, and records it.
func (w *Watcher) alert(ctx context.Context) error {
	st, err := w.Open(ctx)
	if errors.Is(err, os.ErrNotExist) {
		return nil // no store before the first scan
	}
	if err != nil {
		return err
	}
	defer st.Close()
	scans, err := st.Scans(ctx)
	if err != nil {
		return err
	}
	var runs []store.Group
	for _, g := range store.Groups(scans) {
		if g.Scans[0].Name == w.Config.Name && g.Finished() {
			runs = append(runs, g)
		}
	}
	if len(runs) == 0 {
		return nil
	}
	last := runs[len(runs)-1]
	if sys, err := st.Systems(ctx, last.IDs()...); err == nil {
		w.Metrics.exposedNow(sys.Accessible)
	}
	state, err := w.loadState()
	if err != nil {
		return err
	}
	for _, sink := range w.Sinks {
		if err := w.catchUp(ctx, st, runs, sink, &state); err != nil {
			return err
		}
	}
	if len(w.Sinks) == 0 {
		state.Alerted[""] = last.ID()
	}
	return w.saveState(state)
}

// catchUp sends one sink the runs after the last it took. The first run of a watch is its
// baseline: nothing to compare it with, nothing sent.
func (w *Watcher) catchUp(ctx context.Context, st store.Reader, runs []store.Group, sink Sink, state *Alerted) error {
	from := max(1, len(runs)-1) // a sink new to the watch: the latest comparison only
	if done, ok := state.Alerted[sink.Name()]; ok {
		for i, r := range runs {
			if r.ID() == done {
				from = i + 1
			}
		}
	}
	for i := from; i < len(runs); i++ {
		alerts, err := Changes(ctx, st, runs[i-1], runs[i], w.Geo, w.Config.Alerts.Growth())
		if err != nil {
			return err
		}
		if len(alerts) > 0 {
			d := Delivery{Watch: w.Config.Name, Run: runs[i].ID(), Previous: runs[i-1].ID(), Alerts: alerts}
			err := sink.Send(ctx, d)
			w.Metrics.sent(sink.Name(), alerts, err)
			if err != nil {
				return err // the state stays: the next cycle sends them again
			}
			w.Log.Info("alerts sent", "sink", sink.Name(), "run", runs[i].ID(), "alerts", len(alerts))
		}
		state.Alerted[sink.Name()] = runs[i].ID()
		if err := w.saveState(*state); err != nil {
			return err
		}
	}
	if _, ok := state.Alerted[sink.Name()]; !ok {
		state.Alerted[sink.Name()] = runs[len(runs)-1].ID()
	}
	return nil
}

func (w *Watcher) loadState() (Alerted, error) {
	s := Alerted{Alerted: map[string]string{}}
	b, err := os.ReadFile(w.Config.State)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("watch: read state %s: %w", fileout.Show(w.Config.State), err)
	}
	if err := json.Unmarshal(b, &s); err != nil || s.Alerted == nil {
		return Alerted{Alerted: map[string]string{}}, fmt.Errorf("watch: state %s is not a watch's state file", fileout.Show(w.Config.State))
	}
	return s, nil
}

func (w *Watcher) saveState(s Alerted) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return fileout.WriteFile(w.Config.State, append(b, '\n'))
}
