package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pacswatch/pacswatch/internal/browsertest"
)

// layoutCheck is evaluated in a page: how far the page overflows its window, the group tables
// wider than their box, and the words of names and table cells that a line break cuts (not in
// cells of server strings, class srv, which may break anywhere rather than widen the page).
const layoutCheck = `JSON.stringify((() => {
	const broken = [];
	for (const el of document.querySelectorAll("td:not(.srv), th, .name, li, p")) {
		const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
		for (let n = walker.nextNode(); n; n = walker.nextNode()) {
			const re = /[^\s\-]+/g; // a break after a hyphen is a line-breaking opportunity, as in print
			for (let m = re.exec(n.data); m; m = re.exec(n.data)) {
				const r = document.createRange();
				r.setStart(n, m.index);
				r.setEnd(n, m.index + m[0].length);
				const tops = new Set(Array.from(r.getClientRects(), q => Math.round(q.top)));
				if (tops.size > 1) broken.push(m[0]);
			}
		}
	}
	const wide = [];
	for (const t of document.querySelectorAll("table.groups")) {
		const box = t.parentElement.getBoundingClientRect().width;
		if (t.getBoundingClientRect().width > box + 1) wide.push(t.rows.length ? t.rows[0].innerText.slice(0, 60) : "table");
	}
	return {Overflow: document.documentElement.scrollWidth - window.innerWidth, Wide: wide, Broken: Array.from(new Set(broken)),
		Tables: document.querySelectorAll("table.groups").length};
})())`

type layout struct {
	Overflow int
	Wide     []string
	Broken   []string
	Tables   int
}

func checkLayout(t *testing.T, p *browsertest.Page) layout {
	t.Helper()
	var l layout
	if err := json.Unmarshal([]byte(p.Eval(t, layoutCheck)), &l); err != nil {
		t.Fatal(err)
	}
	return l
}

// TestDemoReportInChromium opens the demo's report in headless Chromium at 1400 and 800 px: no
// problem, no horizontal overflow, every group table within the page, no word of a name cut by
// a line break. With PACSWATCH_SCREENSHOTS=DIR it writes the whole page at each width,
// DIR/demo-report-1400.png and DIR/demo-report-800.png, and the first screen at 1400 px,
// DIR/demo-report.png (docs/ holds the ones made so).
func TestDemoReportInChromium(t *testing.T) {
	bin := browsertest.Require(t)
	dir := t.TempDir()
	_, stderr, code := pacswatchIn(t, dir, "", "demo")
	if code != 0 {
		t.Fatalf("demo exited %d: %s", code, stderr)
	}
	b := browsertest.Start(t, bin)

	// The check catches what it looks for: a name squeezed to break, a table wider than the page.
	bad := filepath.Join(dir, "bad.html")
	if err := os.WriteFile(bad, []byte(`<!DOCTYPE html><html><body><table class="groups"><tr><td style="width:30px;max-width:30px;overflow-wrap:anywhere">Maharashtra</td><td style="min-width:2000px">x</td></tr></table></body></html>`), 0o644); err != nil {
		t.Fatal(err)
	}
	p := b.Load(t, bad, 800, 600)
	if l := checkLayout(t, p); l.Overflow <= 0 || len(l.Broken) == 0 {
		t.Errorf("the check missed a broken page: %+v", l)
	}
	p.Close(t)

	report := filepath.Join(dir, "demo-report.html")
	for _, width := range []int{1400, 800} {
		p := b.Load(t, report, width, 1000)
		if len(p.Problems) > 0 {
			t.Errorf("%d px: problems:\n%s", width, strings.Join(p.Problems, "\n"))
		}
		l := checkLayout(t, p)
		if l.Overflow > 0 || len(l.Wide) > 0 || len(l.Broken) > 0 || l.Tables < 2 {
			t.Errorf("%d px: page overflows by %d px; tables too wide: %v; words cut: %v; %d group tables", width, l.Overflow, l.Wide, l.Broken, l.Tables)
		}
		if out := os.Getenv("PACSWATCH_SCREENSHOTS"); out != "" {
			shots := map[string]float64{fmt.Sprintf("demo-report-%d.png", width): 0}
			if width == 1400 {
				shots["demo-report.png"] = 1500 // the README's: the first screen
			}
			for name, height := range shots {
				if err := os.WriteFile(filepath.Join(out, name), p.Screenshot(t, height), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		p.Close(t)
	}
}
