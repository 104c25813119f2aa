package store

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/targets"
)

// Shard groups
//
// A run split with --shard I/N writes one scan per shard, often from different processes or
// machines (SPEC "many machines"); they belong together. Groups gathers them from the scans
// alone, so that every backend, and a store written before groups existed, agrees: walking the
// scans in the order Scans gives them, a sharded scan joins the latest group of its GroupKey
// (same --name, --seed and shard count N) when that group has no scan of its shard index yet,
// and starts a new group otherwise; an unsharded scan is a group of one. So a monthly run with
// the same name and seed starts a new group once the previous month's shard I is stored, and a
// group never holds two scans of one shard. A group is finished when all its N shards are
// stored and finished: reports compare finished groups only.

// GroupKey is what the shards of one run share.
type GroupKey struct {
	Name   string // --name
	Seed   uint64 // --seed
	Shards uint64 // N of --shard I/N; 1 for an unsharded scan
}

// ShardOf returns the scan's shard index and the number of shards, (0, 1) for an unsharded scan
// (Shard empty). ok is false for a Shard that is not "I/N" with I < N: such a scan is a group
// of its own.
func (s Scan) ShardOf() (i, n uint64, ok bool) {
	if s.Shard == "" {
		return 0, 1, true
	}
	i, n, err := targets.ParseShard(s.Shard)
	if err != nil {
		return 0, 1, false
	}
	return i, n, true
}

// GroupKey returns the key the scan's shard group is found by.
func (s Scan) GroupKey() GroupKey {
	_, n, _ := s.ShardOf()
	return GroupKey{Name: s.Name, Seed: s.Seed, Shards: n}
}

// Group is the scans of one run: the shards of a sharded scan, or one unsharded scan.
type Group struct {
	Key   GroupKey
	Scans []Scan // in the order Scans gives them; at most one per shard index
}

// ID identifies the group: the ID of its first scan (an unsharded scan's own ID).
func (g Group) ID() string { return g.Scans[0].ID }

// IDs returns the IDs of the group's scans.
func (g Group) IDs() []string {
	ids := make([]string, len(g.Scans))
	for i, s := range g.Scans {
		ids[i] = s.ID
	}
	return ids
}

// Contains reports whether scan id is one of the group's.
func (g Group) Contains(id string) bool {
	return slices.ContainsFunc(g.Scans, func(s Scan) bool { return s.ID == id })
}

// Shard returns the group's scan of shard index i.
func (g Group) Shard(i uint64) (Scan, bool) {
	for _, s := range g.Scans {
		if j, _, _ := s.ShardOf(); j == i {
			return s, true
		}
	}
	return Scan{}, false
}

// ShardsFinished returns how many of the group's shards are stored and finished.
func (g Group) ShardsFinished() uint64 {
	var n uint64
	for _, s := range g.Scans {
		if !s.Finished.IsZero() {
			n++
		}
	}
	return n
}

// Finished reports whether every one of the group's Key.Shards shards is stored and finished.
func (g Group) Finished() bool { return g.ShardsFinished() == g.Key.Shards }

// Started returns when the group's first shard started.
func (g Group) Started() time.Time {
	t := g.Scans[0].Started
	for _, s := range g.Scans[1:] {
		if s.Started.Before(t) {
			t = s.Started
		}
	}
	return t
}

// FinishedAt returns when the group's last shard finished, or the zero time while the group is
// not finished.
func (g Group) FinishedAt() time.Time {
	if !g.Finished() {
		return time.Time{}
	}
	var t time.Time
	for _, s := range g.Scans {
		if s.Finished.After(t) {
			t = s.Finished
		}
	}
	return t
}

// Total returns the number of host:port pairs in the group's stored shards.
func (g Group) Total() uint64 {
	var n uint64
	for _, s := range g.Scans {
		n += s.Total
	}
	return n
}

// Groups gathers scans, in the order Reader.Scans gives them, into shard groups (see "Shard
// groups" above), ordered by their first scan.
func Groups(scans []Scan) []Group {
	var groups []Group
	latest := map[GroupKey]int{} // the newest group of each sharded key
	for _, s := range scans {
		i, n, ok := s.ShardOf()
		if !ok || n == 1 {
			groups = append(groups, Group{Key: GroupKey{Name: s.Name, Seed: s.Seed, Shards: 1}, Scans: []Scan{s}})
			continue
		}
		k := s.GroupKey()
		if g, ok := latest[k]; ok {
			if _, taken := groups[g].Shard(i); !taken {
				groups[g].Scans = append(groups[g].Scans, s)
				continue
			}
		}
		latest[k] = len(groups)
		groups = append(groups, Group{Key: k, Scans: []Scan{s}})
	}
	return groups
}

