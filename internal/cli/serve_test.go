package cli_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/pacswatch/pacswatch/internal/dicom/dicomtest"
	"github.com/pacswatch/pacswatch/internal/geo"
	"github.com/pacswatch/pacswatch/internal/geo/geotest"
	"github.com/pacswatch/pacswatch/internal/peertest"
	"github.com/pacswatch/pacswatch/internal/report"
	"github.com/pacswatch/pacswatch/internal/sim"
)

// hostileVersion is the implementation version name of a server in the browser test's store:
// markup, the 16 characters the field holds.
const hostileVersion = "<script>alert(1)"

// dashboardFixture scans a small simulated fleet (and one server whose version name is markup)
// twice, changing the fleet in between, and writes a city database that places every address:
// the store and the database the dashboard and the report read.
func dashboardFixture(t *testing.T) (db, city string) {
	t.Helper()
	dir := t.TempDir()
	db, city = filepath.Join(dir, "dash.db"), filepath.Join(dir, "city.mmdb")
	mix, err := sim.ParseMix("open=2,query-only=1,retrieve=1,calling=1")
	if err != nil {
		t.Fatal(err)
	}
	cfg := sim.Config{Hosts: 16, Seed: 16, CIDR: netip.MustParsePrefix("127.31.0.0/26"), Ports: []uint16{21112, 24242}, Mix: mix,
		Groups: []sim.Group{{Name: "IN/Maharashtra", Hosts: 6, Studies: 300}, {Name: "IN/Karnataka", Hosts: 4, Studies: 120},
			{Name: "TR", Hosts: 3, Studies: 500}, {Name: "US", Hosts: 3, Studies: 200}}}
	fleet, err := sim.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fleet.Close() })
	hostile := dicomtest.Start(t, dicomtest.Config{ImplementationVersionName: hostileVersion, Tree: dicomtest.NewTree(5, 4), ComputedCounts: true})

	places := map[netip.Addr]geo.Location{netip.MustParseAddrPort(hostile.Addr()).Addr(): {Country: "IN", CountryName: "India", Region: "Karnataka"}}
	remember := func() {
		for _, s := range fleet.Specs() {
			cc, region, _ := strings.Cut(s.Group, "/")
			places[s.Addr.Addr()] = geo.Location{Country: cc, CountryName: geo.CountryName(cc), Region: region}
		}
	}
	scan := func(name string) {
		_, stderr, code := pacswatch(t, "", "scan", cfg.CIDR.String(), hostile.Addr(), "-p", "21112,24242", "--db", db, "--name", name,
			"--rate", "0", "--timeout", "2s", "--seed", "16", "-q")
		if code != 0 && code != 1 {
			t.Fatalf("scan %s exited %d: %s", name, code, stderr)
		}
	}
	remember()
	scan("first")
	grown, closed := 0, 0
	for _, s := range fleet.Specs() {
		switch {
		case s.Studies > 0 && grown == 0 && strings.HasPrefix(s.Group, "IN/"):
			if _, err := fleet.Resize(s.Addr, s.Studies*3); err != nil {
				t.Fatal(err)
			}
			grown++
		case s.Studies > 0 && closed == 0 && s.Group == "US":
			if err := fleet.Remove(s.Addr); err != nil {
				t.Fatal(err)
			}
			closed++
		}
	}
	if _, err := fleet.Add(sim.Spec{Personality: sim.PersonalityOpen, Studies: 40, Group: "IN/Karnataka"}); err != nil {
		t.Fatal(err)
	}
	remember()
	scan("second")
	var ps []geotest.Place
	for a, loc := range places {
		ps = append(ps, geotest.Place{Prefix: netip.PrefixFrom(a, 32), Location: loc})
	}
	if err := geotest.WriteCity(city, "GeoLite2-City", geo.LayoutMaxMind, ps); err != nil {
		t.Fatal(err)
	}
	return db, city
}

