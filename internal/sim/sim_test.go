package sim

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/scp"
	"github.com/pacswatch/pacswatch/internal/honeypot"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/probe/dicomprobe"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/targets"
)

// testPorts are high ports, so that tests need no privilege; below the ephemeral range.
var testPorts = []uint16{20104, 21112, 24242, 22761, 22762}

func startFleet(t *testing.T, cfg Config) *Fleet {
	t.Helper()
	if cfg.Ports == nil {
		cfg.Ports = testPorts
	}
	cfg.Timeout = 10 * time.Second
	f, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// probeAll probes every host:port of hosts as pacswatch scan does by default, 16 at a time, each
// within maxHost.
func probeAll(t *testing.T, hosts []netip.AddrPort, maxHost time.Duration) []probe.Result {
	t.Helper()
	// A store's secret, so that study sets compare (probe.Exposure.StudySet).
	secret := []byte("pacswatch sim test secret, 32 b.")
	p := dicomprobe.New(dicomprobe.Config{Depth: dicomprobe.DepthQuery, Timeout: 2 * time.Second, Secret: secret})
	out := make([]probe.Result, len(hosts))
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i, ap := range hosts {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), maxHost)
			defer cancel()
			start := time.Now()
			r := p.Probe(ctx, targets.Target{Addr: ap.Addr(), Port: ap.Port()})
			if el := time.Since(start); el > maxHost+time.Second {
				r.Error = "max host time exceeded" // as the scan engine would abandon it
				t.Errorf("%s: probe took %v, over its deadline %v", ap, el, maxHost)
			}
			r.Sanitize()
			out[i] = r
		})
	}
	wg.Wait()
	return out
}

func addrsOf(tr Truth) []netip.AddrPort {
	var out []netip.AddrPort
	for _, h := range tr.Hosts {
		out = append(out, h.Addr)
	}
	return out
}

// TestPerfectScanner probes every host of a fleet that holds every personality and every
// hostile mode, and checks that the scanner's reports score perfectly against the truth.
func TestPerfectScanner(t *testing.T) {
	if testing.Short() {
		t.Skip("probes 220 simulated hosts; skipped with -short")
	}
	f := startFleet(t, Config{Hosts: 220, Seed: 3, CIDR: netip.MustParsePrefix("127.13.0.0/22"), Latency: 200 * time.Millisecond,
		Mix: map[Personality]int{PersonalityOpen: 20, PersonalityCalledDict: 10, PersonalityCalledSecret: 8, PersonalityCalling: 7,
			PersonalityEchoOnly: 15, PersonalityQueryOnly: 10, PersonalityRetrieve: 12, PersonalityTLS: 5, PersonalityNotDICOM: 6,
			PersonalitySlow: 6, PersonalityHostile: 10, PersonalityDICOMHawk: 2, PersonalityDicompot: 2, PersonalityHoneypotCluster: 5}})
	tr := f.Truth()
	got := map[Personality]int{}
	for _, h := range tr.Hosts {
		got[h.Personality]++
	}
	for _, p := range Personalities() {
		if got[p] == 0 {
			t.Errorf("no %v host in the fleet", p)
		}
	}
	results := flagHoneypots(probeAll(t, addrsOf(tr), 20*time.Second))
	s := Compare(tr, results)
	var buf bytes.Buffer
	s.WriteText(&buf)
	if hp, _ := s.Field("honeypot", "yes"); hp.Truth < 6 {
		t.Errorf("%d honeypots in the truth, want the DICOMHawks, dicompots and a cluster", hp.Truth)
	}
	if !s.Perfect() {
		for i, r := range results {
			h := tr.Hosts[i]
			if h.Hostile != "" {
				continue
			}
			var e probe.Exposure
			if r.Exposure != nil {
				e = *r.Exposure
			}
			var d probe.DICOM
			if r.DICOM != nil {
				d = *r.DICOM
			}
			if (r.DICOM != nil && r.DICOM.Honeypot) != h.Honeypot {
				t.Errorf("%s %v: honeypot %v, truth %v; caveats %+v, implementation %q %q", h.Addr, h.Personality,
					r.DICOM != nil && r.DICOM.Honeypot, h.Honeypot, e.Caveats, d.ImplementationClassUID, d.ImplementationVersion)
			}
			if r.Level() != h.Level || e.Studies != h.Studies || e.Instances != h.Instances || d.AECheck != h.AECheck || d.TLS != h.TLS {
				t.Errorf("%s %v: got level %v studies %d instances %d ae_check %v tls %v error %q; want %v %d %d %v %v",
					h.Addr, h.Personality, r.Level(), e.Studies, e.Instances, d.AECheck, d.TLS, r.Error, h.Level, h.Studies, h.Instances, h.AECheck, h.TLS)
			}
		}
		t.Fatalf("score not perfect:\n%s", buf.String())
	}
	t.Logf("\n%s", buf.String())
}

