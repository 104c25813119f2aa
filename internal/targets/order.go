package targets

import "math/bits"

// feistelRounds is the number of rounds of the permutation's Feistel network.
const feistelRounds = 6

// An Iter walks one shard of a Space in pseudo-random order. It holds no list
// of targets: each step maps a position through a keyed permutation and then
// through Space.At. It is not safe for concurrent use.
type Iter struct {
	s     *Space
	perm  feistel
	n     uint64 // s.Len()
	shard uint64 // first position of the shard
	step  uint64 // number of shards
	pos   uint64 // next position
}

// Order returns an iterator over shard (counted from 0) of shards. All shards
// share one permutation π of [0, Len()), fixed by seed: shard I yields π(p) for
// the positions p = I, I+N, I+2N, ... below Len(). So the shards are disjoint,
// their union is the whole space, and the same seed and space give the same
// order on every run. Parse the --shard flag with ParseShard; with shards == 0
// or shard ≥ shards the iterator is empty.
func (s *Space) Order(seed, shard, shards uint64) *Iter {
	n := s.Len()
	it := &Iter{s: s, perm: newFeistel(n, seed), n: n, shard: shard, step: shards}
	if shards == 0 || shard >= shards {
		it.shard, it.step = n, 1
	}
	it.pos = it.shard
	return it
}

// Next returns the next target and its position, or ok false at the end.
// Positions rise; a scan that has finished every position below p can resume
// with Seek(p).
func (it *Iter) Next() (t Target, pos uint64, ok bool) {
	if it.pos >= it.n {
		return Target{}, 0, false
	}
	pos = it.pos
	if next, carry := bits.Add64(pos, it.step, 0); carry != 0 {
		it.pos = it.n
	} else {
		it.pos = next
	}
	return it.s.At(it.perm.apply(pos)), pos, true
}

// Seek moves the iterator to the first position of its shard at or after pos.
func (it *Iter) Seek(pos uint64) {
	switch {
	case pos <= it.shard:
		it.pos = it.shard
	case pos >= it.n:
		it.pos = it.n
	default:
		d := pos - it.shard
		q := d / it.step
		if d%it.step != 0 {
			q++
		}
		hi, lo := bits.Mul64(q, it.step)
		p, carry := bits.Add64(lo, it.shard, 0)
		if hi != 0 || carry != 0 || p > it.n {
			p = it.n
		}
		it.pos = p
	}
}

// Len returns the number of targets the iterator yields from its start.
func (it *Iter) Len() uint64 {
	if it.shard >= it.n {
		return 0
	}
	return (it.n-it.shard-1)/it.step + 1
}

// feistel is a keyed permutation of [0, n): a balanced Feistel network over
// the smallest even number of bits that holds n-1, with cycle walking to stay
// below n (Black and Rogaway, "Ciphers with Arbitrary Finite Domains", 2002).
// The domain is under 4n, so a step walks fewer than 4 times on average.
type feistel struct {
	n    uint64
	half uint   // bits in each half
	mask uint64 // half ones
	keys [feistelRounds]uint64
}

func newFeistel(n, seed uint64) feistel {
	b := uint(0)
	if n > 1 {
		b = uint(bits.Len64(n - 1))
	}
	b = max(b+b&1, 2)
	f := feistel{n: n, half: b / 2, mask: 1<<(b/2) - 1}
	for i := range f.keys {
		seed += 0x9e3779b97f4a7c15 // splitmix64
		f.keys[i] = mix64(seed)
	}
	return f
}

// apply returns π(x) for x < n.
func (f *feistel) apply(x uint64) uint64 {
	for {
		l, r := x>>f.half, x&f.mask
		for _, k := range f.keys {
			l, r = r, l^(mix64(r^k)&f.mask)
		}
		x = l<<f.half | r
		if x < f.n {
			return x
		}
	}
}

// mix64 is the splitmix64 finaliser, a bijective 64-bit mixer.
func mix64(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}