// startServe runs `pacswatch serve` on a loopback port and returns its base URL, and what it
// printed on stderr so far.
func startServe(t *testing.T, args ...string) (string, func() string) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve exited with %v after SIGINT", err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Error("serve still running 10 s after SIGINT")
		}
	})
	line := make(chan string, 1)
	var mu sync.Mutex
	var all strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		first := true
		for sc.Scan() {
			mu.Lock()
			all.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if first {
				line <- sc.Text()
				first = false
			}
		}
		if first {
			line <- ""
		}
	}()
	logs := func() string {
		mu.Lock()
		defer mu.Unlock()
		return all.String()
	}
	select {
	case l := <-line:
		m := regexp.MustCompile(`^serve: (http://127\.0\.0\.1:[0-9]+)/ `).FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("serve did not start: %q", l)
		}
		return m[1], logs
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start in 30 s")
	}
	return "", logs
}

// requireChromium returns the Chromium to drive: $PACSWATCH_CHROMIUM, else Debian's chromium on
// PATH. Without one the test fails under PACSWATCH_REQUIRE_PEERS=1 and is skipped otherwise.
func requireChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PACSWATCH_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "chromium not installed (apt-get install chromium, or set PACSWATCH_CHROMIUM)"
	if peertest.Required() {
		t.Fatalf("%s and %s=1", msg, peertest.RequireEnv)
	}
	t.Skip(msg)
	return ""
}

// browser is headless Chromium through chromedp, recording every request the page makes and
// every console error.
type browser struct {
	ctx      context.Context
	mu       sync.Mutex // protects the fields below
	requests []string
	problems []string
}

func newBrowser(t *testing.T, bin string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-pings", true), chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	b := &browser{ctx: ctx}
	err := chromedp.Listen(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			b.requests = append(b.requests, ev.Request.URL)
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning {
				b.problems = append(b.problems, fmt.Sprintf("console %s: %v", ev.Type, ev.Args))
			}
		case *runtime.EventExceptionThrown:
			b.problems = append(b.problems, "exception: "+ev.ExceptionDetails.Text)
		case *network.EventLoadingFailed:
			b.problems = append(b.problems, "loading failed: "+ev.ErrorText)
		case *network.EventResponseReceived:
			if ev.Response.Status >= 400 {
				b.problems = append(b.problems, fmt.Sprintf("%s answered %d", ev.Response.URL, int(ev.Response.Status)))
			}
		}
	})
	if err != nil {
		t.Fatalf("start chromium %s: %v", bin, err)
	}
	return b
}

// numbers reads the data-m cells of the element matched by sel, by metric name.
func (b *browser) numbers(t *testing.T, sel string) map[string]int64 {
	t.Helper()
	js := `(() => { const o = {}; document.querySelectorAll(` + strconv.Quote(sel+" [data-m]") + `).forEach(e => o[e.dataset.m] = e.textContent); return o; })()`
	cells, err := chromedp.Run(b.ctx, chromedp.Evaluate[map[string]string](js))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for k, v := range cells {
		n, err := strconv.ParseInt(strings.ReplaceAll(v, ",", ""), 10, 64)
		if err != nil {
			t.Fatalf("%s %s = %q, not a number", sel, k, v)
		}
		out[k] = n
	}
	return out
}

func wantMetrics(t *testing.T, what string, got map[string]int64, m report.Metrics) {
	t.Helper()
	want := map[string]int64{"systems_found": m.SystemsFound, "systems_accessible": m.SystemsAccessible, "studies": m.Studies,
		"images": m.Images, "studies_with_image_access": m.StudiesImageAccess, "images_accessible": m.ImagesAccessible}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s: %s shows %d (present %v), report --format json says %d", what, k, g, ok, v)
		}
	}
}

