package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// md writes Markdown: lines, table rows and rules.
type md struct{ w *bufio.Writer }

func (m md) p(format string, args ...any) { fmt.Fprintf(m.w, format, args...) }
func (m md) row(cells ...string)          { m.p("| %s |\n", strings.Join(cells, " | ")) }

// rule writes a table's rule: left columns aligned left, right ones right.
func (m md) rule(left, right int) {
	cells := make([]string, 0, left+right)
	for range left {
		cells = append(cells, "---")
	}
	for range right {
		cells = append(cells, "---:")
	}
	m.row(cells...)
}

func nums(vs []int64) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = num(v)
	}
	return out
}

// WriteMarkdown writes the report as Markdown.
func (r *Report) WriteMarkdown(w io.Writer) error {
	m := md{bufio.NewWriter(w)}
	r.mdHead(m)
	r.mdSummary(m)
	r.mdVerdicts(m)
	for _, t := range r.Tables {
		r.mdTable(m, t)
	}
	r.mdMix(m)
	r.mdTrendAndCaveats(m)
	return m.w.Flush()
}

func (r *Report) mdHead(m md) {
	m.p("# pacswatch report\n\n")
	m.p("- Scan: %s.\n", scanLine(r.Scan))
	if r.Compare != nil {
		m.p("- Compared with: %s.\n", scanLine(*r.Compare))
	} else {
		m.p("- Compared with: no earlier scan.\n")
	}
	if r.Geo != "" {
		m.p("- Locations: %s.\n", mdEscape(r.Geo))
	}
	if r.ASN != "" {
		m.p("- Networks: %s.\n", mdEscape(r.ASN))
	}
}

func (r *Report) mdSummary(m md) {
	m.p("\n## Summary\n\n")
	m.row(append([]string{""}, metricNames...)...)
	m.rule(1, len(metricNames))
	m.row(append([]string{"all systems"}, nums(metricValues(r.Total.Metrics))...)...)
	if r.Total.Change != nil {
		cells := []string{"change since " + mdEscape(r.Compare.ID)}
		for _, v := range metricValues(*r.Total.Change) {
			cells = append(cells, delta(v))
		}
		m.row(cells...)
		m.p("\nTrend: **%s**. %s\n", r.Total.Trend, r.Rule)
	}
	m.p("\nKept out of these totals, and counted apart:\n\n")
	m.row(apartNames...)
	m.rule(0, len(apartNames))
	m.row(nums(apartValues(r.Total.Apart))...)
}

func (r *Report) mdVerdicts(m md) {
	if r.Compare == nil {
		return
	}
	m.p("\n## The good, the bad and the ugly\n\n%s\n", r.Rule)
	for _, t := range r.Tables {
		vs, more := Verdicts(t)
		m.p("\n%s:\n\n", groupTitle(t.Group))
		for i, v := range vs {
			names := make([]string, len(v.Groups))
			for j, g := range v.Groups {
				names[j] = mdEscape(g)
			}
			list := strings.Join(names, ", ")
			if list == "" {
				list = "none"
			}
			if more[i] > 0 {
				list += fmt.Sprintf(", and %d more", more[i])
			}
			m.p("- **%s** (%d): %s.\n", v.Trend, len(v.Groups)+more[i], list)
		}
	}
}

func (r *Report) mdTable(m md, t Table) {
	key, name := groupColumns(t.Group)
	m.p("\n## %s\n\n", groupTitle(t.Group))
	head := append([]string{key, name}, metricNames...)
	if r.Compare != nil {
		head = append(head, "Δ systems accessible", "Δ studies", "Δ images", "trend")
	}
	m.row(head...)
	m.rule(2, len(head)-2)
	var apart []Row
	for _, g := range t.Rows {
		cells := append([]string{mdEscape(keyCell(t.Group, g)), mdEscape(g.Name)}, nums(metricValues(g.Metrics))...)
		if g.Change != nil {
			cells = append(cells, delta(g.Change.SystemsAccessible), delta(g.Change.Studies), delta(g.Change.Images), g.Trend.String())
		}
		m.row(cells...)
		if g.Apart != (Apart{}) {
			apart = append(apart, g)
		}
	}
	if len(t.Rows) == 0 {
		m.p("\nNo system found.\n")
	}
	if len(apart) > 0 {
		m.p("\nKept apart:\n\n")
		m.row(append([]string{key, name}, apartNames...)...)
		m.rule(2, len(apartNames))
		for _, g := range apart {
			m.row(append([]string{mdEscape(keyCell(t.Group, g)), mdEscape(g.Name)}, nums(apartValues(g.Apart))...)...)
		}
	}
}

func (r *Report) mdMix(m md) {
	m.p("\n## Exposure levels\n\nHosts with an open port, by the highest level of their ports.\n\n")
	m.row("level", "hosts")
	m.rule(1, 1)
	for _, c := range r.Levels {
		m.row(c.Name, num(c.Systems))
	}
	m.p("\n## AE title checks\n\nSystems found, by the AE title check they enforce.\n\n")
	m.row("check", "systems")
	m.rule(1, 1)
	for _, c := range r.AEChecks {
		m.row(c.Name, num(c.Systems))
	}
	m.p("\n## Called AE titles that opened an association\n\n")
	if len(r.CalledAEs) == 0 {
		m.p("None.\n")
	} else {
		m.row("called AE title", "systems")
		m.rule(1, 1)
		for _, c := range r.CalledAEs {
			m.row(mdEscape(c.Name), num(c.Systems))
		}
	}
	m.p("\n## Products and versions\n\nSystems found, by product and implementation version name.\n\n")
	if len(r.Products) == 0 {
		m.p("None.\n")
	} else {
		m.row("product", "version", "systems")
		m.rule(2, 1)
		for _, c := range r.Products {
			m.row(mdEscape(c.Product), mdEscape(c.Version), num(c.Systems))
		}
	}
	m.p("\n## TLS\n\n%s of %s systems found (%s) offered DICOM TLS.\n", num(r.TLS.TLS), num(r.TLS.Systems), percent(r.TLS.TLS, r.TLS.Systems))
}

func (r *Report) mdTrendAndCaveats(m md) {
	m.p("\n## Trend over every scan\n\n")
	m.row(append([]string{"scan", "started"}, metricNames...)...)
	m.rule(2, len(metricNames))
	for _, pt := range r.Trend {
		scan := mdEscape(pt.Scan)
		if pt.Name != "" {
			scan += " “" + mdEscape(pt.Name) + "”"
		}
		m.row(append([]string{scan, when(pt.Started)}, nums(metricValues(pt.Metrics))...)...)
	}
	m.p("\n## Caveats\n\n")
	for _, c := range caveatLines(r.Caveats) {
		m.p("- %s\n", c)
	}
	if len(r.Caveats.Hosts) > 0 {
		m.p("\n")
		m.row("host", "caveat", "studies claimed", "images claimed", "reason")
		m.row("---", "---", "---:", "---:", "---")
		for _, h := range r.Caveats.Hosts {
			m.row(mdEscape(h.Addr), h.Kind, num(h.Studies), num(h.Images), mdEscape(h.Reason))
		}
		if r.Caveats.HostsNotListed > 0 {
			m.p("\nAnd %s more not listed.\n", num(r.Caveats.HostsNotListed))
		}
	}
	m.p("\n## Definitions\n\n")
	for _, d := range r.Definitions {
		m.p("- **%s**: %s.\n", d.Term, d.Meaning)
	}
	m.p("- **trend**: %s\n", r.Rule)
}
