package targets

import (
	"errors"
	"math/bits"
	"net/netip"
)

// ErrNotZMap is returned by ZMapLists for a space ZMap cannot scan: ZMap sends to IPv4
// addresses on one port per run, so IPv6 targets, zoned addresses and host:port pairs need
// the connect discovery.
var ErrNotZMap = errors.New("targets: ZMap scans IPv4 addresses on the scan's ports: IPv6 and host:port targets need connect discovery")

// ZMapLists returns what ZMap needs to scan exactly the space's addresses (SPEC "Scale and
// discovery"): its IPv4 addresses as CIDR blocks, for ZMap's allowlist, and the blocks it must
// never send to, for its blocklist: every reserved block and exclusion that the space does not
// hold, the exclusions given included (a reserved block a target named explicitly, such as 198.18.0.0/15 in a test bed, is
// in the space and stays allowed; the space already leaves out every exclusion).
func (s *Space) ZMapLists(exclusions ...*Exclusions) (allow, block []netip.Prefix, err error) {
	if len(s.pairs) > 0 {
		return nil, nil, ErrNotZMap
	}
	var ivs []ival
	for k, sp := range s.spans {
		end := s.naddr
		if k+1 < len(s.spans) {
			end = s.spans[k+1].cum
		}
		if !sp.lo.Is4() {
			return nil, nil, ErrNotZMap
		}
		ivs = append(ivs, ival{sp.lo, addOffset(sp.lo, end-sp.cum-1)})
	}
	for _, t := range s.extra {
		if !t.Addr.Is4() || t.Addr.Zone() != "" {
			return nil, nil, ErrNotZMap
		}
		ivs = append(ivs, ival{t.Addr, t.Addr})
	}
	ivs = merge(ivs)
	for _, v := range ivs {
		allow = append(allow, ivalPrefixes(v)...)
	}
	cuts := reservedIvals()
	for _, x := range exclusions {
		if x != nil {
			cuts = append(cuts, x.ivs...)
		}
	}
	var blocked []ival
	for _, v := range merge(cuts) {
		if v.lo.Is4() {
			blocked = append(blocked, v)
		}
	}
	for _, v := range subtract(blocked, ivs) {
		block = append(block, ivalPrefixes(v)...)
	}
	return allow, block, nil
}

// ivalPrefixes returns the fewest IPv4 CIDR blocks that cover v exactly.
func ivalPrefixes(v ival) []netip.Prefix {
	lo, hi := ipv4Uint(v.lo), ipv4Uint(v.hi)
	var out []netip.Prefix
	for {
		// The largest block starting at lo that is aligned and ends at or before hi.
		size := 32 - bits.TrailingZeros32(lo)
		if lo == 0 {
			size = 0
		}
		for size < 32 && uint64(lo)+(uint64(1)<<(32-size))-1 > uint64(hi) {
			size++
		}
		out = append(out, netip.PrefixFrom(uint4Addr(lo), size))
		end := uint64(lo) + (uint64(1) << (32 - size))
		if end > uint64(hi) {
			return out
		}
		lo = uint32(end)
	}
}

func ipv4Uint(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func uint4Addr(u uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)})
}
