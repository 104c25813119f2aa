// Package sim runs a simulated fleet of PACS on loopback addresses, as the SPEC's "sim and demo"
// section describes: many in-process DICOM SCPs (package scp), each on its own address of a
// CIDR inside 127.0.0.0/8 with closed addresses in between, and a seeded mix of personalities:
// open archives, called- and calling-AE title checks (A-ASSOCIATE-RJ of PS3.8 §9.3.4), services
// refused in the ways real servers refuse them (PS3.4 Annex C), DICOM TLS (PS3.15 Annex B.1),
// slow servers, listeners that do not speak DICOM, and hostile servers. Each DICOM host holds a
// synthetic archive (fake patients only).
//
// The fleet's Truth is what a perfect scanner reports for each host:port; Score compares a
// scan's results with it.
//
// A fleet binds only addresses inside 127.0.0.0/8, and never opens a connection: none of its
// servers knows a C-MOVE destination, so nothing is sent but answers to whoever connected.
package sim

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/scp"
	"github.com/pacswatch/pacswatch/internal/probe/dicomprobe"
)

// Defaults of Config.
const (
	DefaultHosts      = 2000
	DefaultLatency    = 500 * time.Millisecond
	DefaultMaxAETries = 8 // pacswatch scan's --max-ae-tries
	DefaultTimeout    = 30 * time.Second
)

// DefaultCIDR is the address block of a fleet unless Config says otherwise.
var DefaultCIDR = netip.MustParsePrefix("127.10.0.0/16")

// DefaultPorts are the SPEC's default DICOM ports. Port 104 needs root.
func DefaultPorts() []uint16 { return []uint16{104, 11112, 4242, 2761, 2762} }

// loopback is the only block a fleet binds in.
var loopback = netip.MustParsePrefix("127.0.0.0/8")

// benchmarking is RFC 2544's block, which a sealed test bed (../shared/tools/veth-testbed)
// routes to a fleet behind a veth: a fleet may bind there too. Binding sends nothing.
var benchmarking = netip.MustParsePrefix("198.18.0.0/15")

// bindable reports whether p lies in a block a fleet may bind in.
func bindable(p netip.Prefix) bool {
	return p.Addr().Is4() && (loopback.Contains(p.Addr()) && p.Bits() >= loopback.Bits() ||
		benchmarking.Contains(p.Addr()) && p.Bits() >= benchmarking.Bits())
}

// Limits of a Config.
const (
	minBits  = 12 // a CIDR of at most 2^20 addresses
	maxHosts = 1 << 16
)

// Errors.
var (
	ErrNotLoopback = errors.New("sim: address outside 127.0.0.0/8 and 198.18.0.0/15")
	ErrNoHost      = errors.New("sim: no host at that address")
	ErrInUse       = errors.New("sim: address in use by the fleet")
	ErrClosed      = errors.New("sim: fleet closed")
)

// Config configures a fleet. The zero value of each field has the documented default.
type Config struct {
	// Hosts is how many hosts listen; the other addresses of CIDR are closed. Default
	// DefaultHosts, at most 65,536 and at most the size of CIDR.
	Hosts int
	// Seed draws everything: addresses, ports, personalities, archives. The same Config gives
	// the same fleet and the same truth.
	Seed uint64
	// CIDR is the address block, inside 127.0.0.0/8, of at most 2^20 addresses; default
	// DefaultCIDR.
	CIDR netip.Prefix
	// Ports are the ports hosts listen on, one per host, drawn uniformly; default
	// DefaultPorts.
	Ports []uint16
	// Mix weighs the personalities; nil: DefaultMix. Hosts are divided in proportion (largest
	// remainders), and hostile hosts take the hostile modes in turn.
	Mix map[Personality]int
	// Groups, if any, label the hosts in address order: the first Groups[0].Hosts hosts are in
	// Groups[0], and so on, so that each group holds a contiguous run of addresses.
	Groups []Group
	// MaxAETries is how many called AE titles the scanner the truth is for guesses per target
	// (pacswatch scan --max-ae-tries); a PersonalityCalledDict host's title is among its guesses
	// for the host's port. Default DefaultMaxAETries, at least 2.
	MaxAETries int
	// Latency is how long a PersonalitySlow host thinks before each association reply and the
	// first response to each request; default DefaultLatency.
	Latency time.Duration
	// Timeout bounds each server's wait for its peer; default DefaultTimeout.
	Timeout time.Duration
}

// Group is a set of hosts that share a label, such as a country or a state, and the studies
// their readable archives hold between them.
type Group struct {
	Name  string
	Hosts int
	// Studies is the number of studies the group's readable archives (those of the personalities
	// a perfect scanner reads) hold in all, split among them with skewed shares, at least one
	// each; 0 draws each archive's size as outside any group.
	Studies int
}

