package report_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/peertest"
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
	bin := requireChromium(t)
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

	b := startChromium(t, bin)
	got := b.load(t, path)
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

	bad2 := b.load(t, tampered)
	joined := strings.Join(bad2.problems, "\n")
	if !strings.Contains(joined, "127.0.0.1:9") || !strings.Contains(joined, "script") {
		t.Errorf("a page with a fetch and a script went unnoticed; problems:\n%s", joined)
	}
	t.Logf("the tampered page was caught:\n%s", joined)
}

func requireChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "chromium not installed (apt-get install chromium)"
	if peertest.Required() {
		t.Fatalf("%s and %s=1", msg, peertest.RequireEnv)
	}
	t.Skip(msg)
	return ""
}

// browser is headless Chromium driven by the DevTools protocol over a pipe: requests on fd 3,
// replies and events on fd 4, each message ending in a NUL byte.
type browser struct {
	w    io.Writer
	msgs chan cdpMsg
	id   int
}

type cdpMsg struct {
	ID        int             `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct{ Message string }
	SessionID string `json:"sessionId,omitempty"`
}

func startChromium(t *testing.T, bin string) *browser {
	t.Helper()
	toChrome, fromTest, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	fromChrome, toTest, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--disable-default-apps", "--remote-debugging-pipe", "--user-data-dir="+t.TempDir(), "about:blank")
	cmd.ExtraFiles = []*os.File{toChrome, toTest} // fd 3: Chromium reads; fd 4: Chromium writes
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	toChrome.Close()
	toTest.Close()
	b := &browser{w: fromTest, msgs: make(chan cdpMsg, 1024)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(b.msgs)
		rd := bufio.NewReaderSize(fromChrome, 1<<20)
		for {
			raw, err := rd.ReadBytes(0)
			if err != nil {
				return
			}
			var m cdpMsg
			if json.Unmarshal(raw[:len(raw)-1], &m) == nil {
				b.msgs <- m
			}
		}
	}()
	t.Cleanup(func() {
		fromTest.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		fromChrome.Close()
		<-done
		if t.Failed() {
			s := stderr.String()
			t.Logf("chromium stderr (end):\n%s", s[max(0, len(s)-4000):])
		}
	})
	return b
}

// call sends a command and waits for its reply; events that arrive meanwhile go to onEvent.
func (b *browser) call(session, method string, params any, onEvent func(cdpMsg)) (json.RawMessage, error) {
	b.id++
	msg, err := json.Marshal(map[string]any{"id": b.id, "method": method, "params": params, "sessionId": session})
	if err != nil {
		return nil, err
	}
	if session == "" {
		msg, _ = json.Marshal(map[string]any{"id": b.id, "method": method, "params": params})
	}
	if _, err := b.w.Write(append(msg, 0)); err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	timeout := time.After(60 * time.Second)
	for {
		select {
		case m, ok := <-b.msgs:
			if !ok {
				return nil, fmt.Errorf("%s: chromium closed the pipe", method)
			}
			if m.ID == b.id {
				if m.Error != nil {
					return nil, fmt.Errorf("%s: %s", method, m.Error.Message)
				}
				return m.Result, nil
			}
			if m.Method != "" && onEvent != nil {
				onEvent(m)
			}
		case <-timeout:
			return nil, fmt.Errorf("%s: no reply in 60 s", method)
		}
	}
}

type loaded struct {
	problems []string // console errors, exceptions, dialogs, requests other than the file
	dom      string   // the page's summary as JSON
}

// load opens a file in a new tab, waits for its load event, and summarizes the DOM.
func (b *browser) load(t *testing.T, path string) loaded {
	t.Helper()
	fileURL := (&url.URL{Scheme: "file", Path: path}).String()
	var out loaded
	loadedEvent := false
	var session string
	onEvent := func(m cdpMsg) {
		if m.SessionID != session {
			return
		}
		var p struct {
			Request struct{ URL string }
			Type    string
			Args    []struct{ Value any }
			Entry   struct{ Level, Text, URL string }
			Message string

			ExceptionDetails struct{ Text string }
		}
		_ = json.Unmarshal(m.Params, &p)
		switch m.Method {
		case "Network.requestWillBeSent":
			if p.Request.URL != fileURL && !strings.HasPrefix(p.Request.URL, "data:") {
				out.problems = append(out.problems, "request: "+p.Request.URL)
			}
		case "Runtime.consoleAPICalled":
			out.problems = append(out.problems, fmt.Sprintf("console.%s: %v (script ran)", p.Type, p.Args))
		case "Runtime.exceptionThrown":
			out.problems = append(out.problems, "exception: "+p.ExceptionDetails.Text)
		case "Log.entryAdded":
			if p.Entry.Level == "error" || p.Entry.Level == "warning" {
				out.problems = append(out.problems, fmt.Sprintf("log %s: %s %s", p.Entry.Level, p.Entry.Text, p.Entry.URL))
			}
		case "Page.javascriptDialogOpening":
			out.problems = append(out.problems, "dialog (script ran): "+p.Message)
		case "Page.loadEventFired":
			loadedEvent = true
		}
	}
	res, err := b.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var target struct{ TargetID string }
	_ = json.Unmarshal(res, &target)
	if res, err = b.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, nil); err != nil {
		t.Fatal(err)
	}
	var att struct{ SessionID string }
	_ = json.Unmarshal(res, &att)
	session = att.SessionID
	for _, m := range []string{"Page.enable", "Network.enable", "Runtime.enable", "Log.enable"} {
		if _, err := b.call(session, m, map[string]any{}, onEvent); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.call(session, "Page.navigate", map[string]any{"url": fileURL}, onEvent); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !loadedEvent {
		if time.Now().After(deadline) {
			t.Fatal("no load event in 60 s")
		}
		// A cheap round trip lets pending events arrive.
		if _, err := b.call(session, "Runtime.evaluate", map[string]any{"expression": "1"}, onEvent); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
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
	res, err = b.call(session, "Runtime.evaluate", map[string]any{"expression": summary, "returnByValue": true}, onEvent)
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Result struct {
			Value string
		}
		ExceptionDetails *struct{ Text string }
	}
	if err := json.Unmarshal(res, &ev); err != nil || ev.ExceptionDetails != nil {
		t.Fatalf("evaluate: %v %v", err, ev.ExceptionDetails)
	}
	out.dom = ev.Result.Value
	if _, err := b.call("", "Target.closeTarget", map[string]any{"targetId": target.TargetID}, onEvent); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return out
}
