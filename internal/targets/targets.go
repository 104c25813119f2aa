// Package targets turns the TARGET arguments of `pacswatch scan` into a
// target space: IPv4 and IPv6 addresses (RFC 791, RFC 4291), CIDR prefixes
// (RFC 4632), address ranges, hostnames and host:port pairs, times a port list,
// minus the user's exclusions and the special-purpose blocks of the IANA IPv4
// and IPv6 Special-Purpose Address Registries (RFC 6890) unless a target names
// them explicitly.
//
// A Space is held as sorted, disjoint address intervals, so its memory grows
// with the number of ranges, never with the number of addresses. It is walked
// in a keyed pseudo-random order (a full-cycle permutation of its indices) that
// splits into disjoint shards and can resume from any position.
package targets

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
)

// DefaultPorts is the default DICOM port list of `pacswatch scan -p`.
const DefaultPorts = "104,11112,4242,2761,2762"

// MaxPairs is the largest target space Parse accepts, in (address, port) pairs.
const MaxPairs = 1 << 48

// ErrTooLarge reports a target space of more than MaxPairs pairs.
var ErrTooLarge = errors.New("targets: target space too large")

// resolveWorkers bounds the concurrent hostname lookups of one Parse.
const resolveWorkers = 8

// A Target is one (address, port) pair to scan.
type Target struct {
	Addr netip.Addr
	Port uint16
	Host string // hostname the address was resolved from, if the target named one
}

// String returns the address and port, as "192.0.2.1:104" or "[2001:db8::1]:104".
func (t Target) String() string { return netip.AddrPortFrom(t.Addr, t.Port).String() }

// Options configures Parse.
type Options struct {
	// Ports are scanned on every target that has no port of its own (see
	// ParsePorts). Required unless every target is a host:port.
	Ports []uint16
	// Exclude lists addresses, CIDR prefixes and ranges (one per element)
	// never to scan, whatever the targets say.
	Exclude []string
	// Resolve looks up hostnames. Nil means net.DefaultResolver.LookupNetIP
	// for network "ip".
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
}

// A Space is a set of distinct (address, port) pairs, indexed 0 to Len()-1.
// It is immutable and safe for concurrent use.
type Space struct {
	spans []span   // disjoint, sorted (IPv4 before IPv6), each times ports
	naddr uint64   // addresses in spans
	extra []Target // sorted, distinct addresses outside spans, each times ports: hostnames' and zoned ones (Port unused)
	ports []uint16 // sorted, distinct
	pairs []Target // sorted host:port pairs in neither spans × ports nor extra × ports
}

// span is a run of consecutive addresses starting at lo; cum is the number of
// addresses in the spans before it.
type span struct {
	lo  netip.Addr
	cum uint64
}

