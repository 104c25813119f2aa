package report

import (
	"bufio"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
)

//go:embed report.html.tmpl
var htmlSource string

// world.txt: country shapes in the Natural Earth projection, from Natural Earth's 1:50m
// countries (public domain) via the world-atlas package (ISC); see gen_world.go.
//
//go:generate go run gen_world.go -atlas countries-50m.json -o world.txt
//go:embed world.txt
var worldTXT string

// Map geometry: world.txt is 1000 units wide; the view leaves out Antarctica's latitudes.
const (
	mapWidth  = 1000
	mapHeight = 450
)

var htmlTemplate = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("report").Funcs(template.FuncMap{
		"num":      num,
		"delta":    delta,
		"when":     when,
		"finished": finished,
		"shards":   shards,
		"percent":  percent,
		"key":      keyCell,
		"title":    groupTitle,
		"columns":  func(g Grouping) []string { k, n := groupColumns(g); return []string{k, n} },
		"metrics":  metricValues,
		"caveats":  caveatLines,
		"unknown":  isUnknown,
		"hasUnknown": func(t Table) bool {
			return slices.ContainsFunc(t.Rows, isUnknown)
		},
		"rowOf": func(t Table, r Row) groupRow { return groupRow{T: t, R: r} },
		"apartRows": func(t Table) []Row {
			var out []Row
			for _, r := range t.Rows {
				if r.Apart != (Apart{}) {
					out = append(out, r)
				}
			}
			return out
		},
		"lower": strings.ToLower,
		"verdicts": func(t Table) verdicts {
			vs, more := Verdicts(t)
			return verdicts{Classes: vs, More: more[:]}
		},
	}).Parse(htmlSource))
})

// groupRow is a row of a group table with its table, for the template.
type groupRow struct {
	T Table
	R Row
}

// verdicts are a table's good / bad / ugly groups, for the template.
type verdicts struct {
	Classes []Verdict
	More    []int
}

type shape struct {
	cc     string
	cx, cy float64
	d      string
}

var worldShapes = sync.OnceValue(func() []shape {
	var out []shape
	for line := range strings.Lines(worldTXT) {
		f := strings.Split(strings.TrimRight(line, "\n"), "\t")
		if len(f) != 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		var s shape
		s.cc, s.d = f[0], f[2]
		if _, err := fmt.Sscan(f[1], &s.cx, &s.cy); err != nil {
			continue
		}
		out = append(out, s)
	}
	return out
})

// page is what the template renders.
type page struct {
	*Report
	MetricNames []string
	Map         *worldMap
	Charts      []barChart
	Levels      barChart
	Trends      []lineChart
}

type worldMap struct {
	Width, Height int
	Countries     []mapCountry
	Bubbles       []mapBubble
	Legend        []legendItem
	Unplaced      []string // groups with systems that have no shape (unknown, tiny territories)
}

type mapCountry struct {
	D     string
	Class string
	Title string
}

type mapBubble struct {
	X, Y, R float64
	Title   string
}

type legendItem struct {
	Class, Label string
	Y            int
}

func rowTitle(r Row) string {
	return fmt.Sprintf("%s (%s): %s systems found, %s accessible, %s studies, %s images",
		r.Name, r.Key, num(r.SystemsFound), num(r.SystemsAccessible), num(r.Studies), num(r.Images))
}

func newWorldMap(t Table) *worldMap {
	rows := map[string]Row{}
	for _, r := range t.Rows {
		rows[r.Key] = r
	}
	bs := bands(t.Rows)
	m := &worldMap{Width: mapWidth, Height: mapHeight}
	var maxStudies int64 = 1
	for _, r := range t.Rows {
		maxStudies = max(maxStudies, r.Studies)
	}
	seen := map[string]bool{}
	for _, s := range worldShapes() {
		r, ok := rows[s.cc]
		c := mapCountry{D: s.d, Class: "none", Title: s.cc}
		if ok {
			seen[s.cc] = true
			c.Class, c.Title = shade(r.Metrics, bs), rowTitle(r)
			if r.Studies > 0 {
				// Area proportional to studies, so that small countries with many show.
				rad := 2 + 18*math.Sqrt(float64(r.Studies)/float64(maxStudies))
				m.Bubbles = append(m.Bubbles, mapBubble{X: s.cx, Y: s.cy, R: math.Round(rad*10) / 10, Title: c.Title})
			}
		}
		m.Countries = append(m.Countries, c)
	}
	for _, r := range t.Rows {
		if !seen[r.Key] && r.SystemsFound > 0 {
			m.Unplaced = append(m.Unplaced, rowTitle(r))
		}
	}
	legend := []legendItem{{"none", "no system found", 0}, {"f0", "systems found, none accessible", 0}}
	for i, b := range bs {
		legend = append(legend, legendItem{b.Class, b.label(i == 0), 0})
	}
	for i := range legend {
		legend[i].Y = mapHeight - 100 + 16*i
	}
	m.Legend = legend
	return m
}