func (c Config) withDefaults() (Config, error) {
	if c.Hosts == 0 {
		c.Hosts = DefaultHosts
	}
	if !c.CIDR.IsValid() {
		c.CIDR = DefaultCIDR
	}
	if len(c.Ports) == 0 {
		c.Ports = DefaultPorts()
	}
	if len(c.Mix) == 0 {
		c.Mix = DefaultMix()
	}
	if c.MaxAETries == 0 {
		c.MaxAETries = DefaultMaxAETries
	}
	if c.Latency == 0 {
		c.Latency = DefaultLatency
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	c.CIDR = c.CIDR.Masked()
	if !bindable(c.CIDR) {
		return c, fmt.Errorf("%w: CIDR %s", ErrNotLoopback, c.CIDR)
	}
	size := uint64(1) << (32 - c.CIDR.Bits())
	weights := 0
	for p, w := range c.Mix {
		if p < PersonalityOpen || p >= personalityEnd || w < 0 {
			return c, fmt.Errorf("sim: mix: bad weight %d of %v", w, p)
		}
		weights += w
	}
	grouped := 0
	for _, g := range c.Groups {
		if g.Hosts < 0 || g.Studies < 0 || g.Studies > maxStudiesPerHost*max(g.Hosts, 1) {
			return c, fmt.Errorf("sim: group %q: bad size", g.Name)
		}
		grouped += g.Hosts
	}
	switch {
	case c.CIDR.Bits() < minBits:
		return c, fmt.Errorf("sim: CIDR %s is larger than /%d", c.CIDR, minBits)
	case c.Hosts < 0 || c.Hosts > maxHosts || uint64(c.Hosts) > size:
		return c, fmt.Errorf("sim: %d hosts do not fit: at most %d in %s", c.Hosts, min(size, maxHosts), c.CIDR)
	case slices.Contains(c.Ports, 0):
		return c, errors.New("sim: port 0 in the port list")
	case weights == 0:
		return c, errors.New("sim: every personality has weight 0")
	case grouped > c.Hosts:
		return c, fmt.Errorf("sim: groups hold %d hosts, more than the fleet's %d", grouped, c.Hosts)
	case c.MaxAETries < 2:
		return c, errors.New("sim: MaxAETries must be at least 2")
	case c.Latency < 0 || c.Timeout < 0:
		return c, errors.New("sim: negative Latency or Timeout")
	}
	return c, nil
}

// plan draws the fleet's hosts from c (with defaults filled in): addresses, ports,
// personalities, groups and archive sizes, sorted by address.
func plan(c Config) []Spec {
	r := rand.New(rand.NewPCG(c.Seed, 0x51a))
	base := binary.BigEndian.Uint32(c.CIDR.Addr().AsSlice())
	idx := sample(r, uint32(1)<<(32-c.CIDR.Bits()), c.Hosts)
	slices.Sort(idx)
	specs := make([]Spec, len(idx))
	for i, k := range idx {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], base+k)
		specs[i] = Spec{
			Addr: netip.AddrPortFrom(netip.AddrFrom4(a), c.Ports[r.IntN(len(c.Ports))]),
			Seed: r.Uint64(),
		}
	}
	for i, p := range assign(r, c.Mix, len(specs)) {
		specs[i].Personality = p
	}
	hostile := 0
	for i := range specs {
		if specs[i].Personality == PersonalityHostile {
			specs[i].Hostile = hostileModes[hostile%len(hostileModes)]
			hostile++
		}
	}
	next := 0
	for _, g := range c.Groups {
		members := specs[next : next+g.Hosts]
		next += g.Hosts
		var readable []int
		for i := range members {
			members[i].Group = g.Name
			if members[i].Personality.readable() {
				readable = append(readable, i)
			}
		}
		if g.Studies == 0 {
			continue
		}
		for j, n := range split(r, g.Studies, len(readable)) {
			members[readable[j]].Studies = min(n, maxStudiesPerHost)
		}
	}
	for i := range specs {
		if specs[i].Studies == 0 {
			specs[i].Studies = defaultStudies(r, specs[i].Personality)
		}
	}
	clusters(specs)
	return specs
}

// sample returns n distinct numbers of [0, size), n ≤ size, in O(n) memory (Floyd's algorithm).
func sample(r *rand.Rand, size uint32, n int) []uint32 {
	seen := make(map[uint32]struct{}, n)
	out := make([]uint32, 0, n)
	for j := size - uint32(n); j < size; j++ {
		t := r.Uint32N(j + 1)
		if _, ok := seen[t]; ok {
			t = j
		}
		seen[t] = struct{}{}
		out = append(out, t)
	}
	return out
}

