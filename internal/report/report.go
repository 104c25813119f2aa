// Package report turns the scans of a store into the tables of the 2019 reports on unprotected
// PACS (systems found and accessible, studies and images, with image access), per country,
// region and autonomous system, with the change against an earlier scan, a trend class, the
// mix of exposure levels, AE-title checks, products and TLS, and a trend over every scan.
// See SPEC.md "report" and "diff".
//
// A report covers a run: a scan, or the shards of one (--shard I/N) taken together
// (store.Groups). It is computed by streaming the run's results and those of the compared run
// (store.MergeResults, ordered by address): memory grows with the number of groups, not of
// hosts. The trend over every other run comes from the store's per-system figures
// (store.Reader.Systems), which read no record. It is rendered as one
// self-contained HTML file (html/template; inline SVG charts and world map; no script and no
// network fetch), Markdown, CSV or JSON. Every string that came from a server or a database is
// escaped for its format.
//
// Levels, retrieval and AE checks are those of probe.Result, which follow PS3.8 §7.1 (the
// association), PS3.7 §9.1 (C-FIND, C-GET, C-MOVE) and PS3.15 Annex B (TLS).
package report

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"github.com/pacswatch/pacswatch/internal/textsafe"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pacswatch/pacswatch/internal/geo"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// ErrNoScans is returned for a store that holds no scan.
var ErrNoScans = errors.New("report: the store has no scans")

// Grouping is what a table's rows are.
type Grouping uint8

const (
	GroupCountry Grouping = iota + 1 // ISO 3166-1 country, from a location database
	GroupRegion                      // first-level subdivision (state), from a city database
	GroupASN                         // autonomous system, from an ASN database
)

func (g Grouping) String() string {
	switch g {
	case GroupCountry:
		return "country"
	case GroupRegion:
		return "region"
	case GroupASN:
		return "asn"
	}
	return fmt.Sprintf("Grouping(%d)", uint8(g))
}