// Parse builds the target space of specs. Each spec is one of:
//
//	192.0.2.7  2001:db8::7  fe80::1%eth0     an address
//	192.0.2.0/24  2001:db8::/120             a CIDR prefix
//	192.0.2.1-192.0.2.50  192.0.2.1-50       a range (inclusive; IPv6 too)
//	pacs.example.org                         a hostname, resolved with opt.Resolve
//	192.0.2.7:104  [2001:db8::7]:104  pacs.example.org:4242
//
// A host:port scans that one port of that host instead of opt.Ports; its host
// must be an address or a hostname. An IPv6 address with a port needs brackets.
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) stand for their IPv4 address.
//
// Reserved blocks (the non-global entries of the IANA special-purpose
// registries, plus multicast and 6to4): a reserved block is subtracted from a
// target unless the target lies entirely inside that block. So 127.0.0.1, 127.1.0.0/16, 10.0.0.0/8 and
// 192.168.1.5:4242 are scanned as named, while 0.0.0.0/0 skips every reserved
// block. A single address always lies inside any block that holds it, and the
// addresses of a hostname count as named explicitly.
//
// Exclusions apply to every target, explicit or not. A pair reached by several
// targets is scanned once. When a hostname without a port resolves to an
// address that a range also covers, the pairs keep the hostname in Host; a
// host:port pair that the ranges or hostnames already hold adds nothing.
//
// The space may hold at most MaxPairs pairs; Parse returns ErrTooLarge beyond.
func Parse(ctx context.Context, specs []string, opt Options) (*Space, error) {
	if len(specs) == 0 {
		return nil, errors.New("targets: no targets")
	}
	ports := slices.Clone(opt.Ports)
	slices.Sort(ports)
	ports = slices.Compact(ports)
	if len(ports) > 0 && ports[0] == 0 {
		return nil, errors.New("targets: port 0 in port list")
	}
	var excl []ival
	for _, str := range opt.Exclude {
		sp, err := parseSpec(str, true)
		if err != nil {
			return nil, fmt.Errorf("targets: %w", err)
		}
		excl = append(excl, ival{sp.lo, sp.hi})
	}
	excl = merge(excl)

	reserved := reservedIvals()
	var (
		ivs, cuts    []ival
		extra, pairs []Target
		hosts        []spec
	)
	for _, str := range specs {
		sp, err := parseSpec(str, false)
		if err != nil {
			return nil, fmt.Errorf("targets: %w", err)
		}
		if sp.port == 0 && len(ports) == 0 {
			return nil, fmt.Errorf("targets: empty port list for target %q", str)
		}
		switch {
		case sp.host != "":
			hosts = append(hosts, sp)
		case sp.port != 0:
			pairs = append(pairs, Target{Addr: sp.lo, Port: sp.port})
		case sp.lo.Zone() != "": // a zone cannot live in an interval
			extra = append(extra, Target{Addr: sp.lo})
		default:
			t := ival{sp.lo, sp.hi}
			cuts = cuts[:0]
			for _, r := range reserved {
				if !r.contains(t) {
					cuts = append(cuts, r)
				}
			}
			ivs = appendMinus(ivs, t, cuts)
		}
	}

	var named []ival // addresses of hostnames without a port
	if len(hosts) > 0 {
		addrs, err := resolveAll(ctx, hosts, opt.Resolve)
		if err != nil {
			return nil, err
		}
		for i, h := range hosts {
			for _, a := range addrs[i] {
				if h.port != 0 {
					pairs = append(pairs, Target{Addr: a, Port: h.port, Host: h.host})
					continue
				}
				extra = append(extra, Target{Addr: a, Host: h.host})
				if a.Zone() == "" {
					named = append(named, ival{a, a})
				}
			}
		}
	}

	ivs = subtract(subtract(merge(ivs), excl), merge(named))
	excluded := func(t Target) bool { return containsAddr(excl, t.Addr.WithZone("")) }
	// Stable sorts keep the first target's Host among duplicates.
	extra = slices.DeleteFunc(extra, excluded)
	slices.SortStableFunc(extra, compareTargets)
	extra = slices.CompactFunc(extra, func(a, b Target) bool { return a.Addr == b.Addr })
	pairs = slices.DeleteFunc(pairs, func(t Target) bool {
		if excluded(t) {
			return true
		}
		if _, ok := slices.BinarySearch(ports, t.Port); !ok {
			return false
		}
		_, inExtra := slices.BinarySearchFunc(extra, t.Addr, func(e Target, a netip.Addr) int { return e.Addr.Compare(a) })
		return inExtra || t.Addr.Zone() == "" && containsAddr(ivs, t.Addr)
	})
	slices.SortStableFunc(pairs, compareTargets)
	pairs = slices.CompactFunc(pairs, func(a, b Target) bool { return compareTargets(a, b) == 0 })

	return newSpace(ivs, extra, ports, pairs)
}

