package report

import (
	"cmp"
	"context"
	"errors"
	"iter"
	"math"
	"net/netip"
	"slices"
	"strconv"

	"github.com/pacswatch/pacswatch/internal/geo"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// Metrics are the columns of the 2019 reports for one group of systems. A system is an
// address (host), whatever number of DICOM ports it answers on.
type Metrics struct {
	SystemsFound       int64 `json:"systems_found"`             // hosts with a DICOM service: an association answered at all
	SystemsAccessible  int64 `json:"systems_accessible"`        // hosts at level query or above
	Studies            int64 `json:"studies"`                   // studies on accessible hosts
	Images             int64 `json:"images"`                    // images (instances) on accessible hosts
	StudiesImageAccess int64 `json:"studies_with_image_access"` // studies on hosts whose retrieve was accepted or verified
	ImagesAccessible   int64 `json:"images_accessible"`         // images on those hosts
}

func (m *Metrics) add(o Metrics) {
	m.SystemsFound = addSat(m.SystemsFound, o.SystemsFound)
	m.SystemsAccessible = addSat(m.SystemsAccessible, o.SystemsAccessible)
	m.Studies = addSat(m.Studies, o.Studies)
	m.Images = addSat(m.Images, o.Images)
	m.StudiesImageAccess = addSat(m.StudiesImageAccess, o.StudiesImageAccess)
	m.ImagesAccessible = addSat(m.ImagesAccessible, o.ImagesAccessible)
}

// sub returns m − o.
func (m Metrics) sub(o Metrics) Metrics {
	return Metrics{
		SystemsFound:       m.SystemsFound - o.SystemsFound,
		SystemsAccessible:  m.SystemsAccessible - o.SystemsAccessible,
		Studies:            m.Studies - o.Studies,
		Images:             m.Images - o.Images,
		StudiesImageAccess: m.StudiesImageAccess - o.StudiesImageAccess,
		ImagesAccessible:   m.ImagesAccessible - o.ImagesAccessible,
	}
}

// addSat adds two non-negative counts, saturating: a server's claims cannot wrap a total.
func addSat(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// host is what one address showed across its ports in one scan.
type host struct {
	ip       netip.Addr
	open     bool         // a port accepted the TCP connection
	level    probe.Level  // the highest level of its ports not left out (store.ApartOf)
	rep      probe.Result // that port (highest level, then studies, then images)
	hasRep   bool
	tls      bool        // a DICOM port spoke TLS
	honeypot bool        // a port was flagged as a honeypot (and left out)
	implaus  bool        // a port's counts were implausible (and left out)
	web      *probe.Web  // its largest web front end open without authentication, with plausible studies
	apart    []caveatHit // its ports' counts kept apart, for the caveats section
}

func (h *host) add(r probe.Result) {
	if r.Status == probe.StatusOpen {
		h.open = true
	}
	h.note(&r)
	if store.ApartOf(&r) == store.ApartLeftOut {
		return
	}
	h.addWeb(r.Web)
	l := r.Level()
	if r.DICOM != nil && r.DICOM.TLS && l >= probe.LevelProtected {
		h.tls = true
	}
	if !h.hasRep || store.Outranks(&r, &h.rep) { // ports come in order: ties go to the lower
		h.rep, h.hasRep, h.level = r, true, l
	}
}

func (h *host) found() bool      { return h.level >= probe.LevelProtected }
func (h *host) accessible() bool { return h.level >= probe.LevelQuery && h.rep.Exposure != nil }

// lowerBound reports whether the representative port's count is a lower bound (capped): the
// system counts, its studies and images are in no total.
func (h *host) lowerBound() bool {
	return h.accessible() && store.ApartOf(&h.rep) == store.ApartLowerBound
}

func (h *host) imageAccess() bool {
	return h.accessible() && (h.level >= probe.LevelRetrieve || h.rep.Exposure.Retrieve >= probe.RetrieveAccepted)
}

func (h *host) metrics() Metrics {
	var m Metrics
	if !h.found() {
		return m
	}
	m.SystemsFound = 1
	if !h.accessible() {
		return m
	}
	m.SystemsAccessible = 1
	if h.lowerBound() {
		return m
	}
	e := h.rep.Exposure
	m.Studies, m.Images = e.Studies, e.Instances
	if h.imageAccess() {
		m.StudiesImageAccess, m.ImagesAccessible = e.Studies, e.Instances
	}
	return m
}

// errStop ends a store's Results early when an iterator's consumer stops.
var errStop = errors.New("report: stopped")

// hosts streams the hosts of a run's scans: the store merges their results ordered by address,
// so the ports of one host are consecutive, whatever shard holds them, and only the current host
// is held.
func hosts(ctx context.Context, st store.Reader, ids []string) iter.Seq2[*host, error] {
	return func(yield func(*host, error) bool) {
		var cur *host
		stopped := false
		err := store.MergeResults(ctx, st, ids, func(r probe.Result) error {
			if cur != nil && r.IP != cur.ip {
				if !yield(cur, nil) {
					stopped = true
					return errStop
				}
				cur = nil
			}
			if cur == nil {
				cur = &host{ip: r.IP}
			}
			cur.add(r)
			return nil
		})
		switch {
		case stopped:
		case err != nil:
			yield(nil, err)
		case cur != nil:
			yield(cur, nil)
		}
	}
}

// place is where a host is and which network announces it.
type place struct {
	loc    geo.Location
	hasLoc bool
	asn    geo.ASN
	hasASN bool
}

func locate(ip netip.Addr, g *geo.DB, a *geo.ASNDB) place {
	var p place
	if g != nil {
		p.loc, p.hasLoc = g.Lookup(ip)
	}
	if a != nil {
		p.asn, p.hasASN = a.Lookup(ip)
	}
	return p
}

// Unknown is the key of the group of hosts a database does not place.
const Unknown = "??"

// groupKey returns the row a host at p belongs to under g.
func groupKey(g Grouping, p place) Row {
	switch g {
	case GroupCountry:
		if !p.hasLoc {
			return Row{Key: Unknown, Name: "unknown"}
		}
		return Row{Key: p.loc.Country, Name: cmp.Or(p.loc.CountryName, p.loc.Country)}
	case GroupRegion:
		if !p.hasLoc {
			return Row{Key: Unknown, Name: "unknown"}
		}
		if p.loc.Region == "" {
			return Row{Key: p.loc.Country + "/" + Unknown, Name: "unknown", Country: p.loc.Country}
		}
		return Row{Key: p.loc.Country + "/" + p.loc.Region, Name: p.loc.Region, Country: p.loc.Country}
	case GroupASN:
		if !p.hasASN {
			return Row{Key: Unknown, Name: "unknown"}
		}
		return Row{Key: "AS" + strconv.FormatUint(uint64(p.asn.Number), 10), Name: cmp.Or(p.asn.Org, "unknown")}
	}
	return Row{Key: Unknown, Name: "unknown"}
}

// aggregate is one scan folded into totals, group rows and mixes: memory in the number of
// groups and (capped) distinct products and AE titles, never in the number of hosts.
type aggregate struct {
	total     Metrics
	tables    map[Grouping]map[string]*Row
	hosts     int64
	levels    [probe.LevelRetrieve + 1]int64
	aeChecks  [probe.AECheckCalling + 1]int64
	calledAEs counter
	products  counter
	tls       Share
	caveats   Caveats
	apart     Apart
}

func newAggregate(groups []Grouping) *aggregate {
	a := &aggregate{tables: map[Grouping]map[string]*Row{}}
	for _, g := range groups {
		a.tables[g] = map[string]*Row{}
	}
	return a
}

func (a *aggregate) add(h *host, p place) {
	a.hosts++
	if h.honeypot {
		a.caveats.Honeypots++
	}
	a.caveats.list(h)
	if h.open && h.level >= probe.LevelNotDICOM && int(h.level) < len(a.levels) {
		a.levels[h.level]++
	}
	ap := h.apartFigures()
	if !h.found() && ap == (Apart{}) {
		return
	}
	m := h.metrics()
	a.total.add(m)
	a.apart.add(ap)
	for g, rows := range a.tables {
		k := groupKey(g, p)
		r := rows[k.Key]
		if r == nil {
			r = &k
			rows[k.Key] = r
		}
		r.Metrics.add(m)
		r.Apart.add(ap)
	}
	if !h.found() {
		return
	}
	d := h.rep.DICOM
	if d != nil {
		if int(d.AECheck) < len(a.aeChecks) {
			a.aeChecks[d.AECheck]++
		}
		if d.Association == probe.AssociationAccepted && d.CalledAE != "" {
			a.calledAEs.add(d.CalledAE)
		}
		product, version := cmp.Or(d.Product, unidentified), d.ImplementationVersion
		if h.web != nil && h.web.Product != "" {
			// The web front end names the application; the association, often its toolkit
			// (Orthanc answers with DCMTK's Implementation Class UID).
			product, version = h.web.Product, h.web.Version
		}
		a.products.add(product + "\x00" + version)
	}
	a.tls.Systems++
	if h.tls {
		a.tls.TLS++
	}
	if h.accessible() {
		e := h.rep.Exposure
		if !e.StudiesExact {
			a.caveats.StudiesLowerBound++
		}
		switch e.InstancesSource {
		case probe.InstancesSourceEstimate:
			a.caveats.ImagesEstimated++
		case probe.InstancesSourceNone:
			a.caveats.ImagesUnknown++
		}
	}
}

const unidentified = "unidentified"

// maxKeys caps the distinct names a counter keeps (server-chosen strings); later ones count as
// "(other)".
const maxKeys = 10000

// counter counts systems per name with bounded memory.
type counter struct {
	m     map[string]int64
	other int64
}

func (c *counter) add(k string) {
	if c.m == nil {
		c.m = map[string]int64{}
	}
	if _, ok := c.m[k]; ok || len(c.m) < maxKeys {
		c.m[k]++
		return
	}
	c.other++
}

// Other is the name of the row that sums what a list leaves out.
const Other = "(other)"

// top returns the n largest counts, largest first (ties by name), and the rest summed as Other.
func (c *counter) top(n int) []Count {
	out := make([]Count, 0, len(c.m))
	for k, v := range c.m {
		out = append(out, Count{Name: k, Systems: v})
	}
	slices.SortFunc(out, func(a, b Count) int {
		return cmp.Or(cmp.Compare(b.Systems, a.Systems), cmp.Compare(a.Name, b.Name))
	})
	rest := c.other
	if len(out) > n {
		for _, x := range out[n:] {
			rest += x.Systems
		}
		out = out[:n]
	}
	if rest > 0 {
		out = append(out, Count{Name: Other, Systems: rest})
	}
	return out
}
