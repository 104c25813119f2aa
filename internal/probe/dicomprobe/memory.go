package dicomprobe

import "sync/atomic"

// Bounds of Config.MemoryBudget. The default, 4 GiB, is a sixth of the 24 GiB machines pacswatch
// is measured on, which leaves room for the store, the rest of the scan and the system. Below
// MinMemoryBudget the process's own needs (runtime, connections, the store) leave the counting
// state too little to be worth a share: smaller budgets are raised to it.
const (
	DefaultMemoryBudget = 4 << 30
	MinMemoryBudget     = 256 << 20
)

// Shares of Config.MemoryBudget. Only the counting state is accounted (the keys that tell
// studies apart, date samples, the studies waiting for SERIES/IMAGE queries): stateShare of the
// budget. The rest is the garbage collector's room (at GOGC=100 the heap grows to twice what
// is live before a collection; responses are garbage as soon as they are read) and the
// per-connection buffers. Of the state's share, a reserve (1/reserveShare) is kept for hosts
// that hold little (below smallHost), so that honest archives are counted exactly while
// hostile ones fill the rest.
const (
	stateShareNum, stateShareDen = 3, 8
	reserveShare                 = 8
	smallHost                    = 1 << 20 // bytes of state a host may take from the reserve
	chargeChunk                  = 64 << 10
	hostBase                     = 16 << 10 // state every counting host holds: a query's date sample, small maps
)

// A memBudget is the process-wide budget of counting state that every host's counter draws
// from. It is safe for concurrent use.
type memBudget struct {
	limit   int64 // bytes of state in all
	reserve int64 // bytes of limit that only small hosts may take
	used    atomic.Int64
}

func newMemBudget(total int64) *memBudget {
	limit := total / stateShareDen * stateShareNum
	return &memBudget{limit: limit, reserve: limit / reserveShare}
}

// take reserves n bytes; a large host (one that would hold more than smallHost) cannot take
// the reserve. It reports whether the bytes were reserved.
func (b *memBudget) take(n int64, large bool) bool {
	limit := b.limit
	if large {
		limit -= b.reserve
	}
	for {
		u := b.used.Load()
		if u+n > limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

// give returns n bytes taken before.
func (b *memBudget) give(n int64) { b.used.Add(-n) }

// A charge is one host's share of a memBudget: what it holds, and what of it is in use. It
// takes from the budget in chunks, so that small allocations cost no atomic operation each.
// Used by one goroutine.
type charge struct {
	b          *memBudget
	held, used int64
}

// add accounts n more bytes of state; false means the budget cannot give them, and nothing was
// accounted: the caller must not allocate.
func (c *charge) add(n int64) bool {
	if short := c.used + n - c.held; short > 0 {
		need := max(short, chargeChunk)
		if !c.b.take(need, c.held+need > smallHost) {
			if need == short || !c.b.take(short, c.held+short > smallHost) {
				return false
			}
			need = short
		}
		c.held += need
	}
	c.used += n
	return true
}

// sub accounts n bytes of state freed; what is held beyond a chunk of slack goes back to the
// budget.
func (c *charge) sub(n int64) {
	c.used = max(c.used-n, 0)
	if slack := c.held - c.used; slack > 2*chargeChunk {
		give := slack - chargeChunk
		c.held -= give
		c.b.give(give)
	}
}

// close returns everything held to the budget.
func (c *charge) close() {
	c.b.give(c.held)
	c.held, c.used = 0, 0
}

// A keySet is a set of non-zero 64-bit keys (the first 8 bytes of the keyed hashes of study
// UIDs: uniformly spread, so a key is its own hash) in an open-addressed table with linear
// probing, at most 3/4 full: 8 bytes a slot, about 11–21 bytes a key. Its table is accounted in
// a charge before it is allocated.
type keySet struct {
	slots []uint64
	n     int
	sum   uint64 // of the keys added (modulo 2^64): the study set's digest, kept after free
}

const minSlots = 1024

// len returns the number of keys.
func (s *keySet) len() int { return s.n }

// has reports whether k is in the set.
func (s *keySet) has(k uint64) bool {
	if len(s.slots) == 0 {
		return false
	}
	k = nonZero(k)
	mask := uint64(len(s.slots) - 1)
	for i := k & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case k:
			return true
		case 0:
			return false
		}
	}
}

// add inserts k, growing the table when it would be more than 3/4 full; the growth is charged
// to ch first. It returns false, with the set unchanged, when ch cannot pay for the growth.
func (s *keySet) add(k uint64, ch *charge) bool {
	if (s.n+1)*4 > len(s.slots)*3 && !s.grow(ch) {
		return false
	}
	k = nonZero(k)
	mask := uint64(len(s.slots) - 1)
	for i := k & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case k:
			return true
		case 0:
			s.slots[i] = k
			s.n++
			s.sum += k
			return true
		}
	}
}

// grow doubles the table (or makes the first one), charged to ch.
func (s *keySet) grow(ch *charge) bool {
	size := max(2*len(s.slots), minSlots)
	if !ch.add(int64(size) * 8) {
		return false
	}
	old := s.slots
	s.slots, s.n = make([]uint64, size), 0
	mask := uint64(size - 1)
	for _, k := range old {
		if k == 0 {
			continue
		}
		i := k & mask
		for s.slots[i] != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = k
		s.n++
	}
	ch.sub(int64(len(old)) * 8)
	return true
}

// free drops the table and returns its bytes to ch; the count and the sum stay.
func (s *keySet) free(ch *charge) {
	ch.sub(int64(len(s.slots)) * 8)
	s.slots = nil
}

// nonZero maps the key 0, the empty slot's mark, to 1.
func nonZero(k uint64) uint64 { return max(k, 1) }
