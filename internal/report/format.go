package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Format is a report's output format.
type Format uint8

const (
	FormatMarkdown Format = iota // GitHub-flavoured Markdown tables
	FormatHTML                   // one self-contained page
	FormatCSV                    // the group tables, one row per group
	FormatJSON                   // the Report, indented
)

func (f Format) String() string {
	switch f {
	case FormatMarkdown:
		return "md"
	case FormatHTML:
		return "html"
	case FormatCSV:
		return "csv"
	case FormatJSON:
		return "json"
	}
	return fmt.Sprintf("Format(%d)", uint8(f))
}

// ParseFormat parses html, md (or markdown), csv and json.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(s) {
	case "html", "htm":
		return FormatHTML, nil
	case "md", "markdown":
		return FormatMarkdown, nil
	case "csv":
		return FormatCSV, nil
	case "json":
		return FormatJSON, nil
	}
	return 0, fmt.Errorf("report: format %s is not html, md, csv or json", quote(s))
}

// FormatOf returns the format a file name's extension names (report.html: FormatHTML).
func FormatOf(path string) (Format, bool) {
	ext := strings.TrimPrefix(filepath.Ext(path), ".")
	if ext == "" {
		return 0, false
	}
	f, err := ParseFormat(ext)
	return f, err == nil
}

// Write renders the report in format f.
func (r *Report) Write(w io.Writer, f Format) error {
	switch f {
	case FormatMarkdown:
		return r.WriteMarkdown(w)
	case FormatHTML:
		return r.WriteHTML(w)
	case FormatCSV:
		return r.WriteCSV(w)
	case FormatJSON:
		return r.WriteJSON(w)
	}
	return fmt.Errorf("report: unknown format %d", f)
}

// WriteJSON writes the report as indented JSON; <, > and & in strings are \u-escaped.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(true)
	return enc.Encode(r)
}

// csvHeader is the CSV format's first line.
var csvHeader = []string{
	"group", "key", "name", "country",
	"systems_found", "systems_accessible", "studies", "images", "studies_with_image_access", "images_accessible",
	"change_systems_found", "change_systems_accessible", "change_studies", "change_images", "change_studies_with_image_access", "change_images_accessible",
	"trend",
	"capped_systems", "capped_studies_at_least", "capped_images_at_least", "implausible_systems", "honeypot_systems",
	"web_systems_accessible", "web_studies", "web_images",
}