// MarshalText implements encoding.TextMarshaler.
func (g Grouping) MarshalText() ([]byte, error) { return []byte(g.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (g *Grouping) UnmarshalText(b []byte) error {
	v, err := ParseGrouping(string(b))
	if err == nil {
		*g = v
	}
	return err
}

// ParseGrouping parses "country", "region" (or "state") and "asn".
func ParseGrouping(s string) (Grouping, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "country":
		return GroupCountry, nil
	case "region", "state":
		return GroupRegion, nil
	case "asn", "as":
		return GroupASN, nil
	}
	return 0, fmt.Errorf("report: grouping %s is not country, region or asn", quote(s))
}

// NoCompare as Options.Compare turns the comparison off.
const NoCompare = "none"

// Options choose what a report covers.
type Options struct {
	// Scan is the scan ID to report on, with the other shards of its run; "" means the latest
	// scan, finished or not.
	Scan string
	// Compare is the scan ID to compare with, whose run must be finished (all its shards); ""
	// means the latest finished run before Scan's (none when there is none); NoCompare for none.
	Compare string

	Geo *geo.DB    // places hosts in countries and regions; nil: no such tables
	ASN *geo.ASNDB // places hosts in autonomous systems; nil: no ASN table

	// Groups are the tables to make, in order. Nil means every grouping the databases allow:
	// country and region (city databases only) with Geo, asn with ASN.
	Groups []Grouping

	Thresholds Thresholds // the trend rule; zero means the defaults
}

// Report is a scan's figures. Its JSON form is the json format's output.
type Report struct {
	Scan    ScanInfo  `json:"scan"`
	Compare *ScanInfo `json:"compare,omitempty"`
	Geo     string    `json:"geo_database,omitempty"` // the location database, e.g. "GeoLite2-City built 2026-01-01"
	ASN     string    `json:"asn_database,omitempty"`

	Definitions []Definition `json:"definitions"`
	Thresholds  Thresholds   `json:"thresholds"`
	Rule        string       `json:"trend_rule"`

	Total  Row     `json:"total"`
	Tables []Table `json:"tables"`

	Levels    []Count   `json:"exposure_levels"`  // hosts with an open port, by their highest level
	AEChecks  []Count   `json:"ae_checks"`        // systems found, by AE title check
	CalledAEs []Count   `json:"called_ae_titles"` // systems that accepted an association, by the called AE title that worked
	Products  []Product `json:"products"`         // systems found, by product and implementation version
	TLS       Share     `json:"tls"`
	Caveats   Caveats   `json:"caveats"`

	Trend []Point `json:"trend"` // every run of the store (a scan, or the shards of one), oldest first
}

// ScanInfo describes a run: a scan, or the shards of one scan (--shard I/N) taken together.
type ScanInfo struct {
	ID       string    `json:"id"` // the run's first scan
	Name     string    `json:"name,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"` // zero while unfinished (any shard)
	Targets  uint64    `json:"targets"`           // host:port pairs in the scan (its stored shards)
	Hosts    int64     `json:"hosts"`             // addresses with a stored result

	// Shards is N of a sharded scan's --shard I/N, and ShardsFinished how many of its shards are
	// stored and finished; both zero for an unsharded scan.
	Shards         uint64 `json:"shards,omitempty"`
	ShardsFinished uint64 `json:"shards_finished,omitempty"`
}

// Definition is a term of the report and what it counts.
type Definition struct {
	Term    string `json:"term"`
	Meaning string `json:"meaning"`
}

// Row is one group's figures.
type Row struct {
	Key     string `json:"key"`               // "IN", "IN/Maharashtra", "AS9829", Unknown
	Name    string `json:"name"`              // "India", "Maharashtra", the AS organization
	Country string `json:"country,omitempty"` // region rows: the region's country code
	Metrics
	Apart    Apart    `json:"apart"`              // figures kept out of Metrics
	Previous *Metrics `json:"previous,omitempty"` // in the compared scan
	Change   *Metrics `json:"change,omitempty"`   // Metrics − Previous
	Trend    Trend    `json:"trend,omitempty"`
}

// Table is the rows of one grouping, most accessible studies first; the groups the databases
// did not place last.
type Table struct {
	Group Grouping `json:"group"`
	Rows  []Row    `json:"rows"`
}

// Count is a number of systems with a name.
type Count struct {
	Name    string `json:"name"`
	Systems int64  `json:"systems"`
}

// Product is a number of systems running one product version.
type Product struct {
	Product string `json:"product"` // as identified by the probe, or "unidentified"
	Version string `json:"version"` // the implementation version name it sent (PS3.7 Annex D.3.3.2)
	Systems int64  `json:"systems"`
}

// Share is how many systems found offered DICOM TLS.
type Share struct {
	Systems int64 `json:"systems"`
	TLS     int64 `json:"tls"`
}

// Caveats count the systems whose figures are not exact, and name the host:ports whose counts
// are kept apart (capped, implausible, honeypot) with what they claimed.
type Caveats struct {
	StudiesLowerBound int64 `json:"studies_lower_bound"` // accessible systems whose study count is not exact
	ImagesEstimated   int64 `json:"images_estimated"`    // accessible systems whose image count is extrapolated
	ImagesUnknown     int64 `json:"images_unknown"`      // accessible systems whose images could not be counted (counted as 0)
	Honeypots         int64 `json:"honeypots"`           // hosts with a port flagged as a honeypot, left out of every figure

	Hosts          []CaveatHost `json:"hosts"`            // the first maxCaveatHosts, in address order
	HostsNotListed int64        `json:"hosts_not_listed"` // the others
}

// Point is one run's totals, for the trend over every run.
type Point struct {
	Scan    string    `json:"scan"`
	Name    string    `json:"name,omitempty"`
	Started time.Time `json:"started"`
	Metrics
}

// maxListed is how many products and AE titles a report lists before "(other)".
const maxListed = 20

// Definitions are the report's terms, printed in every format.
func Definitions() []Definition {
	return []Definition{
		{"system", "an IP address; its DICOM ports count once, with the figures of its most exposed port (highest level, then most studies), since the ports of one address usually serve one archive"},
		{"systems found", "systems with a DICOM service: an association answered at all (accepted, rejected, or aborted by the server); exposure level protected or above"},
		{"systems accessible", "systems at exposure level query or above: a C-FIND answered with studies"},
		{"studies (data troves), images", "studies and images (instances) counted on accessible systems: exact counts, and estimates labelled as such (see caveats); a study is what the 2019 reports called a data trove"},
		{"studies with image access, images accessible", "studies and images on accessible systems whose C-GET or C-MOVE was accepted (or proven with --verify-retrieve)"},
		{"group", "from the location or ASN database given; hosts it does not place are in the group " + Unknown},
		{"kept apart", "counts not summed into the totals, shown in their own columns: capped (a server's result limit hit and not sliced away: the system is accessible, its studies a lower bound), implausible (beyond the plausibility bounds: more than 100,000 images in a study, more than 10,000,000 studies on a host, answers without a study UID), honeypot (a known honeypot's fingerprint, or one of a cluster of hosts that serve identical study sets or share one identity and TLS certificate)"},
		{"web only", "systems whose web front end (Orthanc REST, DICOMweb, dcm4chee-arc) shows studies without authentication while their DICOM side does not: accessible, counted in their own columns; a host open on both counts once, on the DICOM side"},
	}
}

// Build computes the report of a run (a scan and the other shards of its --shard run), streaming
// its results and those of the compared run; the trend over every other run comes from the
// store's per-system figures (store.Reader.Systems).
func Build(ctx context.Context, st store.Reader, opt Options) (*Report, error) {
	th := opt.Thresholds
	if th == (Thresholds{}) {
		th = Thresholds{GoodDrop: DefaultGoodDrop, UglyRise: DefaultUglyRise}
	}
	if err := th.Validate(); err != nil {
		return nil, err
	}
	groups, err := groupings(opt)
	if err != nil {
		return nil, err
	}
	scans, err := st.Scans(ctx)
	if err != nil {
		return nil, err
	}
	runs := store.Groups(scans)
	cur, prev, err := pick(scans, runs, opt.Scan, opt.Compare)
	if err != nil {
		return nil, err
	}

	r := &Report{Definitions: Definitions(), Thresholds: th, Rule: th.Rule()}
	if opt.Geo != nil {
		r.Geo = opt.Geo.Info().String()
	}
	if opt.ASN != nil {
		r.ASN = opt.ASN.Info().String()
	}
	// Only the reported and the compared run are read result by result; the trend over the
	// others comes from the store's per-system figures, which read no record.
	var a, old *aggregate
	for i, run := range runs {
		var total Metrics
		switch i {
		case cur, prev:
			agg, err := fold(ctx, st, run.IDs(), groups, opt.Geo, opt.ASN)
			if err != nil {
				return nil, err
			}
			if i == cur {
				a = agg
			} else {
				old = agg
			}
			total = agg.total
		default:
			sys, err := st.Systems(ctx, run.IDs()...)
			if err != nil {
				return nil, err
			}
			total = metricsOf(sys)
		}
		r.Trend = append(r.Trend, Point{Scan: cleanText(run.ID()), Name: cleanText(run.Scans[0].Name), Started: run.Started(), Metrics: total})
	}

	r.Scan = scanInfo(runs[cur], a)
	if old != nil {
		info := scanInfo(runs[prev], old)
		r.Compare = &info
	}
	r.Total = Row{Key: "all", Name: "all systems", Metrics: a.total, Apart: a.apart}
	if old != nil {
		compare(&r.Total, old.total, th)
	}
	for _, g := range groups {
		r.Tables = append(r.Tables, table(g, a, old, th))
	}
	for l := probe.LevelNotDICOM; l <= probe.LevelRetrieve; l++ {
		r.Levels = append(r.Levels, Count{Name: l.String(), Systems: a.levels[l]})
	}
	for _, c := range []probe.AECheck{probe.AECheckNone, probe.AECheckCalled, probe.AECheckCalling, probe.AECheckUnknown} {
		r.AEChecks = append(r.AEChecks, Count{Name: c.String(), Systems: a.aeChecks[c]})
	}
	r.CalledAEs = a.calledAEs.top(maxListed)
	for _, c := range a.products.top(maxListed) {
		p, v, _ := strings.Cut(c.Name, "\x00")
		r.Products = append(r.Products, Product{Product: p, Version: v, Systems: c.Systems})
	}
	r.TLS, r.Caveats = a.tls, a.caveats
	return r, nil
}

// groupings checks the asked groupings against the databases, or picks every one they allow.
func groupings(opt Options) ([]Grouping, error) {
	if opt.Groups == nil {
		var gs []Grouping
		if opt.Geo != nil {
			gs = append(gs, GroupCountry)
			if opt.Geo.Info().Kind == geo.KindCity {
				gs = append(gs, GroupRegion)
			}
		}
		if opt.ASN != nil {
			gs = append(gs, GroupASN)
		}
		return gs, nil
	}
	var gs []Grouping
	for _, g := range opt.Groups {
		switch {
		case (g == GroupCountry || g == GroupRegion) && opt.Geo == nil:
			return nil, fmt.Errorf("report: grouping by %s needs a location database (--geo)", g)
		case g == GroupRegion && opt.Geo.Info().Kind != geo.KindCity:
			return nil, fmt.Errorf("report: grouping by region needs a city database, not a %s database", opt.Geo.Info().Kind)
		case g == GroupASN && opt.ASN == nil:
			return nil, errors.New("report: grouping by asn needs an ASN database (--asn)")
		case g < GroupCountry || g > GroupASN:
			return nil, fmt.Errorf("report: unknown grouping %d", g)
		}
		if !slices.Contains(gs, g) {
			gs = append(gs, g)
		}
	}
	return gs, nil
}

// pick returns the index of the reported run (the shard group of the scan named, by default
// of the latest scan) and of the compared one (-1 for none). Only finished runs are compared
// (SPEC "report": all shards finished): by default the latest finished run before the reported
// one; a compared scan named explicitly must be of a finished run.
func pick(scans []store.Scan, runs []store.Group, id, compareID string) (cur, prev int, err error) {
	if len(runs) == 0 {
		return 0, 0, ErrNoScans
	}
	find := func(id string) (int, error) {
		if i, ok := store.GroupOf(runs, id); ok {
			return i, nil
		}
		return 0, fmt.Errorf("report: scan %s: %w", quote(id), store.ErrNotFound)
	}
	if id == "" {
		id = scans[len(scans)-1].ID
	}
	if cur, err = find(id); err != nil {
		return 0, 0, err
	}
	switch compareID {
	case NoCompare:
		prev = -1
	case "":
		prev = -1
		for i := cur - 1; i >= 0; i-- {
			if runs[i].Finished() {
				prev = i
				break
			}
		}
	default:
		if prev, err = find(compareID); err != nil {
			return 0, 0, err
		}
		if prev == cur {
			return 0, 0, fmt.Errorf("report: scan %s compared with itself", quote(compareID))
		}
		if !runs[prev].Finished() {
			return 0, 0, fmt.Errorf("report: scan %s is not finished: only finished scans are compared (--compare)", quote(compareID))
		}
	}
	return cur, prev, nil
}

// maxQuoted caps a user's value (a scan ID) quoted in an error, in bytes.
const maxQuoted = 200

// quote returns s as an error line quotes a user's value: with Go's escapes (%q), cut to
// maxQuoted bytes on a rune boundary with "…" when longer.
func quote(s string) string {
	if len(s) > maxQuoted {
		n := maxQuoted
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n] + "…"
	}
	return strconv.Quote(s)
}

