package web

import (
	"bufio"
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pacswatch/pacswatch/internal/history"
	"github.com/pacswatch/pacswatch/internal/report"
	"github.com/pacswatch/pacswatch/internal/store"
)

var (
	//go:embed pages.html.tmpl
	pagesSource string
	//go:embed static/style.css
	styleCSS []byte
	//go:embed static/icon.svg
	iconSVG []byte
)

var pages = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("pages").Funcs(template.FuncMap{
		"num":      anyNum,
		"delta":    delta,
		"when":     when,
		"finished": finished,
		"dur":      human,
		"yes":      yes,
		"ports":    ports,
		"scanURL":  scanURL,
		"hostURL":  hostURL,
		"hostsURL": hostsURL,
		"rowURL":   rowURL,
		"title":    groupTitle,
		"keyTitle": func(g report.Grouping) string { return g.String() },
	}).Parse(pagesSource))
})

// crumb is a link of the page's trail.
type crumb struct{ URL, Label string }

// frame is what every page has.
type frame struct {
	Title   string
	Crumbs  []crumb
	Refresh int    // seconds; 0: no refresh
	Notice  string // pending and error pages
}

// runRow is one run in the index.
type runRow struct {
	ID, URL, Name, State string
	Started              time.Time
	Targets              uint64
	Metrics              report.Metrics
}

func newRunRow(ri runInfo) runRow {
	g := ri.run
	state := "unfinished"
	switch {
	case g.Finished():
		state = "finished " + when(g.FinishedAt())
	case g.Key.Shards > 1:
		state = fmt.Sprintf("unfinished: %d of %d shards finished", g.ShardsFinished(), g.Key.Shards)
	}
	s := ri.systems
	return runRow{ID: g.ID(), URL: scanURL(g.ID()), Name: g.Scans[0].Name, State: state, Started: g.Started(), Targets: g.Total(),
		Metrics: report.Metrics{SystemsFound: s.Found, SystemsAccessible: s.Accessible, Studies: s.Studies, Images: s.Images,
			StudiesImageAccess: s.StudiesImageAccess, ImagesAccessible: s.ImagesAccessible}}
}

// render writes a page; a template failure after the first byte cannot change the status.
func (s *Server) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pages().ExecuteTemplate(&buf, name, data); err != nil {
		s.log.Error("render", "page", name, "err", err)
		http.Error(w, "internal error: the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	bw := bufio.NewWriter(w)
	bw.Write(buf.Bytes())
	bw.Flush()
}

// fail answers an error: 404 for what is not in the store, 503 when the server stops, 500
// otherwise (the message is one line; the log has it too).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.notFound(w, r, "no such scan in the store")
	case errors.Is(err, errStopped), r.Context().Err() != nil:
		s.errorPage(w, http.StatusServiceUnavailable, "the server is stopping")
	default:
		s.log.Error("request", "path", capPath(r.URL.Path), "err", err)
		s.errorPage(w, http.StatusInternalServerError, "the store could not be read: "+firstLine(err.Error()))
	}
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request, msg string) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeJSON(w, http.StatusNotFound, apiError{msg})
		return
	}
	s.errorPage(w, http.StatusNotFound, msg)
}

func (s *Server) errorPage(w http.ResponseWriter, status int, msg string) {
	s.render(w, status, "error", frame{Title: http.StatusText(status), Notice: msg})
}

func (s *Server) badRequest(w http.ResponseWriter, msg string) {
	s.errorPage(w, http.StatusBadRequest, msg)
}

// pending answers a page whose report or index is being built: the store's per-system figures
// of the run when they come at once, and a refresh.
func (s *Server) pending(w http.ResponseWriter, r *http.Request, f frame, ri runInfo) {
	f.Refresh, f.Notice = 2, "The figures of this run are being read from the store (a large run takes a few seconds)."
	var row *runRow
	if sys, ok := s.cache.systemsSoon(r.Context(), ri.run, s.cfg.Wait); ok {
		ri.systems = sys
		rr := newRunRow(ri)
		row = &rr
	}
	s.render(w, http.StatusOK, "pending", struct {
		frame
		Run *runRow
	}{f, row})
}