// barChart is a horizontal bar chart in SVG.
type barChart struct {
	Title  string
	Width  int
	Height int
	Bars   []bar
}

type bar struct {
	Label string
	Value string
	Y     int
	W     float64
	Title string
}

const (
	barLabelWidth = 240
	barMaxWidth   = 460
	barStep       = 22
	maxBars       = 15
)

func newBarChart(title string, labels []string, values []int64) barChart {
	c := barChart{Title: title, Width: barLabelWidth + barMaxWidth + 120}
	var top int64 = 1
	for _, v := range values {
		top = max(top, v)
	}
	for i := range labels {
		if i == maxBars {
			break
		}
		w := float64(values[i]) / float64(top) * barMaxWidth
		c.Bars = append(c.Bars, bar{
			Label: truncate(labels[i], 34), Value: num(values[i]), Y: i * barStep,
			W: math.Round(w*10) / 10, Title: labels[i] + ": " + num(values[i]),
		})
	}
	c.Height = len(c.Bars)*barStep + 4
	return c
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// lineChart is a line over every scan, in SVG.
type lineChart struct {
	Title         string
	Width, Height int
	Points        string // polyline points
	Dots          []dot
	Max           string
	Base          int
}

type dot struct {
	X, Y  float64
	Label string
	Title string
}

func newLineChart(title string, pts []Point, value func(Metrics) int64) lineChart {
	const w, h, left, right, top, bottom = 760, 200, 80, 50, 16, 40
	c := lineChart{Title: title, Width: w, Height: h, Base: h - bottom}
	var hi int64 = 1
	for _, p := range pts {
		hi = max(hi, value(p.Metrics))
	}
	c.Max = num(hi)
	var b strings.Builder
	for i, p := range pts {
		x := float64(left)
		if len(pts) > 1 {
			x += float64(i) * float64(w-left-right) / float64(len(pts)-1)
		} else {
			x += float64(w-left-right) / 2
		}
		y := float64(top) + (1-float64(value(p.Metrics))/float64(hi))*float64(h-top-bottom)
		x, y = math.Round(x*10)/10, math.Round(y*10)/10
		fmt.Fprintf(&b, "%s,%s ", strconv.FormatFloat(x, 'f', -1, 64), strconv.FormatFloat(y, 'f', -1, 64))
		c.Dots = append(c.Dots, dot{X: x, Y: y, Label: pointLabel(p),
			Title: fmt.Sprintf("scan %s %s, %s: %s", p.Scan, p.Name, p.Started.UTC().Format("2006-01-02 15:04"), num(value(p.Metrics)))})
	}
	c.Points = strings.TrimSpace(b.String())
	return c
}

// WriteHTML writes the report as one self-contained HTML page: inline CSS and SVG, no script,
// and a Content-Security-Policy that forbids every fetch. html/template escapes every string.
func (r *Report) WriteHTML(w io.Writer) error {
	pg := page{Report: r, MetricNames: metricNames}
	for _, t := range r.Tables {
		if t.Group == GroupCountry && pg.Map == nil {
			pg.Map = newWorldMap(t)
		}
		var labels []string
		var values []int64
		for _, row := range t.Rows {
			if row.Studies == 0 || isUnknown(row) {
				continue // the table lists the unplaced rows apart
			}
			labels = append(labels, row.Name+" ("+keyCell(t.Group, row)+")")
			values = append(values, row.Studies)
		}
		pg.Charts = append(pg.Charts, newBarChart("Accessible studies, "+strings.ToLower(groupTitle(t.Group)), labels, values))
	}
	var labels []string
	var values []int64
	for _, c := range r.Levels {
		labels = append(labels, c.Name)
		values = append(values, c.Systems)
	}
	pg.Levels = newBarChart("Hosts with an open port, by exposure level", labels, values)
	pg.Trends = []lineChart{
		newLineChart("Accessible studies", r.Trend, func(m Metrics) int64 { return m.Studies }),
		newLineChart("Systems accessible", r.Trend, func(m Metrics) int64 { return m.SystemsAccessible }),
	}
	bw := bufio.NewWriter(w)
	if err := htmlTemplate().Execute(bw, pg); err != nil {
		return fmt.Errorf("report: render HTML: %w", err)
	}
	return bw.Flush()
}

// WriteMapSVG writes the world map of a country table (GroupCountry) as the HTML report draws
// it: one inline SVG element, shaded by accessible studies, with a title per country and no
// reference to anything outside it (serve embeds it in its pages). Its classes are the
// report's: none, f0, s1–s4 and bubble. Another grouping's table is an error.
func WriteMapSVG(w io.Writer, t Table) error {
	if t.Group != GroupCountry {
		return fmt.Errorf("report: a map needs the country table, not the %s table", t.Group)
	}
	if err := htmlTemplate().ExecuteTemplate(w, "worldmap", newWorldMap(t)); err != nil {
		return fmt.Errorf("report: render map: %w", err)
	}
	return nil
}
