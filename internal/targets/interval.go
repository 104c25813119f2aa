package targets

import (
	"encoding/binary"
	"math/big"
	"math/bits"
	"net/netip"
	"slices"
)

// reservedPrefixes returns the blocks excluded unless a target lies inside
// them: the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890,
// as updated), leaving out the entries marked globally reachable, plus
// multicast (RFC 5771, RFC 4291 §2.7) and 6to4 (RFC 3056).
func reservedPrefixes() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),          // "this network", RFC 791
		netip.MustParsePrefix("10.0.0.0/8"),         // private, RFC 1918
		netip.MustParsePrefix("100.64.0.0/10"),      // shared address space, RFC 6598
		netip.MustParsePrefix("127.0.0.0/8"),        // loopback, RFC 1122
		netip.MustParsePrefix("169.254.0.0/16"),     // link local, RFC 3927
		netip.MustParsePrefix("172.16.0.0/12"),      // private, RFC 1918
		netip.MustParsePrefix("192.0.0.0/24"),       // IETF protocol assignments, RFC 6890
		netip.MustParsePrefix("192.0.2.0/24"),       // documentation TEST-NET-1, RFC 5737
		netip.MustParsePrefix("192.88.99.0/24"),     // deprecated 6to4 relay anycast, RFC 7526
		netip.MustParsePrefix("192.168.0.0/16"),     // private, RFC 1918
		netip.MustParsePrefix("198.18.0.0/15"),      // benchmarking, RFC 2544
		netip.MustParsePrefix("198.51.100.0/24"),    // documentation TEST-NET-2, RFC 5737
		netip.MustParsePrefix("203.0.113.0/24"),     // documentation TEST-NET-3, RFC 5737
		netip.MustParsePrefix("224.0.0.0/4"),        // multicast, RFC 5771
		netip.MustParsePrefix("240.0.0.0/4"),        // reserved, RFC 1112
		netip.MustParsePrefix("255.255.255.255/32"), // limited broadcast, RFC 919
		netip.MustParsePrefix("::/128"),             // unspecified, RFC 4291
		netip.MustParsePrefix("::1/128"),            // loopback, RFC 4291
		netip.MustParsePrefix("::ffff:0:0/96"),      // IPv4-mapped, RFC 4291
		netip.MustParsePrefix("64:ff9b::/96"),       // IPv4/IPv6 translation, RFC 6052
		netip.MustParsePrefix("64:ff9b:1::/48"),     // local-use translation, RFC 8215
		netip.MustParsePrefix("100::/64"),           // discard-only, RFC 6666
		netip.MustParsePrefix("100:0:0:1::/64"),     // dummy prefix, RFC 9780
		netip.MustParsePrefix("2001::/23"),          // IETF protocol assignments, RFC 2928
		netip.MustParsePrefix("2001:db8::/32"),      // documentation, RFC 3849
		netip.MustParsePrefix("2002::/16"),          // 6to4, RFC 3056
		netip.MustParsePrefix("3fff::/20"),          // documentation, RFC 9637
		netip.MustParsePrefix("5f00::/16"),          // segment routing SIDs, RFC 9602
		netip.MustParsePrefix("fc00::/7"),           // unique local, RFC 4193
		netip.MustParsePrefix("fe80::/10"),          // link-local unicast, RFC 4291
		netip.MustParsePrefix("ff00::/8"),           // multicast, RFC 4291
	}
}

// reservedIvals returns reservedPrefixes as intervals sorted by start. They
// may nest (255.255.255.255/32 lies in 240.0.0.0/4).
func reservedIvals() []ival {
	ps := reservedPrefixes()
	out := make([]ival, len(ps))
	for i, p := range ps {
		out[i] = prefixIval(p)
	}
	slices.SortFunc(out, func(a, b ival) int { return a.lo.Compare(b.lo) })
	return out
}

// ival is the inclusive address interval [lo, hi]; both ends are of one
// family and carry no zone.
type ival struct{ lo, hi netip.Addr }

// contains reports whether w lies entirely inside v.
func (v ival) contains(w ival) bool { return !w.lo.Less(v.lo) && !v.hi.Less(w.hi) }