// flagHoneypots adds the caveats honeypot.Flag would write to results, as one scan's.
func flagHoneypots(results []probe.Result) []probe.Result {
	d := honeypot.NewDetector(honeypot.Config{})
	for i := range results {
		d.Add(&results[i])
	}
	at := map[netip.AddrPort]int{}
	for i, r := range results {
		at[netip.AddrPortFrom(r.IP, r.Port)] = i
	}
	for _, f := range d.Flagged() {
		store.AddCaveat(&results[at[f.Addr]], f.Caveat)
	}
	return results
}

// TestListenersLoopback checks the address of every listener of a fleet: inside 127.0.0.0/8
// and inside the fleet's CIDR, on one of its ports; and that addresses elsewhere are refused.
func TestListenersLoopback(t *testing.T) {
	cidr := netip.MustParsePrefix("127.13.4.0/23")
	f := startFleet(t, Config{Hosts: 300, Seed: 9, CIDR: cidr})
	ls := f.listeners()
	if len(ls) != 300 {
		t.Fatalf("%d listeners, want 300", len(ls))
	}
	for _, ap := range ls {
		if !ap.Addr().Is4() || !loopback.Contains(ap.Addr()) || !cidr.Contains(ap.Addr()) || !containsPort(testPorts, ap.Port()) {
			t.Errorf("listener on %s: outside %s × %v", ap, cidr, testPorts)
		}
	}
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"private", Config{CIDR: netip.MustParsePrefix("10.0.0.0/16")}},
		{"public", Config{CIDR: netip.MustParsePrefix("192.0.2.0/24")}},
		{"all", Config{CIDR: netip.MustParsePrefix("0.0.0.0/0")}},
		{"wider than loopback", Config{CIDR: netip.MustParsePrefix("126.0.0.0/7")}},
		{"wider than the benchmarking block", Config{CIDR: netip.MustParsePrefix("198.16.0.0/14")}},
		{"next to the benchmarking block", Config{CIDR: netip.MustParsePrefix("198.20.0.0/24")}},
		{"ipv6", Config{CIDR: netip.MustParsePrefix("::1/128")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Hosts, tc.cfg.Ports = 1, testPorts
			f, err := Start(context.Background(), tc.cfg)
			if !errors.Is(err, ErrNotLoopback) {
				if f != nil {
					f.Close()
				}
				t.Fatalf("Start(%s) = %v, want ErrNotLoopback", tc.cfg.CIDR, err)
			}
		})
	}
	if _, err := f.Add(Spec{Addr: netip.MustParseAddrPort("10.1.2.3:20104"), Personality: PersonalityOpen}); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("Add(10.1.2.3) = %v, want ErrNotLoopback", err)
	}
}

func containsPort(ps []uint16, p uint16) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}

func TestPlan(t *testing.T) {
	cfg, err := Config{Hosts: 2000, Seed: 1}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	a, b := plan(cfg), plan(cfg)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("plan differs for the same config")
	}
	cfg.Seed = 2
	if reflect.DeepEqual(a, plan(cfg)) {
		t.Fatal("plan is the same for another seed")
	}
	got := map[Personality]int{}
	hostile := map[scp.Hostile]int{}
	seen := map[netip.Addr]bool{}
	for _, s := range a {
		got[s.Personality]++
		if s.Personality == PersonalityHostile {
			hostile[s.Hostile]++
		}
		if seen[s.Addr.Addr()] || !DefaultCIDR.Contains(s.Addr.Addr()) {
			t.Errorf("address %s twice or outside %s", s.Addr, DefaultCIDR)
		}
		seen[s.Addr.Addr()] = true
	}
	for p, w := range DefaultMix() {
		if want := 2000 * w / 100; got[p] != want {
			t.Errorf("%v: %d hosts, want %d", p, got[p], want)
		}
	}
	for _, h := range hostileModes {
		if hostile[h] == 0 {
			t.Errorf("no host is hostile as %v", h)
		}
	}
}