// fold streams the results of a run's scans (its shards) into one aggregate.
func fold(ctx context.Context, st store.Reader, ids []string, groups []Grouping, g *geo.DB, a *geo.ASNDB) (*aggregate, error) {
	agg := newAggregate(groups)
	for h, err := range hosts(ctx, st, ids) {
		if err != nil {
			return nil, err
		}
		var p place
		if len(groups) > 0 {
			p = locate(h.ip, g, a)
		}
		agg.add(h, p)
	}
	return agg, nil
}

// scanInfo describes a run: its first scan's ID and name, the span of its shards, and how
// many of them finished when it has more than one.
func scanInfo(run store.Group, a *aggregate) ScanInfo {
	info := ScanInfo{ID: cleanText(run.ID()), Name: cleanText(run.Scans[0].Name), Started: run.Started(),
		Finished: run.FinishedAt(), Targets: run.Total(), Hosts: a.hosts}
	if run.Key.Shards > 1 {
		info.Shards, info.ShardsFinished = run.Key.Shards, run.ShardsFinished()
	}
	return info
}

// metricsOf returns the store's per-system figures as a report's.
func metricsOf(s store.Systems) Metrics {
	return Metrics{SystemsFound: s.Found, SystemsAccessible: s.Accessible, Studies: s.Studies, Images: s.Images,
		StudiesImageAccess: s.StudiesImageAccess, ImagesAccessible: s.ImagesAccessible}
}