// click follows the link sel and waits for the next page's body.
func (b *browser) click(t *testing.T, sel string) {
	t.Helper()
	before, _ := chromedp.Run(b.ctx, chromedp.Location())
	if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)); err != nil {
		box, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`JSON.stringify(document.querySelector(`+strconv.Quote(sel)+`)?.getBoundingClientRect())`))
		t.Fatalf("click %s: %v (its box: %s)", sel, err, box)
	}
	for i := 0; ; i++ {
		now, _ := chromedp.Run(b.ctx, chromedp.Location())
		state, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.readyState`))
		if now != before && state == "complete" {
			return
		}
		if i == 500 {
			t.Fatalf("click %s: still on %s", sel, now)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDashboardInChromium is serve's acceptance test: a store the sim made with two scans, the
// dashboard clicked through run → country → region → host in headless Chromium; every figure
// equals `report --format json`'s, no console error, no request beyond the server, and a version
// name that is markup stays text.
func TestDashboardInChromium(t *testing.T) {
	bin := requireChromium(t)
	db, city := dashboardFixture(t)
	stdout, stderr, code := pacswatch(t, "", "report", "--db", db, "--geo", city, "--format", "json")
	if code != 0 {
		t.Fatalf("report exited %d: %s", code, stderr)
	}
	var rep report.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	base, _ := startServe(t, "--db", db, "--geo", city)
	b := newBrowser(t, bin)
	if err := chromedp.Do(b.ctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	wantMetrics(t, "index, latest run", b.numbers(t, `tr[data-run="`+rep.Scan.ID+`"]`), rep.Total.Metrics)

	b.click(t, `a[href="/scans/`+rep.Scan.ID+`"]`)
	if err := chromedp.Do(b.ctx, chromedp.WaitVisible(chromedp.CSS(`#total`))); err != nil {
		t.Fatal(err)
	}
	wantMetrics(t, "run totals", b.numbers(t, "#total"), rep.Total.Metrics)
	var countries, regions []report.Row
	for _, tb := range rep.Tables {
		switch tb.Group {
		case report.GroupCountry:
			countries = tb.Rows
		case report.GroupRegion:
			for _, r := range tb.Rows {
				if r.Country == "IN" {
					regions = append(regions, r)
				}
			}
		}
	}
	for _, r := range countries {
		wantMetrics(t, "country "+r.Key, b.numbers(t, `table[data-group="country"] tr[data-key="`+r.Key+`"]`), r.Metrics)
	}

	b.click(t, `table[data-group="country"] tr[data-key="IN"] a`)
	if len(regions) < 2 {
		t.Fatalf("the report has %d regions of IN, want 2", len(regions))
	}
	for _, r := range regions {
		wantMetrics(t, "region "+r.Key, b.numbers(t, `table[data-group="region"] tr[data-key="`+r.Key+`"]`), r.Metrics)
	}

	b.click(t, `table[data-group="region"] tr[data-key="IN/Karnataka"] a`)
	hosts, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("tr[data-ip]")].map(e => e.dataset.ip)`))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range regions {
		if r.Key == "IN/Karnataka" && int64(len(hosts)) != r.SystemsFound {
			t.Errorf("IN/Karnataka lists %d systems, report says %d found", len(hosts), r.SystemsFound)
		}
	}
	text, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatal(err)
	}
	scripts, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.querySelectorAll("script, img, iframe").length`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, hostileVersion) || scripts != 0 {
		t.Errorf("the markup version name is not shown as text (%d script/img/iframe elements)", scripts)
	}

	b.click(t, `tr[data-ip] a`)
	levels, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("table.history [data-f=level]")].map(e => e.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	if len(levels) == 0 {
		t.Error("the host page shows no run with a level")
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.requests) < 5 {
		t.Errorf("only %d requests recorded: %v", len(b.requests), b.requests)
	}
	for _, u := range b.requests {
		if !strings.HasPrefix(u, base+"/") {
			t.Errorf("request beyond the server: %s", u)
		}
	}
	if len(b.problems) > 0 {
		t.Errorf("problems in Chromium:\n%s", strings.Join(b.problems, "\n"))
	}
}

// TestServeToken: beyond loopback serve refuses to start without a token; with one, a request
// without it gets 401 and one with it 200; the token is in no output.
func TestServeToken(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "s.db")
	finishedStore(t, db, exposed("127.0.0.1", "v1"))
	for _, listen := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		_, stderr, code := pacswatch(t, "", "serve", "--db", db, "--listen", listen)
		singleLine(t, "serve --listen "+listen, stderr, "beyond loopback")
		if code != 2 {
			t.Errorf("serve --listen %s without a token exited %d, want 2", listen, code)
		}
	}
	const token = "tok-5f1d3c9a"
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base, logs := startServe(t, "--db", db, "--token-file", tokenFile, "-v")
	for _, tt := range []struct {
		auth string
		want int
	}{{"", 401}, {"Bearer nope", 401}, {"Bearer " + token, 200}} {
		req, _ := http.NewRequest("GET", base+"/api/v1/runs", nil)
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("Authorization %q: %d, want %d", tt.auth, resp.StatusCode, tt.want)
		}
	}
	if l := logs(); strings.Contains(l, token) || !strings.Contains(l, "status=401") {
		t.Errorf("serve -v log holds the token, or no request: %s", l)
	}
}