// GroupOf returns the index of the group that holds scan id.
func GroupOf(groups []Group, id string) (int, bool) {
	for i, g := range groups {
		if g.Contains(id) {
			return i, true
		}
	}
	return 0, false
}

// Unfinished returns the scan `scan --resume` continues: with shard "", the most recently
// started scan that has not finished; with shard "I/N" (as --shard spells it), the most
// recently started unfinished scan of that shard, so that a shard never takes over a sibling's
// checkpoint. It returns an error wrapping ErrNotFound when there is none.
func Unfinished(ctx context.Context, r Reader, shard string) (Scan, error) {
	want := Scan{Shard: shard}
	wi, wn, ok := want.ShardOf()
	if !ok {
		return Scan{}, fmt.Errorf("store: shard %q is not I/N with I < N", shard)
	}
	scans, err := r.Scans(ctx)
	if err != nil {
		return Scan{}, err
	}
	for _, s := range slices.Backward(scans) {
		if !s.Finished.IsZero() {
			continue
		}
		if shard == "" {
			return s, nil
		}
		if i, n, ok := s.ShardOf(); ok && i == wi && n == wn && s.Shard != "" {
			return s, nil
		}
	}
	if shard == "" {
		return Scan{}, fmt.Errorf("unfinished scan: %w", ErrNotFound)
	}
	return Scan{}, fmt.Errorf("unfinished scan of shard %s: %w", shard, ErrNotFound)
}

// errStop ends a Results call early when a merge's consumer stops.
var errStop = errors.New("store: stopped")

// resultSeq streams one scan's results.
func resultSeq(ctx context.Context, r Reader, id string) iter.Seq2[probe.Result, error] {
	return func(yield func(probe.Result, error) bool) {
		stopped := false
		err := r.Results(ctx, id, func(res probe.Result) error {
			if !yield(res, nil) {
				stopped = true
				return errStop
			}
			return nil
		})
		if err != nil && !stopped {
			yield(probe.Result{}, err)
		}
	}
}

// MergeResults calls fn for every stored result of the given scans (the shards of a group) in
// one stream ordered by ip then port, as Results orders one scan's, and stops at the first
// error fn returns, returning it. Each scan is read once, all at the same time: memory grows
// with the number of scans, not of results. An unknown scan is ErrNotFound.
func MergeResults(ctx context.Context, r Reader, ids []string, fn func(probe.Result) error) error {
	if len(ids) == 1 {
		return r.Results(ctx, ids[0], fn)
	}
	h := make(mergeHeap, 0, len(ids))
	defer func() {
		for _, s := range h {
			s.stop()
		}
	}()
	for _, id := range ids {
		next, stop := iter.Pull2(resultSeq(ctx, r, id))
		s := &mergeStream{next: next, stop: stop}
		ok, err := s.advance()
		if err != nil {
			stop()
			return err
		}
		if ok {
			h = append(h, s)
		} else {
			stop()
		}
	}
	heap.Init(&h)
	for len(h) > 0 {
		s := h[0]
		if err := fn(s.cur); err != nil {
			return err
		}
		ok, err := s.advance()
		if err != nil {
			return err
		}
		if ok {
			heap.Fix(&h, 0)
		} else {
			s.stop()
			heap.Pop(&h)
		}
	}
	return nil
}

// mergeStream is one scan's results in a merge, and the one it is at.
type mergeStream struct {
	next func() (probe.Result, error, bool)
	stop func()
	cur  probe.Result
}

// advance moves to the stream's next result; false at its end.
func (s *mergeStream) advance() (bool, error) {
	r, err, ok := s.next()
	if !ok || err != nil {
		return false, err
	}
	s.cur = r
	return true, nil
}

// mergeHeap orders streams by their current result's ip, then port.
type mergeHeap []*mergeStream

func (h mergeHeap) Len() int { return len(h) }
func (h mergeHeap) Less(i, j int) bool {
	if c := h[i].cur.IP.Compare(h[j].cur.IP); c != 0 {
		return c < 0
	}
	return h[i].cur.Port < h[j].cur.Port
}
func (h mergeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)   { *h = append(*h, x.(*mergeStream)) }
func (h *mergeHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	*h = old[:len(old)-1]
	return s
}
