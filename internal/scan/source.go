package scan

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"sync"

	"github.com/pacswatch/pacswatch/internal/discover"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/targets"
)

// source gives the engine its targets in order: the shard's permutation (Run), or the hits of
// a discovery (RunHits). closed says discovery found the target closed: it is counted, not
// probed.
type source interface {
	next() (t targets.Target, pos uint64, closed, ok bool)
}

// iterSource is a shard's permutation.
type iterSource struct{ it *targets.Iter }

func (s iterSource) next() (targets.Target, uint64, bool, bool) {
	t, pos, ok := s.it.Next()
	return t, pos, false, ok
}

// hitSource numbers the hits of a discovery in the order they arrive.
type hitSource struct {
	ctx  context.Context
	hits <-chan discover.Hit
	pos  uint64
}

func (s *hitSource) next() (targets.Target, uint64, bool, bool) {
	select {
	case h, ok := <-s.hits:
		if !ok {
			return targets.Target{}, 0, false, false
		}
		s.pos++
		return targets.Target{Addr: h.Addr.Addr(), Port: h.Addr.Port()}, s.pos - 1, h.Closed, true
	case <-s.ctx.Done():
		return targets.Target{}, 0, false, false
	}
}

// RunHits scans the targets a discovery reports (SPEC --discover zmap) as Run scans a
// shard: it probes each hit, with Config's limits, stores the results that answered with a
// checkpoint, counts the hits discovery found closed in the tallies without probing them, and
// marks the scan finished once hits is closed and every hit is done. Config.ConnectTimeout is
// not used: discovery found the port open.
//
// Hits have no place in a permutation, so resuming is not by checkpoint: each run of a scan
// re-runs discovery, and RunHits skips the hits that have a stored result (read at the start,
// one entry per answering target, which are few), probes the rest, and counts the tallies of
// this run afresh (discovery reports every closed target again). The checkpoint's Done counts
// this run's hits done in arrival order. A hit reported twice is probed once.
//
// done is called once hits is closed and every hit is done: a non-nil error (discovery
// failed, or stopped short) is returned, and the scan is not marked finished.
func RunHits(ctx context.Context, st store.Store, sc store.Scan, hits <-chan discover.Hit, done func() error, p Prober, cfg Config) (Stats, error) {
	cfg.ConnectTimeout = 0
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Stats{}, err
	}
	stored := make(map[key]struct{})
	err = st.Done(ctx, sc.ID, func(ip netip.Addr, port uint16) error {
		stored[key{ip, port}] = struct{}{}
		return nil
	})
	if err != nil {
		return Stats{}, fmt.Errorf("read stored results of scan %q: %w", sc.ID, err)
	}
	fresh := sc
	fresh.Progress = store.Progress{}
	e := newEngine(st, fresh, sc.Total, p, cfg)
	e.discovery = done
	if len(stored) > 0 {
		cfg.Logger.Info("resuming scan: discovery runs again; stored targets are skipped", "scan", sc.ID, "stored", len(stored))
	}
	src := &hitSource{ctx: ctx, hits: dedupe(ctx, hits, stored, &e.stats)}
	return e.execute(ctx, sc, src, nil, math.MaxUint64)
}

// dedupe passes on the hits not stored and not seen before; skipped counts the stored ones.
func dedupe(ctx context.Context, hits <-chan discover.Hit, stored map[key]struct{}, c *counters) <-chan discover.Hit {
	out := make(chan discover.Hit)
	var once sync.Once
	seen := make(map[netip.AddrPort]struct{})
	go func() {
		defer once.Do(func() { close(out) })
		for h := range hits {
			if _, dup := seen[h.Addr]; dup {
				continue
			}
			seen[h.Addr] = struct{}{}
			if _, ok := stored[key{h.Addr.Addr(), h.Addr.Port()}]; ok {
				c.skipped.Add(1)
				c.done.Add(1)
				continue
			}
			select {
			case out <- h:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}
