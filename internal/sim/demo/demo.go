// Package demo is the fleet of `pacswatch demo`: a simulated fleet of PACS (package sim)
// shaped like the 2019 reports of exposed archives, per Indian state and per country, with
// studies scaled 1:1000 (../shared/data/exposure-2019.csv), and what the sixty days between
// the two reports did to it (India grew, some systems closed, new ones appeared). The command
// line scans it twice and reports; this package holds the data and the change, nothing that
// scans.
package demo

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/pacswatch/pacswatch/internal/geo"
	"github.com/pacswatch/pacswatch/internal/sim"
)

// Where the demo fleet listens: loopback only, and no port below 1024, so that the demo needs
// no root.
var (
	CIDR  = netip.MustParsePrefix("127.20.0.0/22")
	Ports = []uint16{11112, 4242, 2761, 2762}
)

// Latency is the delay of the fleet's slow hosts.
const Latency = 100 * time.Millisecond

// A Group is one place of the demo fleet: its systems, and its studies at the first and the
// second scan, 1:1000.
type Group struct {
	Country, Region string // ISO 3166-1 alpha-2 code; region name or ""
	Systems         int
	Before, After   int  // studies at the first and the second scan, 1:1000
	CloseAll        bool // every system of the group closes before the second scan
	NewSystems      bool // new systems appear in the group before the second scan
}

// groups are the 2019 figures. Countries without published per-country figures are
// illustrative.
var groups = []Group{
	// India, 2019-11 state figures; 2019-09 scaled by 627,000/1,010,000 (the national growth).
	{"IN", "Maharashtra", 46, 191, 308, false, false},
	{"IN", "Karnataka", 7, 114, 183, false, true},
	{"IN", "West Bengal", 2, 107, 173, false, false},
	{"IN", "Telangana", 3, 78, 126, false, false},
	{"IN", "Gujarat", 19, 69, 111, false, false},
	{"IN", "Punjab", 4, 29, 46, false, false},
	// Turkey, 2019-09: 36 systems, 4.9 M studies; shown unchanged.
	{"TR", "", 36, 4924, 4924, false, false},
	// Illustrative: the rest of the world's ~500 systems, scaled down.
	{"US", "", 40, 1500, 1800, false, false},
	{"BR", "", 20, 900, 950, false, false},
	{"DE", "", 12, 400, 0, true, false},
	{"ZA", "", 8, 300, 310, false, false},
	{"AU", "", 8, 250, 120, false, false},
	{"MX", "", 10, 350, 420, false, false},
	{"VN", "", 8, 280, 300, false, false},
}

// Groups returns the places of the demo fleet, in order.
func Groups() []Group { return append([]Group(nil), groups...) }

// Name is the group's name in sim.Group and sim.Spec: "IN/Maharashtra", or "TR".
func (g Group) Name() string {
	if g.Region != "" {
		return g.Country + "/" + g.Region
	}
	return g.Country
}

// Find returns the group named name.
func Find(name string) (Group, bool) {
	for _, g := range groups {
		if g.Name() == name {
			return g, true
		}
	}
	return Group{}, false
}

// Location is where the systems of the group named name are, for the demo's geo database.
func Location(name string) geo.Location {
	country, region, _ := strings.Cut(name, "/")
	return geo.Location{Country: country, CountryName: geo.CountryName(country), Region: region}
}

// Config is the sim configuration of the demo fleet at the first scan: every group's systems
// and studies on CIDR and Ports, no hostile hosts (they have their own suite; the demo reads
// like a report), and a few honeypots (DICOMHawk, dicompot, and a cluster of ClusterSize
// addresses serving one archive), as a census meets them and leaves them out of its totals.
func Config(seed uint64) (sim.Config, error) {
	mix, err := sim.ParseMix("hostile=0,dicomhawk=1,dicompot=1,honeypot-cluster=2")
	if err != nil {
		return sim.Config{}, fmt.Errorf("demo: %w", err)
	}
	cfg := sim.Config{Seed: seed, CIDR: CIDR, Ports: Ports, Mix: mix, Latency: Latency}
	for _, g := range groups {
		cfg.Groups = append(cfg.Groups, sim.Group{Name: g.Name(), Hosts: g.Systems, Studies: g.Before})
		cfg.Hosts += g.Systems
	}
	return cfg, nil
}

// NewPerGroup is how many systems appear in a group with NewSystems.
const NewPerGroup = 3

// newStudies is the archive size of the i-th new system of a group.
func newStudies(i int) int { return 15 + 5*i }

// Change is what Age did to the fleet.
type Change struct {
	Resized, Closed, Added int // archives that grew or shrank, systems removed, systems added
}

// Age changes the fleet as the sixty days between the 2019 reports did: every system of a
// CloseAll group closes; NewPerGroup retrieve-open systems appear in each NewSystems group;
// and the readable archives of every other group are resized so that, with the new ones, they
// hold the group's After studies exactly (each at least one), so that the report's growth is
// the published one (India: 627,000 to 1,010,000, +61 %). Honeypots keep their archives.
func Age(fleet *sim.Fleet) (Change, error) {
	var c Change
	members := map[string][]sim.Spec{}
	for _, s := range fleet.Specs() {
		if s.Studies == 0 {
			continue
		}
		if g, ok := Find(s.Group); ok && g.CloseAll {
			if err := fleet.Remove(s.Addr); err != nil {
				return c, err
			}
			c.Closed++
			continue
		}
		if s.Personality.Readable() {
			members[s.Group] = append(members[s.Group], s)
		}
	}
	for _, g := range groups {
		target := g.After
		if g.NewSystems {
			for i := range NewPerGroup {
				if _, err := fleet.Add(sim.Spec{Personality: sim.PersonalityRetrieve, Studies: newStudies(i), Group: g.Name()}); err != nil {
					return c, err
				}
				c.Added++
				target -= newStudies(i)
			}
		}
		if g.CloseAll || g.After == g.Before && !g.NewSystems {
			continue
		}
		specs := members[g.Name()]
		for i, n := range resize(specs, target) {
			if n == specs[i].Studies {
				continue
			}
			if _, err := fleet.Resize(specs[i].Addr, n); err != nil {
				return c, err
			}
			c.Resized++
		}
	}
	return c, nil
}

// resize returns new sizes for archives that add up to target (at least one each): each in
// proportion to its size, the rounding remainder to the largest.
func resize(specs []sim.Spec, target int) []int {
	total := 0
	for _, s := range specs {
		total += s.Studies
	}
	out := make([]int, len(specs))
	if total == 0 {
		return out
	}
	got, big := 0, 0
	for i, s := range specs {
		out[i] = max(1, s.Studies*target/total)
		got += out[i]
		if out[i] > out[big] {
			big = i
		}
	}
	out[big] = max(1, out[big]+target-got)
	return out
}