func (s *Server) pageIndex(w http.ResponseWriter, r *http.Request) {
	runs, err := s.cache.runs(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rows := make([]runRow, len(runs))
	for i, ri := range runs {
		rows[i] = newRunRow(ri)
	}
	s.render(w, http.StatusOK, "index", struct {
		frame
		Runs  []runRow
		Trend *trendChart
	}{frame{Title: "Runs"}, rows, newTrend(rows)})
}

// scanReport finds the run of the request's {id} and waits a moment for its report. It answers
// the request itself (pending, error) and returns ok false when the report is not there.
func (s *Server) scanReport(w http.ResponseWriter, r *http.Request, f frame) (runInfo, *report.Report, bool) {
	ri, err := s.cache.run(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return ri, nil, false
	}
	rep, ready, err := s.cache.report(ri.run).wait(r.Context(), s.cfg.Wait)
	switch {
	case err != nil:
		s.fail(w, r, err)
		return ri, nil, false
	case !ready:
		s.pending(w, r, f, ri)
		return ri, nil, false
	}
	return ri, rep, true
}

func (s *Server) pageScan(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f := frame{Title: "Run " + id, Crumbs: []crumb{{scanURL(id), "run " + id}}}
	ri, rep, ok := s.scanReport(w, r, f)
	if !ok {
		return
	}
	f.Title = "Run " + rep.Scan.ID
	f.Crumbs = []crumb{{scanURL(ri.run.ID()), "run " + ri.run.ID()}}
	var m template.HTML
	for _, t := range rep.Tables {
		if t.Group != report.GroupCountry {
			continue
		}
		var buf bytes.Buffer
		if err := report.WriteMapSVG(&buf, t); err != nil {
			s.fail(w, r, err)
			return
		}
		m = template.HTML(buf.String()) // html/template's own output: escaped there
	}
	s.render(w, http.StatusOK, "scan", struct {
		frame
		ID       string
		Report   *report.Report
		Map      template.HTML
		Tables   []report.Table
		HostsURL string
	}{f, ri.run.ID(), rep, m, rep.Tables, hostsURL(ri.run.ID(), "", "")})
}

func (s *Server) pageCountry(w http.ResponseWriter, r *http.Request) {
	id, cc := r.PathValue("id"), r.PathValue("cc")
	f := frame{Title: "Country", Crumbs: []crumb{{scanURL(id), "run " + id}}}
	ri, rep, ok := s.scanReport(w, r, f)
	if !ok {
		return
	}
	var country *report.Row
	var regions []report.Row
	for _, t := range rep.Tables {
		for _, row := range t.Rows {
			switch {
			case t.Group == report.GroupCountry && row.Key == cc:
				country = &row
			case t.Group == report.GroupRegion && countryOf(row.Key) == cc:
				regions = append(regions, row)
			}
		}
	}
	if country == nil {
		s.notFound(w, r, "no such country in this run's report")
		return
	}
	run := ri.run.ID()
	f.Title = country.Name + " (" + country.Key + ")"
	f.Crumbs = []crumb{{scanURL(run), "run " + run}, {countryURL(run, cc), country.Name}}
	s.render(w, http.StatusOK, "country", struct {
		frame
		Report   *report.Report
		Country  *report.Row
		Regions  []report.Row
		HostsURL string
	}{f, rep, country, regions, hostsURL(run, "country", cc)})
}

// listQuery reads a list's place and cursor from the query.
func listQuery(r *http.Request) (place, netip.Addr, error) {
	q := r.URL.Query()
	p := place{country: q.Get("country"), region: q.Get("region")}
	var after netip.Addr
	if a := q.Get("after"); a != "" {
		var err error
		if after, err = netip.ParseAddr(a); err != nil {
			return p, after, errors.New("after= is not an IP address")
		}
	}
	return p, after, nil
}

// hostList waits a moment for the run's index and reads one page of it.
func (s *Server) hostList(r *http.Request, ri runInfo, p place, after netip.Addr, n int) (l *hostListPage, ready bool, err error) {
	x, ready, err := s.cache.index(ri.run).wait(r.Context(), s.cfg.Wait)
	if err != nil || !ready {
		return nil, ready, err
	}
	ips, next := x.page(p, after, n)
	rs, err := rows(r.Context(), s.cfg.Store, ri.run, s.cfg.Geo, ips)
	if err != nil {
		return nil, true, err
	}
	return &hostListPage{Run: ri.run.ID(), Count: x.count(p), Hosts: rs, Next: next, Truncated: x.truncated}, true, nil
}

// hostListPage is one page of a run's systems (the JSON API's answer too).
type hostListPage struct {
	Run       string     `json:"run"`
	Count     int        `json:"count"` // systems of the place in the run
	Hosts     []HostRow  `json:"hosts"`
	Next      netip.Addr `json:"next,omitzero"` // after= of the next page; absent on the last
	Truncated bool       `json:"truncated,omitempty"`
}

func (s *Server) pageHosts(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f := frame{Title: "Systems found", Crumbs: []crumb{{scanURL(id), "run " + id}}}
	ri, err := s.cache.run(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, after, err := listQuery(r)
	if err != nil {
		s.badRequest(w, err.Error())
		return
	}
	l, ready, err := s.hostList(r, ri, p, after, s.cfg.PageSize)
	switch {
	case err != nil:
		s.fail(w, r, err)
		return
	case !ready:
		s.pending(w, r, f, ri)
		return
	}
	run := ri.run.ID()
	f.Crumbs = []crumb{{scanURL(run), "run " + run}}
	label := ""
	switch {
	case p.region != "":
		label = p.region
		if cc := countryOf(p.region); cc != report.Unknown {
			f.Crumbs = append(f.Crumbs, crumb{countryURL(run, cc), cc})
		}
	case p.country != "":
		label = p.country
		f.Crumbs = append(f.Crumbs, crumb{countryURL(run, p.country), p.country})
	}
	if label != "" {
		f.Title = "Systems found in " + label
	}
	next := ""
	if l.Next.IsValid() {
		next = hostsURL(run, "", "") + "?" + pageQuery(p, l.Next)
	}
	s.render(w, http.StatusOK, "hosts", struct {
		frame
		RunID, Place, Next string
		Count, Max         int
		Truncated          bool
		Rows               []HostRow
	}{f, run, label, next, l.Count, maxIndexed, l.Truncated, l.Hosts})
}

func (s *Server) pageHost(w http.ResponseWriter, r *http.Request) {
	ip, err := netip.ParseAddr(r.PathValue("ip"))
	if err != nil {
		s.badRequest(w, "not an IP address")
		return
	}
	h, err := history.HostHistory(r.Context(), s.cfg.Store, ip)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, http.StatusOK, "host", struct {
		frame
		History *history.History
	}{frame{Title: "System " + ip.String(), Crumbs: []crumb{{hostURL(ip), ip.String()}}}, h})
}

func (s *Server) static(contentType string, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Write(body)
	}
}

