package web

import (
	"context"
	"net/netip"
	"slices"
	"strings"

	"github.com/pacswatch/pacswatch/internal/geo"
	"github.com/pacswatch/pacswatch/internal/history"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/report"
	"github.com/pacswatch/pacswatch/internal/store"
)

// maxIndexed caps the systems a host index holds (about 40 bytes each); beyond it a place's
// list ends early and says so.
const maxIndexed = 1_000_000

// hostIndex lists the systems found in a run (level protected or above: the rows of the
// report's "systems found"), in address order, each with its region.
type hostIndex struct {
	hosts     []indexed
	regions   []string // region keys as report's region table has them: "IN/Maharashtra", "IN/??", "??"
	truncated bool     // the run found more than maxIndexed systems
}

type indexed struct {
	ip     netip.Addr
	region uint32 // index in regions
}

// buildIndex reads the run's results once, in address order (store.MergeResults), folding each
// address's ports as report does.
func buildIndex(ctx context.Context, st store.Reader, run store.Group, g *geo.DB) (*hostIndex, error) {
	x := &hostIndex{}
	regionOf := map[string]uint32{}
	var cur []probe.Result
	flush := func() {
		if len(cur) == 0 {
			return
		}
		ip := cur[0].IP
		s := history.StateOf(cur)
		cur = cur[:0]
		if !s.Found() {
			return
		}
		if len(x.hosts) == maxIndexed {
			x.truncated = true
			return
		}
		key := regionKey(g, ip)
		i, ok := regionOf[key]
		if !ok {
			i = uint32(len(x.regions))
			regionOf[key] = i
			x.regions = append(x.regions, key)
		}
		x.hosts = append(x.hosts, indexed{ip: ip, region: i})
	}
	err := store.MergeResults(ctx, st, run.IDs(), func(r probe.Result) error {
		if len(cur) > 0 && r.IP != cur[0].IP {
			flush()
		}
		cur = append(cur, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	flush()
	return x, nil
}

// regionKey is the key of the region row of report's region table that ip belongs to.
func regionKey(g *geo.DB, ip netip.Addr) string {
	if g == nil {
		return report.Unknown
	}
	loc, ok := g.Lookup(ip)
	switch {
	case !ok:
		return report.Unknown
	case loc.Region == "":
		return loc.Country + "/" + report.Unknown
	}
	return loc.Country + "/" + loc.Region
}

// countryOf returns the country key of a region key ("??" for the unknown place).
func countryOf(region string) string {
	if region == report.Unknown {
		return report.Unknown
	}
	cc, _, _ := strings.Cut(region, "/")
	return cc
}

// place filters an index: a country key, a region key, or neither (every system).
type place struct {
	country, region string
}

func (p place) match(region string) bool {
	switch {
	case p.region != "":
		return region == p.region
	case p.country != "":
		return countryOf(region) == p.country
	}
	return true
}

// page returns up to n systems of the place after address after (invalid: from the first), and
// the address to continue after when there are more.
func (x *hostIndex) page(p place, after netip.Addr, n int) (ips []netip.Addr, next netip.Addr) {
	i := 0
	if after.IsValid() {
		i, _ = slices.BinarySearchFunc(x.hosts, after, func(h indexed, a netip.Addr) int { return h.ip.Compare(a) })
		if i < len(x.hosts) && x.hosts[i].ip == after {
			i++
		}
	}
	for ; i < len(x.hosts); i++ {
		h := x.hosts[i]
		if !p.match(x.regions[h.region]) {
			continue
		}
		if len(ips) == n {
			return ips, ips[n-1]
		}
		ips = append(ips, h.ip)
	}
	return ips, netip.Addr{}
}

// count returns how many systems of the place the index holds.
func (x *hostIndex) count(p place) int {
	n := 0
	for _, h := range x.hosts {
		if p.match(x.regions[h.region]) {
			n++
		}
	}
	return n
}

// HostRow is one system of a list: its state in the run.
type HostRow struct {
	IP     netip.Addr    `json:"ip"`
	Region string        `json:"region,omitempty"` // the region key, with a location database
	State  history.State `json:"state"`
}

// rows reads the state of each address in the run: one look-up per address and shard.
func rows(ctx context.Context, st store.Reader, run store.Group, g *geo.DB, ips []netip.Addr) ([]HostRow, error) {
	out := make([]HostRow, 0, len(ips))
	for _, ip := range ips {
		var rs []probe.Result
		for _, id := range run.IDs() {
			if err := store.HostResults(ctx, st, id, ip, func(r probe.Result) error {
				rs = append(rs, r)
				return nil
			}); err != nil {
				return nil, err
			}
		}
		slices.SortStableFunc(rs, func(a, b probe.Result) int { return int(a.Port) - int(b.Port) })
		row := HostRow{IP: ip, State: history.StateOf(rs)}
		if g != nil {
			row.Region = regionKey(g, ip)
		}
		out = append(out, row)
	}
	return out, nil
}