// assign returns n personalities in the proportions of mix (largest remainders), shuffled.
func assign(r *rand.Rand, mix map[Personality]int, n int) []Personality {
	total := 0
	for _, w := range mix {
		total += w
	}
	type share struct {
		p    Personality
		n    int
		frac int
	}
	var shares []share
	given := 0
	for _, p := range Personalities() {
		w := mix[p]
		if w == 0 {
			continue
		}
		k := n * w / total
		shares = append(shares, share{p, k, n * w % total})
		given += k
	}
	order := slices.Clone(shares)
	slices.SortStableFunc(order, func(a, b share) int { return cmp.Compare(b.frac, a.frac) })
	for i := 0; given < n; i++ {
		for j := range shares {
			if shares[j].p == order[i%len(order)].p {
				shares[j].n++
			}
		}
		given++
	}
	out := make([]Personality, 0, n)
	for _, s := range shares {
		for range s.n {
			out = append(out, s.p)
		}
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// Fleet is a running simulated fleet. Its methods are safe for concurrent use.
type Fleet struct {
	cfg  Config
	dict dicomprobe.Dict
	ctx  context.Context

	mu     sync.Mutex // protects the fields below
	hosts  map[netip.AddrPort]*host
	used   map[netip.Addr]int // hosts per address, whatever their port
	rng    *rand.Rand         // draws Add's addresses and ports
	closed bool
}

// host is one running server.
type host struct {
	spec  Spec
	truth Host
	srv   *scp.Server
	addr  netip.AddrPort // the listener's own address
	done  chan struct{}  // closed when Serve returned
}

// Start starts the fleet cfg describes and returns once every host listens. The fleet stops
// when ctx is done or Close is called. Start fails if any address cannot be bound.
func Start(ctx context.Context, cfg Config) (*Fleet, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	f := &Fleet{
		cfg: cfg, dict: dicomprobe.DefaultDict(), ctx: ctx,
		hosts: map[netip.AddrPort]*host{}, used: map[netip.Addr]int{},
		rng: rand.New(rand.NewPCG(cfg.Seed, 0xadd)),
	}
	for _, s := range plan(cfg) {
		if _, err := f.start(s); err != nil {
			f.Close()
			return nil, err
		}
	}
	context.AfterFunc(ctx, func() { f.Close() })
	return f, nil
}

// start binds s.Addr and serves s there; f.mu must not be held.
func (f *Fleet) start(s Spec) (Host, error) {
	if !bindable(netip.PrefixFrom(s.Addr.Addr(), 32)) {
		return Host{}, fmt.Errorf("%w: %s", ErrNotLoopback, s.Addr)
	}
	if s.Personality < PersonalityOpen || s.Personality >= personalityEnd {
		return Host{}, fmt.Errorf("sim: %s: invalid personality %d", s.Addr, uint8(s.Personality))
	}
	if s.Hostile < scp.HostileNone || s.Hostile > hostileModes[len(hostileModes)-1] {
		return Host{}, fmt.Errorf("sim: %s: invalid hostile mode %d", s.Addr, int(s.Hostile))
	}
	s.Studies = min(max(s.Studies, 0), maxStudiesPerHost)
	if s.Personality == PersonalityNotDICOM {
		s.Studies = 0
	}
	b := behave(s, f.dict, f.cfg.MaxAETries)
	tree := treeOf(s)
	h := &host{spec: s, truth: expect(s, b, tree), done: make(chan struct{})}
	var cert *tls.Config
	if b.tls {
		var err error
		if cert, err = selfSigned(time.Now(), s.Addr.String()); err != nil {
			return Host{}, err
		}
	}
	h.srv = scp.New(b.server(tree, f.cfg.Latency, f.cfg.Timeout, cert))

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return Host{}, ErrClosed
	}
	if _, ok := f.hosts[s.Addr]; ok {
		return Host{}, fmt.Errorf("%w: %s", ErrInUse, s.Addr)
	}
	l, err := net.Listen("tcp4", s.Addr.String())
	if err != nil {
		return Host{}, fmt.Errorf("sim: listen: %w", err)
	}
	ap, err := netip.ParseAddrPort(l.Addr().String())
	if err != nil || !bindable(netip.PrefixFrom(ap.Addr(), 32)) {
		l.Close()
		return Host{}, fmt.Errorf("%w: listener on %s", ErrNotLoopback, l.Addr())
	}
	h.addr = ap
	f.hosts[s.Addr] = h
	f.used[s.Addr.Addr()]++
	go func() {
		defer close(h.done)
		h.srv.Serve(f.ctx, l) // returns nil once closed; an accept error leaves the host closed
	}()
	return h.truth, nil
}

// Close stops every host and waits for their connections to end. Calling it again does
// nothing more.
func (f *Fleet) Close() error {
	f.mu.Lock()
	f.closed = true
	hosts := f.hosts
	f.hosts = map[netip.AddrPort]*host{}
	f.mu.Unlock()
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Go(func() { h.stop() })
	}
	wg.Wait()
	return nil
}