// URLs of the pages; every dynamic part escaped.
func scanURL(id string) string { return "/scans/" + url.PathEscape(id) }
func countryURL(id, cc string) string {
	return scanURL(id) + "/countries/" + url.PathEscape(cc)
}
func hostURL(ip netip.Addr) string { return "/hosts/" + url.PathEscape(ip.String()) }

// hostsURL is the list of a run's systems, in a country or region when key is "country" or
// "region".
func hostsURL(id, key, value string) string {
	u := scanURL(id) + "/hosts"
	if key != "" {
		u += "?" + url.Values{key: {value}}.Encode()
	}
	return u
}

func pageQuery(p place, after netip.Addr) string {
	v := url.Values{"after": {after.String()}}
	if p.country != "" {
		v.Set("country", p.country)
	}
	if p.region != "" {
		v.Set("region", p.region)
	}
	return v.Encode()
}

// rowURL links a table row to its page: a country to its regions, a region to its systems.
func rowURL(id string, g report.Grouping, row report.Row) string {
	switch g {
	case report.GroupCountry:
		return countryURL(id, row.Key)
	case report.GroupRegion:
		return hostsURL(id, "region", row.Key)
	}
	return ""
}

func groupTitle(g report.Grouping) string {
	switch g {
	case report.GroupCountry:
		return "By country"
	case report.GroupRegion:
		return "By region (state)"
	case report.GroupASN:
		return "By autonomous system"
	}
	return g.String()
}

// num formats a count with thousands separators: 1,234,567.
func num(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
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

// anyNum is num for the integer types the pages hold.
func anyNum(v any) string {
	switch n := v.(type) {
	case int:
		return num(int64(n))
	case int64:
		return num(n)
	case uint64:
		return num(int64(min(n, math.MaxInt64)))
	}
	return fmt.Sprint(v)
}

func delta(n int64) string {
	if n > 0 {
		return "+" + num(n)
	}
	return num(n)
}

func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func finished(t time.Time) string {
	if t.IsZero() {
		return "not finished"
	}
	return "finished " + when(t)
}

// human formats a time to fix: "3 days 4 h", "2 h 5 min", "42 s".
func human(d time.Duration) string {
	d = d.Round(time.Second)
	days, h, m, sec := int64(d/(24*time.Hour)), int64(d/time.Hour%24), int64(d/time.Minute%60), int64(d/time.Second%60)
	switch {
	case days > 0:
		return fmt.Sprintf("%d days %d h", days, h)
	case h > 0:
		return fmt.Sprintf("%d h %d min", h, m)
	case m > 0:
		return fmt.Sprintf("%d min %d s", m, sec)
	}
	return fmt.Sprintf("%d s", sec)
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func ports(ps []uint16) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ", ")
}

// firstLine is an error message's first line, capped.
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return capPath(s)
}