// maxText caps scan IDs and names in a report, in bytes.
const maxText = 128

// cleanText makes a scan's ID or name (--name, typed by a user) safe in every format.
func cleanText(s string) string { return textsafe.Clean(s, maxText) }

// compare fills a row's change against old figures and its trend class.
func compare(r *Row, old Metrics, th Thresholds) {
	prev := old
	change := r.Metrics.sub(old)
	r.Previous, r.Change = &prev, &change
	r.Trend = Classify(old.Studies, r.Studies, th)
}

// table makes the rows of grouping g: every group of the scan and, with a compared scan, every
// group of that one too (a group that emptied shows as zero, and good).
func table(g Grouping, a, old *aggregate, th Thresholds) Table {
	t := Table{Group: g}
	for _, r := range a.tables[g] {
		row := *r
		if old != nil {
			var prev Metrics
			if o := old.tables[g][r.Key]; o != nil {
				prev = o.Metrics
			}
			compare(&row, prev, th)
		}
		t.Rows = append(t.Rows, row)
	}
	if old != nil {
		for k, o := range old.tables[g] {
			if _, ok := a.tables[g][k]; ok {
				continue
			}
			row := Row{Key: o.Key, Name: o.Name, Country: o.Country}
			compare(&row, o.Metrics, th)
			t.Rows = append(t.Rows, row)
		}
	}
	unknown := func(r Row) int {
		if isUnknown(r) {
			return 1
		}
		return 0
	}
	slices.SortFunc(t.Rows, func(x, y Row) int {
		return cmp.Or(cmp.Compare(unknown(x), unknown(y)), cmp.Compare(y.Studies, x.Studies), cmp.Compare(y.SystemsAccessible, x.SystemsAccessible),
			cmp.Compare(y.SystemsFound, x.SystemsFound), strings.Compare(x.Key, y.Key))
	})
	return t
}