func TestGroups(t *testing.T) {
	cfg, err := Config{Hosts: 100, Seed: 4, Groups: []Group{{"IN/Maharashtra", 46, 30845}, {"IN/Karnataka", 7, 18286}, {"TR", 20, 0}}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	specs := plan(cfg)
	type tally struct{ hosts, studies int }
	got := map[string]*tally{}
	last := map[string]netip.Addr{}
	for _, s := range specs {
		g := got[s.Group]
		if g == nil {
			g = &tally{}
			got[s.Group] = g
		}
		g.hosts++
		if s.Personality.readable() {
			g.studies += s.Studies
		}
		if a, ok := last[s.Group]; ok && a.Compare(s.Addr.Addr()) > 0 {
			t.Errorf("group %q not in address order", s.Group)
		}
		last[s.Group] = s.Addr.Addr()
	}
	for _, tc := range []struct {
		group          string
		hosts, studies int
	}{
		{"IN/Maharashtra", 46, 30845}, {"IN/Karnataka", 7, 18286},
	} {
		g := got[tc.group]
		if g == nil || g.hosts != tc.hosts || g.studies != tc.studies {
			t.Errorf("group %s: %+v, want %d hosts holding %d readable studies", tc.group, g, tc.hosts, tc.studies)
		}
	}
	if got["TR"] == nil || got["TR"].hosts != 20 || got[""] == nil || got[""].hosts != 27 {
		t.Errorf("groups TR and none: %+v %+v, want 20 and 27 hosts", got["TR"], got[""])
	}
	if _, err := (Config{Hosts: 10, Groups: []Group{{"X", 11, 0}}}).withDefaults(); err == nil {
		t.Error("groups larger than the fleet accepted")
	}
}

func TestSplit(t *testing.T) {
	for _, tc := range []struct{ total, n, want int }{{1000, 10, 1000}, {5, 10, 10}, {0, 3, 3}, {7, 0, 0}} {
		got := split(newRand(1), tc.total, tc.n)
		sum := 0
		for _, v := range got {
			if v < 1 {
				t.Errorf("split(%d, %d) has a share %d < 1", tc.total, tc.n, v)
			}
			sum += v
		}
		if len(got) != tc.n || sum != tc.want {
			t.Errorf("split(%d, %d) = %d shares adding up to %d, want %d and %d", tc.total, tc.n, len(got), sum, tc.n, tc.want)
		}
	}
}

// TestFleetChanges removes, resizes and adds hosts, as the demo does between two scans.
func TestFleetChanges(t *testing.T) {
	f := startFleet(t, Config{Hosts: 12, Seed: 5, CIDR: netip.MustParsePrefix("127.13.8.0/24"),
		Mix: map[Personality]int{PersonalityOpen: 1}})
	before := f.Truth()
	gone, grown := before.Hosts[0], before.Hosts[1]
	if err := f.Remove(gone.Addr); err != nil {
		t.Fatal(err)
	}
	if err := f.Remove(gone.Addr); !errors.Is(err, ErrNoHost) {
		t.Errorf("second Remove = %v, want ErrNoHost", err)
	}
	if _, err := net.DialTimeout("tcp", gone.Addr.String(), time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial removed host: %v, want connection refused", err)
	}
	h, err := f.Resize(grown.Addr, int(grown.Studies)+40)
	if err != nil {
		t.Fatal(err)
	}
	if h.Studies != grown.Studies+40 || h.Instances <= grown.Instances {
		t.Errorf("resized host holds %d studies, %d instances; want %d, more than %d", h.Studies, h.Instances, grown.Studies+40, grown.Instances)
	}
	added, err := f.Add(Spec{Personality: PersonalityQueryOnly, Studies: 25, Group: "new"})
	if err != nil {
		t.Fatal(err)
	}
	if !f.cfg.CIDR.Contains(added.Addr.Addr()) || added.Studies != 25 || added.Level != probe.LevelQuery || added.Group != "new" {
		t.Errorf("added host %+v, want 25 studies at level query in group new inside the CIDR", added)
	}
	if _, err := f.Add(Spec{Addr: added.Addr, Personality: PersonalityOpen}); !errors.Is(err, ErrInUse) {
		t.Errorf("Add on a used address = %v, want ErrInUse", err)
	}
	for _, bad := range []Spec{{Personality: 0}, {Personality: personalityEnd}, {Personality: PersonalityHostile, Hostile: 99}} {
		if _, err := f.Add(bad); err == nil {
			t.Errorf("Add(%+v) accepted", bad)
		}
	}
	after := f.Truth()
	if len(after.Hosts) != len(before.Hosts) {
		t.Errorf("truth lists %d hosts, want %d", len(after.Hosts), len(before.Hosts))
	}
	results := probeAll(t, []netip.AddrPort{grown.Addr, added.Addr}, 20*time.Second)
	for i, want := range []Host{h, added} {
		r := results[i]
		if r.Exposure == nil || r.Exposure.Studies != want.Studies || r.Exposure.Instances != want.Instances || r.Level() != want.Level {
			t.Errorf("%s: probe reports %+v, want %d studies, %d instances, level %v", want.Addr, r.Exposure, want.Studies, want.Instances, want.Level)
		}
	}
	f.Close()
	if _, err := f.Add(Spec{Personality: PersonalityOpen}); !errors.Is(err, ErrClosed) {
		t.Errorf("Add after Close = %v, want ErrClosed", err)
	}
}

func TestTruthRoundTrip(t *testing.T) {
	f := startFleet(t, Config{Hosts: 40, Seed: 6, CIDR: netip.MustParsePrefix("127.13.9.0/24")})
	want := f.Truth()
	var buf bytes.Buffer
	if err := want.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := ReadTruth(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("truth changed through JSON")
	}
	for _, bad := range []string{``, `{"hosts":[{}]}`, `{"hosts":[{"addr":"127.0.0.1:1"},{"addr":"127.0.0.1:1"}]}`, `{"extra":1}`} {
		if _, err := ReadTruth(strings.NewReader(bad)); err == nil {
			t.Errorf("ReadTruth(%q) accepted", bad)
		}
	}
}

func TestParseMix(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[Personality]int // changes to DefaultMix
		ok   bool
	}{
		{"", nil, true},
		{"hostile=0", map[Personality]int{PersonalityHostile: 0}, true},
		{"open=5, tls=7", map[Personality]int{PersonalityOpen: 5, PersonalityTLS: 7}, true},
		{"open", nil, false},
		{"nope=1", nil, false},
		{"open=-1", nil, false},
		{"open=x", nil, false},
	} {
		got, err := ParseMix(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseMix(%q) error %v, want ok %v", tc.in, err, tc.ok)
			continue
		}
		if !tc.ok {
			continue
		}
		want := DefaultMix()
		for p, w := range tc.want {
			want[p] = w
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ParseMix(%q) = %v, want %v", tc.in, got, want)
		}
		if back, _ := ParseMix(FormatMix(got)); !reflect.DeepEqual(back, got) {
			t.Errorf("FormatMix does not round-trip %v", got)
		}
	}
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0)) }

// TestBindableBenchmarking: a fleet may bind in RFC 2544's block, for a test bed behind a veth.
func TestBindableBenchmarking(t *testing.T) {
	for _, p := range []string{"198.18.64.0/18", "198.19.255.0/24", "198.18.0.0/15", "127.0.0.0/8"} {
		if !bindable(netip.MustParsePrefix(p)) {
			t.Errorf("bindable(%s) = false, want true", p)
		}
	}
	for _, p := range []string{"198.16.0.0/14", "198.20.0.1/32", "10.0.0.0/8", "::1/128"} {
		if bindable(netip.MustParsePrefix(p)) {
			t.Errorf("bindable(%s) = true, want false", p)
		}
	}
}
