package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pacswatch/pacswatch/internal/browsertest"
	"github.com/pacswatch/pacswatch/internal/report"
)

// TestHTMLEscapes: server and database strings are escaped by html/template, and the page has
// no script element and forbids every fetch.
func TestHTMLEscapes(t *testing.T) {
	st := fixtureStore(t)
	g, a := fixtureGeo(t)
	r, err := report.Build(context.Background(), st, report.Options{Geo: g, ASN: a})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, bad := range []string{"<script", "<img", "<b>final", "onerror=alert(2)>", "http://", "https://"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	for _, want := range []string{
		"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;script&gt;alert(1)<", "&lt;img src=x onerror=alert(2)&gt;",
		"AT&amp;T &lt;Services&gt;", `content="default-src 'none';`, `class="map"`, `class="bars"`, `class="trend"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if n := len(page); n > 400_000 {
		t.Errorf("page is %d bytes, want a few hundred KB at most", n)
	}
}

// TestHTMLInChromium opens the HTML report in headless Chromium through the DevTools protocol:
// no console error, no request other than the file itself, tables and charts rendered, and the
// hostile AE title, version name and region name shown as text.
func TestHTMLInChromium(t *testing.T) {
	bin := browsertest.Require(t)
	st := fixtureStore(t)
	g, a := fixtureGeo(t)
	r, err := report.Build(context.Background(), st, report.Options{Geo: g, ASN: a})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "report.html")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// The same page with a fetch and a script added: the checks below must catch both, or
	// they prove nothing.
	tampered := filepath.Join(dir, "tampered.html")
	bad := strings.Replace(buf.String(), "</body>", `<img src="http://127.0.0.1:9/x.png"><script>console.error("boom")</script></body>`, 1)
	if err := os.WriteFile(tampered, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}

	b := browsertest.Start(t, bin)
	got := load(t, b, path)
	if len(got.problems) > 0 {
		t.Errorf("the report had problems in Chromium:\n%s", strings.Join(got.problems, "\n"))
	}
	var dom struct {
		Tables, Rows, MapPaths, Bubbles, Bars, Lines, Scripts, Images int
		MapWidth, BarsWidth                                           float64
		Text                                                          string
	}
	if err := json.Unmarshal([]byte(got.dom), &dom); err != nil {
		t.Fatalf("DOM summary %q: %v", got.dom, err)
	}
	if dom.Tables < 7 || dom.Rows < 30 {
		t.Errorf("%d tables, %d rows; want the summary, group and mix tables", dom.Tables, dom.Rows)
	}
	if dom.MapPaths < 200 || dom.MapWidth < 500 || dom.Bubbles < 3 {
		t.Errorf("map: %d country paths, %d bubbles, %.0f px wide; want a rendered world map", dom.MapPaths, dom.Bubbles, dom.MapWidth)
	}
	if dom.Bars < 10 || dom.BarsWidth < 100 || dom.Lines != 2 {
		t.Errorf("charts: %d bars (%.0f px), %d trend lines; want bar charts and two trend lines", dom.Bars, dom.BarsWidth, dom.Lines)
	}
	if dom.Scripts != 0 || dom.Images != 0 {
		t.Errorf("%d script and %d img elements: a server or database string became markup", dom.Scripts, dom.Images)
	}
	for _, s := range []string{"<script>alert(1)</script>", "<script>alert(1)", "<img src=x onerror=alert(2)>|*x*", "AT&T <Services>", "<b>final</b>"} {
		if !strings.Contains(dom.Text, s) {
			t.Errorf("page text lacks %q, shown as text", s)
		}
	}

	bad2 := load(t, b, tampered)
	joined := strings.Join(bad2.problems, "\n")
	if !strings.Contains(joined, "127.0.0.1:9") || !strings.Contains(joined, "script") {
		t.Errorf("a page with a fetch and a script went unnoticed; problems:\n%s", joined)
	}
	t.Logf("the tampered page was caught:\n%s", joined)
}

// loaded is what load saw of a page.
type loaded struct {
	problems []string // console errors, exceptions, dialogs, requests other than the file
	dom      string   // the page's summary as JSON
}

// load opens a file in a new tab of b at 1280 px and summarizes its DOM.
func load(t *testing.T, b *browsertest.Browser, path string) loaded {
	t.Helper()
	p := b.Load(t, path, 1280, 900)
	const summary = `JSON.stringify({
		Tables: document.querySelectorAll("table").length,
		Rows: document.querySelectorAll("tbody tr").length,
		MapPaths: document.querySelectorAll("svg.map path").length,
		Bubbles: document.querySelectorAll("svg.map circle").length,
		MapWidth: (document.querySelector("svg.map") || {getBoundingClientRect: () => ({width: 0})}).getBoundingClientRect().width,
		Bars: document.querySelectorAll("svg.bars rect.bar").length,
		BarsWidth: Math.max(0, ...Array.from(document.querySelectorAll("svg.bars rect.bar"), r => r.getBoundingClientRect().width)),
		Lines: document.querySelectorAll("svg.trend polyline").length,
		Scripts: document.scripts.length,
		Images: document.images.length,
		Text: document.body.innerText + " " + Array.from(document.querySelectorAll("title"), e => e.textContent).join(" "),
	})`
	out := loaded{problems: p.Problems, dom: p.Eval(t, summary)}
	p.Close(t)
	return out
}