// size returns the number of addresses in v; overflow is true for ::/0 (2^128).
func (v ival) size() (n u128, overflow bool) {
	n = toU128(v.hi).sub(toU128(v.lo))
	return n.add(u128{lo: 1})
}

func prefixIval(p netip.Prefix) ival {
	p = p.Masked()
	lo := p.Addr()
	host := lo.BitLen() - p.Bits()
	var mask u128
	switch {
	case host > 64:
		mask = u128{hi: 1<<(host-64) - 1, lo: ^uint64(0)}
	default:
		mask = u128{lo: 1<<host - 1}
	}
	x := toU128(lo)
	return ival{lo, fromU128(u128{x.hi | mask.hi, x.lo | mask.lo}, lo.Is4())}
}

// merge sorts ivs and joins overlapping and adjacent intervals, in place.
func merge(ivs []ival) []ival {
	slices.SortFunc(ivs, func(a, b ival) int { return a.lo.Compare(b.lo) })
	out := ivs[:0]
	for _, v := range ivs {
		if n := len(out); n > 0 {
			last := &out[n-1]
			if !last.hi.Less(v.lo) || last.hi.Next() == v.lo {
				if last.hi.Less(v.hi) {
					last.hi = v.hi
				}
				continue
			}
		}
		out = append(out, v)
	}
	return out
}

// subtract returns the parts of the merged intervals ivs outside the merged
// intervals cuts.
func subtract(ivs, cuts []ival) []ival {
	if len(cuts) == 0 {
		return ivs
	}
	out := make([]ival, 0, len(ivs))
	for _, v := range ivs {
		k, _ := slices.BinarySearchFunc(cuts, v.lo, func(c ival, a netip.Addr) int {
			if c.hi.Less(a) {
				return -1
			}
			return 1
		})
		out = appendMinus(out, v, cuts[k:])
	}
	return out
}

// appendMinus appends to dst the parts of v outside cuts, which are sorted by
// start and may overlap.
func appendMinus(dst []ival, v ival, cuts []ival) []ival {
	for _, c := range cuts {
		if v.hi.Less(c.lo) {
			break
		}
		if c.hi.Less(v.lo) {
			continue
		}
		if v.lo.Less(c.lo) {
			dst = append(dst, ival{v.lo, c.lo.Prev()})
		}
		if !c.hi.Less(v.hi) {
			return dst
		}
		v.lo = c.hi.Next()
	}
	return append(dst, v)
}

// containsAddr reports whether a lies in one of the merged intervals ivs.
func containsAddr(ivs []ival, a netip.Addr) bool {
	k, _ := slices.BinarySearchFunc(ivs, a, func(c ival, a netip.Addr) int {
		if c.hi.Less(a) {
			return -1
		}
		return 1
	})
	return k < len(ivs) && !a.Less(ivs[k].lo)
}

// unmap turns an IPv4-mapped IPv6 address into its IPv4 address.
func unmap(a netip.Addr) netip.Addr {
	if a.Is4In6() {
		return a.Unmap()
	}
	return a
}

// addOffset returns the address off places after a, which the caller knows
// to exist.
func addOffset(a netip.Addr, off uint64) netip.Addr {
	x, _ := toU128(a).add(u128{lo: off})
	return fromU128(x, a.Is4())
}

// u128 is an unsigned 128-bit integer, for IPv6 address arithmetic.
type u128 struct{ hi, lo uint64 }

func toU128(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{lo: uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func fromU128(x u128, is4 bool) netip.Addr {
	if is4 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(x.lo))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], x.hi)
	binary.BigEndian.PutUint64(b[8:], x.lo)
	return netip.AddrFrom16(b)
}

func (x u128) add(y u128) (u128, bool) {
	lo, c := bits.Add64(x.lo, y.lo, 0)
	hi, c := bits.Add64(x.hi, y.hi, c)
	return u128{hi, lo}, c != 0
}

func (x u128) sub(y u128) u128 {
	lo, b := bits.Sub64(x.lo, y.lo, 0)
	hi, _ := bits.Sub64(x.hi, y.hi, b)
	return u128{hi, lo}
}

func (x u128) String() string {
	n := new(big.Int).SetUint64(x.hi)
	n.Lsh(n, 64)
	return n.Or(n, new(big.Int).SetUint64(x.lo)).String()
}
