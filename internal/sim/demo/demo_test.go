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

// TestAge ages a demo fleet (on an address block of its own) as the sixty days did.
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
	var want Change
	before := map[netip.AddrPort]sim.Spec{}
	for _, s := range fleet.Specs() {
		g, ok := Find(s.Group)
		if !ok {
			t.Fatalf("host %s in unknown group %q", s.Addr, s.Group)
		}
		before[s.Addr] = s
		switch {
		case s.Studies == 0:
		case g.CloseAll:
			want.Closed++
		case g.After != g.Before:
			want.Resized++
		}
	}
	for _, g := range Groups() {
		if g.NewSystems {
			want.Added += NewPerGroup
		}
	}
	got, err := Age(fleet)
	if err != nil {
		t.Fatal(err)
	}
	if got != want || want.Closed == 0 || want.Resized == 0 || want.Added == 0 {
		t.Errorf("Age = %+v, want %+v (each kind of change)", got, want)
	}
	for _, s := range fleet.Specs() {
		g, _ := Find(s.Group)
		old, ok := before[s.Addr]
		n := old.Studies
		switch {
		case g.CloseAll && s.Studies > 0:
			t.Errorf("%s of %s still holds %d studies", s.Addr, s.Group, s.Studies)
		case ok && old.Group == s.Group && n > 0 && g.Before > 0 && s.Studies != max(1, n*g.After/g.Before):
			t.Errorf("%s of %s: %d studies, want %d", s.Addr, s.Group, s.Studies, max(1, n*g.After/g.Before))
		}
	}
}
