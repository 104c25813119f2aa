package scan

import (
	"context"
	"net/netip"

	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/targets"
)

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
