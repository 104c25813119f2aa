package targets

import (
	"fmt"
	"runtime"
	"slices"
	"testing"
)

// orderSpaces are small spaces of varied shapes for the permutation tests.
var orderSpaces = []struct {
	name    string
	specs   []string
	ports   []uint16
	exclude []string
}{
	{"one", []string{"127.0.0.1"}, []uint16{104}, nil},
	{"two", []string{"127.0.0.1:104", "[::1]:104"}, nil, nil},
	{"prime", []string{"127.0.0.0-127.0.0.16"}, []uint16{104}, nil},
	{"ports", []string{"127.0.0.0/29"}, []uint16{104, 4242, 11112}, nil},
	{"ipv6", []string{"fe80::-fe80::ff", "::1"}, []uint16{104, 11112}, nil},
	{"mixed", []string{"127.0.0.0/26", "pacs.test", "dual.test:4242", "[::1]:2762", "fe80::1%lo"}, []uint16{104, 2761}, []string{"127.0.0.7-127.0.0.9"}},
	{"1024", []string{"127.0.0.0/22"}, []uint16{104}, nil},
	{"1025", []string{"127.0.0.0/22", "127.0.4.0"}, []uint16{104}, nil},
	{"empty", []string{"127.0.0.0/24"}, []uint16{104}, []string{"127.0.0.0/8"}},
}

var seeds = []uint64{0, 1, 42, 1<<64 - 1}

// collect runs it to the end and returns the targets and positions it yields.
func collect(it *Iter) ([]Target, []uint64) {
	var ts []Target
	var ps []uint64
	for {
		t, p, ok := it.Next()
		if !ok {
			return ts, ps
		}
		ts = append(ts, t)
		ps = append(ps, p)
	}
}

func TestOrderVisitsEachOnce(t *testing.T) {
	for _, sp := range orderSpaces {
		s := mustParse(t, sp.specs, Options{Ports: sp.ports, Exclude: sp.exclude})
		for _, seed := range seeds {
			t.Run(fmt.Sprintf("%s/seed=%d", sp.name, seed), func(t *testing.T) {
				ts, ps := collect(s.Order(seed, 0, 1))
				if got, want := uint64(len(ts)), s.Len(); got != want {
					t.Fatalf("got %d targets, want %d", got, want)
				}
				seen := make(map[Target]int)
				for i, tg := range ts {
					if ps[i] != uint64(i) {
						t.Fatalf("position %d is %d", i, ps[i])
					}
					seen[tg]++
				}
				for i := range s.Len() {
					if tg := s.At(i); seen[tg] != 1 {
						t.Errorf("target %v (index %d) seen %d times, want 1", tg, i, seen[tg])
					}
				}
			})
		}
	}
}

func TestOrderShards(t *testing.T) {
	s := mustParse(t, []string{"127.0.0.0/26", "pacs.test", "[::1]:104"}, Options{Ports: []uint16{104, 4242}})
	for n := uint64(1); n <= 7; n++ {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			seen := make(map[Target]uint64) // target → shard + 1
			for i := range n {
				it := s.Order(7, i, n)
				ts, ps := collect(it)
				if got, want := uint64(len(ts)), it.Len(); got != want {
					t.Errorf("shard %d/%d: got %d targets, Len() = %d", i, n, got, want)
				}
				for k, tg := range ts {
					if ps[k]%n != i {
						t.Errorf("shard %d/%d: position %d", i, n, ps[k])
					}
					if prev := seen[tg]; prev != 0 {
						t.Errorf("target %v in shards %d and %d of %d", tg, prev-1, i, n)
					}
					seen[tg] = i + 1
				}
			}
			if got, want := uint64(len(seen)), s.Len(); got != want {
				t.Errorf("shards of %d cover %d targets, want %d", n, got, want)
			}
		})
	}
	for _, tt := range []struct{ shard, shards uint64 }{{0, 0}, {3, 2}, {2, 2}} {
		if got, _ := collect(s.Order(1, tt.shard, tt.shards)); len(got) != 0 {
			t.Errorf("Order(shard %d of %d) yields %d targets, want 0", tt.shard, tt.shards, len(got))
		}
	}
	// More shards than targets: most are empty; the union still covers.
	var total int
	for i := range uint64(1000) {
		it := s.Order(1, i, 1000)
		ts, _ := collect(it)
		total += len(ts)
		if got, want := uint64(len(ts)), it.Len(); got != want {
			t.Fatalf("shard %d/1000: got %d targets, Len() = %d", i, got, want)
		}
	}
	if got, want := uint64(total), s.Len(); got != want {
		t.Errorf("1000 shards cover %d targets, want %d", got, want)
	}
}