// WriteCSV writes the total and every group table, one row per group (RFC 4180). Change
// columns are empty without a compared scan. Text cells that a spreadsheet would take for a
// formula are prefixed with an apostrophe.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	rec := func(group string, row Row) []string {
		out := []string{group, csvText(row.Key), csvText(row.Name), csvText(row.Country)}
		out = append(out, metricCells(row.Metrics)...)
		if row.Change != nil {
			out = append(out, metricCells(*row.Change)...)
		} else {
			out = append(out, "", "", "", "", "", "")
		}
		out = append(out, row.Trend.String())
		return append(out, apartCells(row.Apart)...)
	}
	if err := cw.Write(rec("total", r.Total)); err != nil {
		return err
	}
	for _, t := range r.Tables {
		for _, row := range t.Rows {
			if err := cw.Write(rec(t.Group.String(), row)); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

func metricCells(m Metrics) []string {
	return []string{
		strconv.FormatInt(m.SystemsFound, 10), strconv.FormatInt(m.SystemsAccessible, 10),
		strconv.FormatInt(m.Studies, 10), strconv.FormatInt(m.Images, 10),
		strconv.FormatInt(m.StudiesImageAccess, 10), strconv.FormatInt(m.ImagesAccessible, 10),
	}
}

func apartCells(a Apart) []string {
	var out []string
	for _, v := range apartValues(a) {
		out = append(out, strconv.FormatInt(v, 10))
	}
	return out
}

// apartNames are the kept-apart columns of the Markdown tables, as apartValues orders them.
var apartNames = []string{"capped systems", "studies, at least", "images, at least", "implausible", "honeypots", "web only: systems", "web studies", "web images"}

func apartValues(a Apart) []int64 {
	return []int64{a.CappedSystems, a.CappedStudies, a.CappedImages, a.ImplausibleSystems, a.HoneypotSystems, a.WebSystems, a.WebStudies, a.WebImages}
}

// csvText defuses spreadsheet formulas (OWASP "CSV injection").
func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// mdEscape makes s literal text inside a Markdown line that does not start with it (a table
// cell, a list item's text): HTML is entity-escaped and the inline punctuation of CommonMark
// and GitHub (emphasis, code, links, cells, strike-through, math) backslash-escaped, so no
// server string can open a tag, a link or a new cell.
//
// Autolinks are defused too: GFM's extension (and markdown-it's linkify) turn bare URLs,
// "www." and e-mail addresses into links. Every ':' and '@' and every '.' before a letter (a
// domain's dots; "5.22" stays as it is) is backslash-escaped: CommonMark renders an escaped
// punctuation character as itself, but an autolinker no longer sees "https://", "www.x",
// "a@b.c" or "evil.example" in the source (goldmark, cmark-gfm) or in one text node
// (markdown-it).
func mdEscape(s string) string {
	var b strings.Builder
	for i, c := range s {
		switch c {
		case ':', '@':
			b.WriteByte('\\')
			b.WriteRune(c)
		case '.':
			if i+1 < len(s) && isASCIILetter(s[i+1]) {
				b.WriteByte('\\')
			}
			b.WriteByte('.')
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString("&quot;")
		case '\\', '`', '*', '_', '[', ']', '|', '~', '$':
			b.WriteByte('\\')
			b.WriteRune(c)
		case '\n', '\r', '\t':
			b.WriteByte(' ')
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

func isASCIILetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// num formats a count with thousands separators: 69789685 → "69,789,685".
func num(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// delta formats a change with its sign: "+1,204", "-3", "0".
func delta(n int64) string {
	if n > 0 {
		return "+" + num(n)
	}
	return num(n)
}

func percent(part, whole int64) string {
	if whole == 0 {
		return "0 %"
	}
	return strconv.FormatFloat(float64(part)*100/float64(whole), 'f', 1, 64) + " %"
}

func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// finished says when a scan finished, or that it has not.
func finished(t time.Time) string {
	if t.IsZero() {
		return "not finished"
	}
	return "finished " + when(t)
}

// groupTitle and the column names are shared by the Markdown and HTML forms.
func groupTitle(g Grouping) string {
	switch g {
	case GroupCountry:
		return "By country"
	case GroupRegion:
		return "By region (state)"
	case GroupASN:
		return "By autonomous system"
	}
	return g.String()
}

func groupColumns(g Grouping) (key, name string) {
	switch g {
	case GroupCountry:
		return "code", "country"
	case GroupRegion:
		return "country", "region"
	case GroupASN:
		return "AS", "organization"
	}
	return "key", "name"
}

// keyCell is what the first column of a group row shows: the code, or for a region its country.
func keyCell(g Grouping, row Row) string {
	if g == GroupRegion {
		if row.Country != "" {
			return row.Country
		}
		return Unknown
	}
	return row.Key
}

var metricNames = []string{"systems found", "systems accessible", "studies (data troves)", "images", "studies with image access", "images accessible"}

func metricValues(m Metrics) []int64 {
	return []int64{m.SystemsFound, m.SystemsAccessible, m.Studies, m.Images, m.StudiesImageAccess, m.ImagesAccessible}
}

func scanLine(s ScanInfo) string {
	name := ""
	if s.Name != "" {
		name = " “" + mdEscape(s.Name) + "”"
	}
	return fmt.Sprintf("%s%s, started %s, %s%s; %s targets, %s addresses probed",
		mdEscape(s.ID), name, when(s.Started), finished(s.Finished), shards(s.Shards, s.ShardsFinished),
		num(int64(min(s.Targets, 1<<62))), num(s.Hosts))
}

// shards says how many shards a sharded scan has and how many finished; "" for an unsharded one.
func shards(n, finished uint64) string {
	if n < 2 {
		return ""
	}
	return fmt.Sprintf(" (%d shards, %d finished)", n, finished)
}

func caveatLines(c Caveats) []string {
	return []string{
		"Accessible systems whose study count is a lower bound (the server capped its answers): " + num(c.StudiesLowerBound) + ".",
		"Accessible systems whose image count is estimated from a sample: " + num(c.ImagesEstimated) + ".",
		"Accessible systems whose images could not be counted (counted as 0): " + num(c.ImagesUnknown) + ".",
		"Hosts flagged as honeypots, left out of every figure: " + num(c.Honeypots) + ".",
		"Hosts whose counts are kept apart (capped, implausible, honeypot), named below: " + num(int64(len(c.Hosts))+c.HostsNotListed) + ".",
	}
}