// newSpace indexes the parts of a space and checks its size.
func newSpace(ivs []ival, extra []Target, ports []uint16, pairs []Target) (*Space, error) {
	s := &Space{spans: make([]span, len(ivs)), extra: extra, ports: ports, pairs: pairs}
	var total u128 // addresses
	var overflow bool
	for k, v := range ivs {
		s.spans[k] = span{lo: v.lo, cum: total.lo}
		n, c1 := v.size()
		var c2 bool
		total, c2 = total.add(n)
		overflow = overflow || c1 || c2
	}
	s.naddr = total.lo
	total, c := total.add(u128{lo: uint64(len(extra))})
	overflow = overflow || c
	hi, lo := bits.Mul64(total.lo, uint64(len(ports)))
	n, carry := bits.Add64(lo, uint64(len(pairs)), 0)
	if overflow || total.hi != 0 || hi != 0 || carry != 0 || n > MaxPairs {
		n := total.String()
		if overflow {
			n = "2^128 or more"
		}
		return nil, fmt.Errorf("%w: %s addresses × %d ports is more than 2^48 pairs; split it", ErrTooLarge, n, len(ports))
	}
	return s, nil
}

func compareTargets(a, b Target) int {
	if c := a.Addr.Compare(b.Addr); c != 0 {
		return c
	}
	return int(a.Port) - int(b.Port)
}

// resolveAll looks up every distinct hostname of hosts with a few workers and
// returns the unmapped, distinct addresses of each host, in the order of hosts.
func resolveAll(ctx context.Context, hosts []spec, resolve func(context.Context, string) ([]netip.Addr, error)) ([][]netip.Addr, error) {
	if resolve == nil {
		resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	index := make(map[string]int) // hostname → position in names
	var names []string
	for _, h := range hosts {
		if _, ok := index[h.host]; !ok {
			index[h.host] = len(names)
			names = append(names, h.host)
		}
	}
	found := make([][]netip.Addr, len(names))
	errs := make([]error, len(names))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(resolveWorkers, len(names)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(names) {
					return
				}
				if err := ctx.Err(); err != nil {
					errs[i] = err
					continue
				}
				found[i], errs[i] = resolve(ctx, names[i])
			}
		})
	}
	wg.Wait()

	out := make([][]netip.Addr, len(hosts))
	for i, h := range hosts {
		k := index[h.host]
		if errs[k] != nil {
			return nil, fmt.Errorf("targets: resolve %q: %w", h.host, errs[k])
		}
		var addrs []netip.Addr
		for _, a := range found[k] {
			if a.IsValid() {
				addrs = append(addrs, unmap(a))
			}
		}
		slices.SortFunc(addrs, netip.Addr.Compare)
		addrs = slices.Compact(addrs)
		if len(addrs) == 0 {
			return nil, fmt.Errorf("targets: resolve %q: no addresses", h.host)
		}
		out[i] = addrs
	}
	return out, nil
}

// Len returns the number of (address, port) pairs in s, at most MaxPairs.
func (s *Space) Len() uint64 {
	return (s.naddr+uint64(len(s.extra)))*uint64(len(s.ports)) + uint64(len(s.pairs))
}

// At returns the pair at index i, for 0 ≤ i < Len(); the zero Target otherwise.
// Indices run address-major (ports ascending) through the ranges, then through
// the addresses of hostnames and zoned addresses, and end with the host:port
// pairs; each part is in address order.
func (s *Space) At(i uint64) Target {
	np := uint64(len(s.ports))
	n := (s.naddr + uint64(len(s.extra))) * np
	if i >= n {
		if i-n < uint64(len(s.pairs)) {
			return s.pairs[i-n]
		}
		return Target{}
	}
	a, port := i/np, s.ports[i%np]
	if a >= s.naddr {
		t := s.extra[a-s.naddr]
		t.Port = port
		return t
	}
	// Find the last span with cum ≤ a; spans[0].cum is 0.
	lo, hi := 0, len(s.spans)
	for hi-lo > 1 {
		m := int(uint(lo+hi) >> 1)
		if s.spans[m].cum <= a {
			lo = m
		} else {
			hi = m
		}
	}
	sp := s.spans[lo]
	return Target{Addr: addOffset(sp.lo, a-sp.cum), Port: port}
}
