package report_test

import (
	"bytes"
	"context"
	"html"
	"regexp"
	"strings"
	"testing"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	gmhtml "github.com/yuin/goldmark/renderer/html"

	"github.com/pacswatch/pacswatch/internal/report"
)

// renderGFM renders Markdown as GitHub does (tables, strike-through, task lists, autolinks of
// bare URLs, www. and e-mail addresses), with raw HTML let through so that any would show.
func renderGFM(t *testing.T, md []byte) string {
	t.Helper()
	gm := goldmark.New(goldmark.WithExtensions(extension.GFM, extension.Footnote),
		goldmark.WithRendererOptions(gmhtml.WithUnsafe()))
	var out bytes.Buffer
	if err := gm.Convert(md, &out); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

var tagName = regexp.MustCompile(`<(/?)([a-zA-Z][a-zA-Z0-9]*)`)

// reportTags are the elements a report's Markdown renders to; anything else came from a string.
var reportTags = map[string]bool{"h1": true, "h2": true, "p": true, "ul": true, "li": true, "strong": true,
	"table": true, "thead": true, "tbody": true, "tr": true, "th": true, "td": true}

// TestMarkdownNoLinks: server strings that look like links, images, autolinks or HTML stay
// text when the Markdown report is rendered by a GFM renderer with autolinks: no <a>, no
// <img>, no raw HTML, and each string shows as it was.
func TestMarkdownNoLinks(t *testing.T) {
	// The product field is set by the probe (probe.Result.Sanitize keeps it), the version name
	// and the called AE title come from the server: AE titles are 16 characters at most.
	for _, tc := range []struct {
		name, ae, version, product string
	}{
		{"url", "ANY-SCP", "https://evil.example/login", "Orthanc"},
		{"inline link", "[x](https://e.x)", "[click](https://evil.example)", "Orthanc"},
		{"image", "![x](y)", "![x](https://evil.example/p.png)", "<img src=x>"},
		{"www", "www.evil.example", "see www.evil.example/login", "WWW.EVIL.EXAMPLE"},
		{"e-mail", "a@evil.example", "mail admin@evil.example now", "mailto:x@evil.example"},
		{"schemes", "ftp://e.x", "http://127.0.0.1:8042/app", "HTTPS://EVIL.EXAMPLE"},
		{"html", "<script>", "<script>alert(1)</script>", "<b onclick=x>"},
		{"autolink", "<https://e.x>", "<https://evil.example>", "<a@evil.example>"},
		{"reference", "[x]", "[x]: https://evil.example", "[x][1]"},
		{"entity", "&#60;b&#62;", "&lt;b&gt; &#x3C;i&#x3E;", "&amp;"},
		{"footnote", "[^1]", "x[^1]", "[^1]: https://evil.example"},
		{"emphasis", "*a* _b_", "**bold** ~~gone~~", "`code` $x$"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "scan " + tc.version
			st := hostileStore(name, tc.ae, tc.version, tc.product)
			r, err := report.Build(context.Background(), st, report.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var md bytes.Buffer
			if err := r.WriteMarkdown(&md); err != nil {
				t.Fatal(err)
			}
			out := renderGFM(t, md.Bytes())
			for _, m := range tagName.FindAllStringSubmatch(out, -1) {
				if !reportTags[strings.ToLower(m[2])] {
					t.Errorf("rendered Markdown has a <%s%s> element:\n%s", m[1], m[2], out)
					break
				}
			}
			if strings.Contains(out, "raw HTML omitted") {
				t.Errorf("a string became raw HTML:\n%s", out)
			}
			stored := st.stored("s1")[0].DICOM
			text := html.UnescapeString(out)
			for _, s := range []string{stored.CalledAE, stored.ImplementationVersion, stored.Product, r.Scan.Name} {
				if !strings.Contains(text, s) {
					t.Errorf("rendered Markdown does not show %q as text:\n%s", s, out)
				}
			}
		})
	}
}