func TestOrderSeed(t *testing.T) {
	s := mustParse(t, []string{"127.0.0.0/22"}, Options{Ports: []uint16{104}})
	a, _ := collect(s.Order(1, 0, 1))
	b, _ := collect(s.Order(1, 0, 1))
	if !slices.Equal(a, b) {
		t.Error("seed 1 gave two different orders")
	}
	for _, seed := range []uint64{0, 2, 1 << 63} {
		c, _ := collect(s.Order(seed, 0, 1))
		if slices.Equal(a, c) {
			t.Errorf("seeds 1 and %d gave the same order", seed)
		}
	}
	// Not the index order either, and no long ascending runs.
	var asc int
	for i := 1; i < len(a); i++ {
		if a[i-1].Addr.Next() == a[i].Addr {
			asc++
		}
	}
	if asc > 16 {
		t.Errorf("%d of %d steps go to the next address", asc, len(a))
	}
}

func TestIterSeek(t *testing.T) {
	s := mustParse(t, []string{"127.0.0.0/25"}, Options{Ports: []uint16{104, 4242}})
	const shard, shards = 2, 3
	all, ps := collect(s.Order(9, shard, shards))
	for k := range all {
		it := s.Order(9, shard, shards)
		it.Seek(ps[k])
		if rest, _ := collect(it); !slices.Equal(rest, all[k:]) {
			t.Fatalf("Seek(%d): got %d targets, want %d", ps[k], len(rest), len(all)-k)
		}
		it = s.Order(9, shard, shards)
		it.Seek(ps[k] - 1) // between two positions of the shard
		if rest, _ := collect(it); !slices.Equal(rest, all[k:]) {
			t.Fatalf("Seek(%d): got %d targets, want %d", ps[k]-1, len(rest), len(all)-k)
		}
	}
	for _, pos := range []uint64{s.Len(), s.Len() - 1, 1 << 63, 1<<64 - 1} {
		it := s.Order(9, shard, shards)
		it.Seek(pos)
		want := 0
		if pos < s.Len() && pos%shards == shard {
			want = 1
		}
		if rest, _ := collect(it); len(rest) != want {
			t.Errorf("Seek(%d): got %d targets, want %d", pos, len(rest), want)
		}
	}
	// A huge shard count must not overflow.
	it := s.Order(9, 5, 1<<64-1)
	it.Seek(6)
	if rest, _ := collect(it); len(rest) != 0 {
		t.Errorf("Seek past the only position of shard 5 of 2^64-1: got %d targets", len(rest))
	}
}

func TestFeistelBijection(t *testing.T) {
	sizes := []uint64{1, 2, 3, 4, 5, 15, 16, 17, 255, 256, 257, 1000, 1<<16 + 3}
	for _, n := range sizes {
		for _, seed := range seeds {
			f := newFeistel(n, seed)
			seen := make([]bool, n)
			for x := range n {
				y := f.apply(x)
				if y >= n || seen[y] {
					t.Fatalf("n=%d seed=%d: π(%d) = %d repeats or is out of range", n, seed, x, y)
				}
				seen[y] = true
			}
		}
	}
}

// TestIterMemory walks 2^24 positions of a /8 and checks that nothing is
// allocated per target.
func TestIterMemory(t *testing.T) {
	s := mustParse(t, []string{"10.0.0.0/8"}, Options{Ports: []uint16{104}})
	it := s.Order(3, 0, 1)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var n uint64
	var last Target
	for {
		tg, _, ok := it.Next()
		if !ok {
			break
		}
		n++
		last = tg
	}
	runtime.ReadMemStats(&after)
	if got, want := n, uint64(1<<24); got != want {
		t.Errorf("got %d targets, want %d", got, want)
	}
	if !last.Addr.Is4() {
		t.Errorf("last target %v", last)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew >= 1<<20 {
		t.Errorf("iterating allocated %d bytes, want < 1 MiB", grew)
	}
}

func BenchmarkIter(b *testing.B) {
	s := mustParse(b, []string{"10.0.0.0/8", "127.0.0.0/8"}, Options{Ports: []uint16{104, 2761, 2762, 4242, 11112}})
	it := s.Order(1, 0, 1)
	var n int
	for b.Loop() {
		if _, _, ok := it.Next(); !ok {
			it = s.Order(1, 0, 1)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "targets/s")
}