func (h *host) stop() {
	h.srv.Close()
	<-h.done
}

// Truth returns the truth about every host of the fleet, sorted by address.
func (f *Fleet) Truth() Truth {
	f.mu.Lock()
	t := Truth{CIDR: f.cfg.CIDR, Ports: slices.Clone(f.cfg.Ports), Seed: f.cfg.Seed, MaxAETries: f.cfg.MaxAETries}
	for _, h := range f.hosts {
		t.Hosts = append(t.Hosts, h.truth)
	}
	f.mu.Unlock()
	sort.Slice(t.Hosts, func(i, j int) bool { return t.Hosts[i].Addr.Compare(t.Hosts[j].Addr) < 0 })
	return t
}

// Specs returns the specs of every host of the fleet, sorted by address: what Add needs to
// start them again elsewhere.
func (f *Fleet) Specs() []Spec {
	f.mu.Lock()
	var specs []Spec
	for _, h := range f.hosts {
		specs = append(specs, h.spec)
	}
	f.mu.Unlock()
	sort.Slice(specs, func(i, j int) bool { return specs[i].Addr.Compare(specs[j].Addr) < 0 })
	return specs
}

// Remove stops the host at addr, whose address:port is closed from then on.
func (f *Fleet) Remove(addr netip.AddrPort) error {
	f.mu.Lock()
	h, ok := f.hosts[addr]
	if ok {
		delete(f.hosts, addr)
		if f.used[addr.Addr()]--; f.used[addr.Addr()] <= 0 {
			delete(f.used, addr.Addr())
		}
	}
	f.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoHost, addr)
	}
	h.stop()
	return nil
}

// Resize gives the host at addr an archive of studies studies, drawn from the same seed (its
// first studies stay the same), and returns its new truth. The host is restarted on the same
// address: connections open at the time are closed.
func (f *Fleet) Resize(addr netip.AddrPort, studies int) (Host, error) {
	f.mu.Lock()
	h, ok := f.hosts[addr]
	f.mu.Unlock()
	if !ok {
		return Host{}, fmt.Errorf("%w: %s", ErrNoHost, addr)
	}
	if err := f.Remove(addr); err != nil {
		return Host{}, err
	}
	s := h.spec
	s.Studies = studies
	return f.start(s)
}

// Add starts a new host as s describes, and returns its truth. A zero s.Addr is a free address
// of the fleet's CIDR, a zero port one of the fleet's ports; a zero s.Seed is drawn too. The
// address may lie outside the CIDR, but not outside 127.0.0.0/8.
func (f *Fleet) Add(s Spec) (Host, error) {
	f.mu.Lock()
	if !s.Addr.Addr().IsValid() {
		a, err := f.freeAddr()
		if err != nil {
			f.mu.Unlock()
			return Host{}, err
		}
		s.Addr = netip.AddrPortFrom(a, s.Addr.Port())
	}
	if s.Addr.Port() == 0 {
		s.Addr = netip.AddrPortFrom(s.Addr.Addr(), f.cfg.Ports[f.rng.IntN(len(f.cfg.Ports))])
	}
	if s.Seed == 0 {
		s.Seed = f.rng.Uint64()
	}
	f.mu.Unlock()
	return f.start(s)
}

// freeAddr draws an address of the CIDR that no host uses; f.mu must be held.
func (f *Fleet) freeAddr() (netip.Addr, error) {
	size := uint32(1) << (32 - f.cfg.CIDR.Bits())
	if uint64(len(f.used)) >= uint64(size) {
		return netip.Addr{}, fmt.Errorf("sim: no free address in %s", f.cfg.CIDR)
	}
	base := binary.BigEndian.Uint32(f.cfg.CIDR.Addr().AsSlice())
	start := f.rng.Uint32N(size)
	for i := range size {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], base+(start+i)%size)
		if addr := netip.AddrFrom4(a); f.used[addr] == 0 {
			return addr, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("sim: no free address in %s", f.cfg.CIDR)
}

// listeners returns the address of every listener, for tests.
func (f *Fleet) listeners() []netip.AddrPort {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []netip.AddrPort
	for _, h := range f.hosts {
		out = append(out, h.addr)
	}
	return out
}
