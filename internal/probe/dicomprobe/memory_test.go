package dicomprobe

import (
	"math/rand/v2"
	"sync"
	"testing"
)

func TestKeySet(t *testing.T) {
	b := newMemBudget(1 << 30)
	ch := charge{b: b}
	var s keySet
	r := rand.New(rand.NewPCG(1, 2))
	keys := map[uint64]bool{0: true, 1: true} // 0 is stored as 1: one key for both
	for range 100000 {
		keys[r.Uint64()] = true
	}
	for k := range keys {
		if !s.add(k, &ch) {
			t.Fatal("add refused with room in the budget")
		}
	}
	if s.len() != len(keys)-1 {
		t.Errorf("len %d, want %d", s.len(), len(keys)-1)
	}
	for k := range keys {
		if !s.has(k) {
			t.Fatalf("key %x lost", k)
		}
	}
	for range 1000 {
		if k := r.Uint64(); !keys[k] && s.has(k) {
			t.Fatalf("key %x never added is there", k)
		}
	}
	if s.len()*4 > len(s.slots)*3 || len(s.slots)&(len(s.slots)-1) != 0 {
		t.Errorf("%d keys in %d slots: over 3/4 full, or not a power of two", s.len(), len(s.slots))
	}
	if ch.used != int64(len(s.slots))*8 || b.used.Load() != ch.held || ch.held-ch.used > 2*chargeChunk {
		t.Errorf("charge used %d held %d, budget used %d; want the table's %d bytes", ch.used, ch.held, b.used.Load(), len(s.slots)*8)
	}
	s.free(&ch)
	ch.close()
	if b.used.Load() != 0 || s.has(5) {
		t.Errorf("after free and close: budget used %d", b.used.Load())
	}
}

// TestKeySetBudget checks that a set stops growing, unchanged, when the budget has no room for a
// larger table, and that the reserve is kept for small hosts.
func TestKeySetBudget(t *testing.T) {
	b := newMemBudget(8 << 20) // 3 MiB of state, 384 KiB of it the reserve
	if b.limit != 3<<20 || b.reserve != 3<<20/reserveShare {
		t.Fatalf("limit %d reserve %d", b.limit, b.reserve)
	}
	large := charge{b: b}
	var s keySet
	n := 0
	for ; ; n++ {
		if !s.add(uint64(n)*0x9E3779B97F4A7C15+1, &large) {
			break
		}
	}
	if s.len() != n || n == 0 {
		t.Fatalf("set holds %d keys after %d adds", s.len(), n)
	}
	if used := b.used.Load(); used > b.limit-b.reserve || used < (b.limit-b.reserve)/4 {
		t.Errorf("budget used %d of %d (reserve %d)", used, b.limit, b.reserve)
	}
	// A small host still gets its table from the reserve; a large one does not.
	small := charge{b: b}
	var t2 keySet
	for i := range 1000 {
		if !t2.add(uint64(i)+1, &small) {
			t.Fatalf("a small host was refused after %d keys", i)
		}
	}
	big := charge{b: b}
	room := b.limit - b.reserve - b.used.Load() // what a large host may still take
	need := max(room+1, smallHost+1)            // a large charge, more than that
	if need > b.limit-b.used.Load() {
		t.Fatalf("test needs %d bytes left in the reserve, has %d", need, b.limit-b.used.Load())
	}
	if big.add(need) {
		t.Errorf("a large charge of %d bytes took the reserve (%d bytes outside it)", need, room)
	}
	big.close()
	s.free(&large)
	large.close()
	t2.free(&small)
	small.close()
	if b.used.Load() != 0 {
		t.Errorf("budget used %d after every host closed", b.used.Load())
	}
}

func TestChargeConcurrent(t *testing.T) {
	b := newMemBudget(64 << 20)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			ch := charge{b: b}
			var s keySet
			for i := range 20000 {
				s.add(uint64(i)*2654435761+7, &ch)
				if used := b.used.Load(); used > b.limit {
					t.Errorf("budget used %d over its limit %d", used, b.limit)
					return
				}
			}
			s.free(&ch)
			ch.close()
		})
	}
	wg.Wait()
	if b.used.Load() != 0 {
		t.Errorf("budget used %d after every host closed", b.used.Load())
	}
}
