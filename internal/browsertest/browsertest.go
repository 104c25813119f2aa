// Package browsertest drives headless Chromium for tests, through the DevTools protocol over a
// pipe (--remote-debugging-pipe: requests on fd 3, replies and events on fd 4, each message
// ending in a NUL byte), with no dependency: it opens local files at a given window width, records
// every problem a page shows (console messages, exceptions, dialogs, requests other than the file
// itself), evaluates expressions and takes full-page screenshots.
//
// Require finds the browser: $PACSWATCH_CHROMIUM (any Chromium, e.g. one unpacked from npm's
// @sparticuz/chromium, behind a wrapper that sets its libraries), else Debian's chromium on PATH;
// without one a test fails under PACSWATCH_REQUIRE_PEERS=1 (CI) and is skipped otherwise.
package browsertest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/peertest"
)

// Env names the Chromium to use instead of the one on PATH.
const Env = "PACSWATCH_CHROMIUM"

// Require returns the Chromium to drive, or ends the test as the package comment says.
func Require(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(Env); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "chromium not installed (apt-get install chromium, or set " + Env + ")"
	if peertest.Required() {
		t.Fatalf("%s and %s=1", msg, peertest.RequireEnv)
	}
	t.Skip(msg)
	return ""
}

// Browser is one headless Chromium.
type Browser struct {
	w    io.Writer
	msgs chan message
	id   int
}

type message struct {
	ID        int             `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct{ Message string }
	SessionID string `json:"sessionId,omitempty"`
}

// Start starts Chromium bin for the length of the test.
func Start(t testing.TB, bin string) *Browser {
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
		"--disable-default-apps", "--hide-scrollbars", "--font-render-hinting=none", "--remote-debugging-pipe",
		"--user-data-dir="+t.TempDir(), "about:blank")
	cmd.ExtraFiles = []*os.File{toChrome, toTest} // fd 3: Chromium reads; fd 4: Chromium writes
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	toChrome.Close()
	toTest.Close()
	b := &Browser{w: fromTest, msgs: make(chan message, 1024)}
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
			var m message
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
func (b *Browser) call(session, method string, params any, onEvent func(message)) (json.RawMessage, error) {
	b.id++
	req := map[string]any{"id": b.id, "method": method, "params": params}
	if session != "" {
		req["sessionId"] = session
	}
	msg, err := json.Marshal(req)
	if err != nil {
		return nil, err
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

// Page is a file loaded in a tab of its own.
type Page struct {
	b        *Browser
	target   string
	session  string
	onEvent  func(message)
	Problems []string // console messages, exceptions, dialogs, requests other than the file, log errors and warnings
}

// Load opens a local file in a new tab whose window is width × height CSS pixels, and waits for
// its load event.
func (b *Browser) Load(t testing.TB, path string, width, height int) *Page {
	t.Helper()
	fileURL := (&url.URL{Scheme: "file", Path: path}).String()
	p := &Page{b: b}
	loaded := false
	p.onEvent = func(m message) {
		if m.SessionID != p.session {
			return
		}
		var ev struct {
			Request struct{ URL string }
			Type    string
			Args    []struct{ Value any }
			Entry   struct{ Level, Text, URL string }
			Message string

			ExceptionDetails struct{ Text string }
		}
		_ = json.Unmarshal(m.Params, &ev)
		switch m.Method {
		case "Network.requestWillBeSent":
			if ev.Request.URL != fileURL && !strings.HasPrefix(ev.Request.URL, "data:") {
				p.Problems = append(p.Problems, "request: "+ev.Request.URL)
			}
		case "Runtime.consoleAPICalled":
			p.Problems = append(p.Problems, fmt.Sprintf("console.%s: %v (script ran)", ev.Type, ev.Args))
		case "Runtime.exceptionThrown":
			p.Problems = append(p.Problems, "exception: "+ev.ExceptionDetails.Text)
		case "Log.entryAdded":
			if ev.Entry.Level == "error" || ev.Entry.Level == "warning" {
				p.Problems = append(p.Problems, fmt.Sprintf("log %s: %s %s", ev.Entry.Level, ev.Entry.Text, ev.Entry.URL))
			}
		case "Page.javascriptDialogOpening":
			p.Problems = append(p.Problems, "dialog (script ran): "+ev.Message)
		case "Page.loadEventFired":
			loaded = true
		}
	}
	res, err := b.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var target struct{ TargetID string }
	_ = json.Unmarshal(res, &target)
	p.target = target.TargetID
	if res, err = b.call("", "Target.attachToTarget", map[string]any{"targetId": p.target, "flatten": true}, nil); err != nil {
		t.Fatal(err)
	}
	var att struct{ SessionID string }
	_ = json.Unmarshal(res, &att)
	p.session = att.SessionID
	for _, m := range []string{"Page.enable", "Network.enable", "Runtime.enable", "Log.enable"} {
		p.do(t, m, map[string]any{})
	}
	p.do(t, "Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false})
	p.do(t, "Page.navigate", map[string]any{"url": fileURL})
	deadline := time.Now().Add(60 * time.Second)
	for !loaded {
		if time.Now().After(deadline) {
			t.Fatal("no load event in 60 s")
		}
		p.do(t, "Runtime.evaluate", map[string]any{"expression": "1"}) // a round trip lets events arrive
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

func (p *Page) do(t testing.TB, method string, params any) json.RawMessage {
	t.Helper()
	res, err := p.b.call(p.session, method, params, p.onEvent)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Eval evaluates a JavaScript expression whose value is a string (JSON.stringify(...)) in the
// page, and returns it.
func (p *Page) Eval(t testing.TB, expr string) string {
	t.Helper()
	res := p.do(t, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true})
	var ev struct {
		Result           struct{ Value string }
		ExceptionDetails *struct{ Text string }
	}
	if err := json.Unmarshal(res, &ev); err != nil || ev.ExceptionDetails != nil {
		t.Fatalf("evaluate: %v %v", err, ev.ExceptionDetails)
	}
	return ev.Result.Value
}

// Screenshot returns a PNG of the page at its window's width, from its top down to maxHeight
// CSS pixels (0: the whole page).
func (p *Page) Screenshot(t testing.TB, maxHeight float64) []byte {
	t.Helper()
	var m struct {
		CSSContentSize struct{ Width, Height float64 }
	}
	if err := json.Unmarshal(p.do(t, "Page.getLayoutMetrics", map[string]any{}), &m); err != nil {
		t.Fatal(err)
	}
	var vp struct{ Width float64 }
	if err := json.Unmarshal([]byte(p.Eval(t, `JSON.stringify({Width: window.innerWidth})`)), &vp); err != nil {
		t.Fatal(err)
	}
	height := m.CSSContentSize.Height
	if maxHeight > 0 {
		height = min(height, maxHeight)
	}
	res := p.do(t, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true,
		"clip": map[string]any{"x": 0, "y": 0, "width": vp.Width, "height": height, "scale": 1}})
	var shot struct{ Data string }
	if err := json.Unmarshal(res, &shot); err != nil {
		t.Fatal(err)
	}
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		t.Fatal(err)
	}
	return png
}

// Close closes the page's tab.
func (p *Page) Close(t testing.TB) {
	t.Helper()
	if _, err := p.b.call("", "Target.closeTarget", map[string]any{"targetId": p.target}, p.onEvent); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
}
