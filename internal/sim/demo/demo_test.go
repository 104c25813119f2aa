package demo

import (
	"context"
	"net/netip"
	"testing"

	"github.com/pacswatch/pacswatch/internal/sim"
)

func TestGroups(t *testing.T) {
	gs := Groups()
	if len(gs) == 0 {
		t.Fatal("no groups")
	}
	gs[0].Systems = -1
	if Groups()[0].Systems == -1 {
		t.Error("Groups returns the package's own slice")
	}
	names := map[string]bool{}
	for _, g := range Groups() {
		if names[g.Name()] {
			t.Errorf("group %s twice", g.Name())
		}
		names[g.Name()] = true
		if got, ok := Find(g.Name()); !ok || got != g {
			t.Errorf("Find(%s) = %+v, %v", g.Name(), got, ok)
		}
		loc := Location(g.Name())
		if loc.Country != g.Country || loc.Region != g.Region || loc.CountryName == "" {
			t.Errorf("Location(%s) = %+v", g.Name(), loc)
		}
		if g.Systems <= 0 || g.Before < 0 || g.After < 0 || g.CloseAll && g.After != 0 {
			t.Errorf("group %s: %+v", g.Name(), g)
		}
	}
	if _, ok := Find("XX"); ok {
		t.Error("Find(XX) found a group")
	}
	if g, _ := Find("IN/Maharashtra"); g.Systems != 46 || g.After != 308 {
		t.Errorf("IN/Maharashtra = %+v, want the 2019-11 figures", g)
	}
}

func TestConfig(t *testing.T) {
	cfg, err := Config(7)
	if err != nil {
		t.Fatal(err)
	}
	hosts := 0
	for _, g := range Groups() {
		hosts += g.Systems
	}
	if cfg.Hosts != hosts || len(cfg.Groups) != len(Groups()) || cfg.Seed != 7 || cfg.CIDR != CIDR {
		t.Errorf("config: %d hosts in %d groups, seed %d, %s; want %d in %d, 7, %s", cfg.Hosts, len(cfg.Groups), cfg.Seed, cfg.CIDR, hosts, len(Groups()), CIDR)
	}
	if cfg.Mix[sim.PersonalityHostile] != 0 {
		t.Errorf("mix %v: want no hostile hosts", cfg.Mix)
	}
	for _, p := range cfg.Ports {
		if p < 1024 {
			t.Errorf("port %d needs root", p)
		}
	}
}

// TestAge ages a demo fleet (on an address block of its own) as the sixty days did: each group's
// readable archives then hold its After studies exactly, with the new systems; honeypots keep
// theirs; closing groups hold none.
func TestAge(t *testing.T) {
	cfg, err := Config(2019)
	if err != nil {
		t.Fatal(err)
	}
	cfg.CIDR = netip.MustParsePrefix("127.21.0.0/22")
	fleet, err := sim.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	honeypots := map[netip.AddrPort]int{}
	sums := func() map[string]int {
		out := map[string]int{}
		for _, s := range fleet.Specs() {
			if s.Personality.Readable() {
				out[s.Group] += s.Studies
			}
		}
		return out
	}
	before := sums()
	for _, s := range fleet.Specs() {
		if s.Personality.Honeypot() {
			honeypots[s.Addr] = s.Studies
		}
	}
	if len(honeypots) < 6 {
		t.Errorf("%d honeypots in the demo fleet, want DICOMHawks, dicompots and a cluster", len(honeypots))
	}
	got, err := Age(fleet)
	if err != nil {
		t.Fatal(err)
	}
	if got.Closed == 0 || got.Resized == 0 || got.Added == 0 {
		t.Errorf("Age = %+v, want each kind of change", got)
	}
	after := sums()
	for _, g := range Groups() {
		switch {
		case g.CloseAll && after[g.Name()] != 0:
			t.Errorf("%s still holds %d studies", g.Name(), after[g.Name()])
		case !g.CloseAll && (before[g.Name()] != g.Before || after[g.Name()] != g.After):
			t.Errorf("%s: %d studies before, %d after; want %d and %d", g.Name(), before[g.Name()], after[g.Name()], g.Before, g.After)
		}
	}
	for _, s := range fleet.Specs() {
		if n, ok := honeypots[s.Addr]; ok && n != s.Studies {
			t.Errorf("honeypot %s: %d studies, was %d", s.Addr, s.Studies, n)
		}
	}
}
