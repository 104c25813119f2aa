package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/geo"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/report"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/memstore"
	"github.com/pacswatch/pacswatch/internal/web"
)

// xss is a product version a hostile server could send.
const xss = `<script>alert(1)</script><img src=x onerror=alert(2)>`

// exposedAt returns a result of scan id for ip:port at level query with the given studies.
func exposedAt(id, ip string, port uint16, studies int64, version string) probe.Result {
	return probe.Result{ScanID: id, IP: netip.MustParseAddr(ip), Port: port, Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Status: probe.StatusOpen,
		DICOM: &probe.DICOM{Association: probe.AssociationAccepted, CalledAE: "ANY-SCP", CallingAE: "PACSWATCH",
			Product: "Orthanc", ImplementationVersion: version},
		Exposure: &probe.Exposure{Level: probe.LevelQuery, Studies: studies, StudiesExact: true, Instances: studies * 10,
			InstancesSource: probe.InstancesSourceStudyAttr}}
}

func protectedAt(id, ip string, port uint16) probe.Result {
	return probe.Result{ScanID: id, IP: netip.MustParseAddr(ip), Port: port, Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Status: probe.StatusOpen, DICOM: &probe.DICOM{Association: probe.AssociationRejected, CallingAE: "PACSWATCH"},
		Exposure: &probe.Exposure{Level: probe.LevelProtected}}
}

// twoScans is a store of two finished scans a week apart over the same space: 127.0.x.y is in
// IN, 127.1.x.y in TR (writeGeo). Between them 127.0.0.2 was fixed (AE check), 127.0.1.1 opened
// and 127.1.0.1 grew.
func twoScans(t testing.TB) (*memstore.Store, []store.Scan) {
	t.Helper()
	ctx := context.Background()
	st := memstore.New()
	t.Cleanup(func() { st.Close() })
	start := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	var scans []store.Scan
	for i, rs := range [][]func(id string) probe.Result{
		{
			func(id string) probe.Result { return exposedAt(id, "127.0.0.1", 104, 120, "OFFIS_DCMTK_367") },
			func(id string) probe.Result { return exposedAt(id, "127.0.0.2", 11112, 30, xss) },
			func(id string) probe.Result { return protectedAt(id, "127.0.0.3", 104) },
			func(id string) probe.Result { return exposedAt(id, "127.1.0.1", 4242, 1000, "ORTHANC_1.12") },
		},
		{
			func(id string) probe.Result { return exposedAt(id, "127.0.0.1", 104, 120, "OFFIS_DCMTK_367") },
			func(id string) probe.Result { return protectedAt(id, "127.0.0.2", 11112) },
			func(id string) probe.Result { return protectedAt(id, "127.0.0.3", 104) },
			func(id string) probe.Result { return exposedAt(id, "127.0.1.1", 104, 7, xss) },
			func(id string) probe.Result { return exposedAt(id, "127.1.0.1", 4242, 2500, "ORTHANC_1.12") },
		},
	} {
		at := start.Add(time.Duration(i) * 7 * 24 * time.Hour)
		sc, err := st.CreateScan(ctx, store.Scan{Name: "weekly", Started: at, Total: 1024, SpaceDigest: "same"})
		if err != nil {
			t.Fatal(err)
		}
		var batch []probe.Result
		for _, f := range rs {
			batch = append(batch, f(sc.ID))
		}
		if err := st.PutResults(ctx, sc.ID, batch, store.Progress{Done: 1024}); err != nil {
			t.Fatal(err)
		}
		if err := st.FinishScan(ctx, sc.ID, at.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		sc, _ = st.Scan(ctx, sc.ID)
		scans = append(scans, sc)
	}
	return st, scans
}

func openGeo(t *testing.T) *geo.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "city.mmdb")
	writeGeo(t, path)
	g, err := geo.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// serve starts a server over st on a loopback listener.
func serve(t *testing.T, cfg web.Config) (*httptest.Server, *web.Server) {
	t.Helper()
	s, err := web.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() { ts.Close(); s.Close() })
	return ts, s
}

func get(t *testing.T, url string, header ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// cells returns the numbers of the data-m cells of the element whose attribute attr is value,
// by metric name.
func cells(t *testing.T, page, attr, value string) map[string]int64 {
	t.Helper()
	re := regexp.MustCompile(`<tr ` + attr + `="` + regexp.QuoteMeta(value) + `">(.*?)</tr>`)
	m := re.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no row %s=%q in page", attr, value)
	}
	out := map[string]int64{}
	for _, c := range regexp.MustCompile(`data-m="([a-z_]+)">([-0-9,]+)<`).FindAllStringSubmatch(m[1], -1) {
		n, err := strconv.ParseInt(strings.ReplaceAll(c[2], ",", ""), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		out[c[1]] = n
	}
	return out
}

func metricsMap(m report.Metrics) map[string]int64 {
	return map[string]int64{"systems_found": m.SystemsFound, "systems_accessible": m.SystemsAccessible, "studies": m.Studies,
		"images": m.Images, "studies_with_image_access": m.StudiesImageAccess, "images_accessible": m.ImagesAccessible}
}

func sameMetrics(t *testing.T, what string, got map[string]int64, want report.Metrics) {
	t.Helper()
	w := metricsMap(want)
	for k, v := range w {
		if got[k] != v {
			t.Errorf("%s: %s = %d, want %d (report)", what, k, got[k], v)
		}
	}
}

// TestPagesEqualReport walks run → country → region → host over a two-scan store and checks
// every figure against report.Build's, and the API's report against report's JSON.
func TestPagesEqualReport(t *testing.T) {
	st, scans := twoScans(t)
	g := openGeo(t)
	ts, _ := serve(t, web.Config{Store: st.ReadOnly(), Geo: g})
	ctx := context.Background()
	rep, err := report.Build(ctx, st, report.Options{Scan: scans[1].ID, Geo: g})
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := rep.WriteJSON(&want); err != nil {
		t.Fatal(err)
	}
	code, _, body := get(t, ts.URL+"/api/v1/scans/"+scans[1].ID+"/report")
	if code != 200 || body != want.String() {
		t.Errorf("API report: %d\n%s\nwant the report's JSON\n%s", code, body, want.String())
	}

	code, _, index := get(t, ts.URL+"/")
	if code != 200 {
		t.Fatalf("index: %d %s", code, index)
	}
	sameMetrics(t, "index run row", cells(t, index, "data-run", scans[1].ID), rep.Total.Metrics)

	code, _, page := get(t, ts.URL+"/scans/"+scans[1].ID)
	if code != 200 || !strings.Contains(page, `class="map"`) {
		t.Fatalf("scan page: %d %s", code, page)
	}
	var regions []report.Row
	for _, tb := range rep.Tables {
		for _, row := range tb.Rows {
			if tb.Group == report.GroupCountry {
				sameMetrics(t, "country "+row.Key, cells(t, page, "data-key", row.Key), row.Metrics)
			} else if strings.HasPrefix(row.Key, "IN/") {
				regions = append(regions, row)
			}
		}
	}
	code, _, country := get(t, ts.URL+"/scans/"+scans[1].ID+"/countries/IN")
	if code != 200 || len(regions) == 0 {
		t.Fatalf("country page: %d, %d regions", code, len(regions))
	}
	for _, row := range regions {
		sameMetrics(t, "region "+row.Key, cells(t, country, "data-key", row.Key), row.Metrics)
		code, _, hosts := get(t, ts.URL+"/scans/"+scans[1].ID+"/hosts?region="+strings.ReplaceAll(row.Key, " ", "+"))
		if n := strings.Count(hosts, "<tr data-ip="); code != 200 || int64(n) != row.SystemsFound {
			t.Errorf("hosts of %s: %d, %d rows, want %d systems found", row.Key, code, n, row.SystemsFound)
		}
	}
	code, _, host := get(t, ts.URL+"/hosts/127.0.0.2")
	if code != 200 || !strings.Contains(host, `data-seconds="604800"`) || !strings.Contains(host, "7 days 0 h") {
		t.Errorf("host page of the fixed system: %d, want a time to fix of 7 days\n%s", code, host)
	}
}

// TestServerStringsInert: a product version that is markup is text on every page.
func TestServerStringsInert(t *testing.T) {
	st, scans := twoScans(t)
	ts, _ := serve(t, web.Config{Store: st.ReadOnly(), Geo: openGeo(t)})
	for _, path := range []string{"/scans/" + scans[0].ID, "/scans/" + scans[1].ID + "/hosts", "/hosts/127.0.1.1", "/hosts/127.0.0.2"} {
		code, h, page := get(t, ts.URL+path)
		if code != 200 {
			t.Fatalf("%s: %d", path, code)
		}
		if strings.Contains(page, "<script") || strings.Contains(page, "<img") {
			t.Errorf("%s: markup from a server in the page", path)
		}
		if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s: the hostile version is not shown as text", path)
		}
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q", path, csp)
		}
	}
}

func TestToken(t *testing.T) {
	st, _ := twoScans(t)
	const token = "s3cret-token-value"
	var logs bytes.Buffer
	ts, _ := serve(t, web.Config{Store: st.ReadOnly(), Token: token, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for _, path := range []string{"/", "/api/v1/runs", "/metrics", "/static/style.css", "/no/such/page"} {
		if code, h, _ := get(t, ts.URL+path); code != http.StatusUnauthorized || h.Get("WWW-Authenticate") == "" {
			t.Errorf("%s without the token: %d, want 401 with WWW-Authenticate", path, code)
		}
		if code, _, _ := get(t, ts.URL+path, "Authorization", "Bearer wrong"); code != http.StatusUnauthorized {
			t.Errorf("%s with a wrong token: %d, want 401", path, code)
		}
		if code, _, _ := get(t, ts.URL+path, "Authorization", "Bearer "+token[:len(token)-1]); code != http.StatusUnauthorized {
			t.Errorf("%s with a prefix of the token: %d, want 401", path, code)
		}
	}
	if code, _, _ := get(t, ts.URL+"/", "Authorization", "Bearer "+token); code != 200 {
		t.Errorf("with the token: %d, want 200", code)
	}
	req, _ := http.NewRequest("GET", ts.URL+"/api/v1/runs", nil)
	req.SetBasicAuth("anyone", token)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("basic authentication with the token: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if strings.Contains(logs.String(), token) || logs.Len() == 0 {
		t.Errorf("log holds the token, or nothing: %s", logs.String())
	}
}

func TestCheckListen(t *testing.T) {
	for _, tt := range []struct {
		addr, token string
		ok          bool
	}{
		{"127.0.0.1:8080", "", true},
		{"127.9.9.9:8080", "", true},
		{"[::1]:8080", "", true},
		{"localhost:8080", "", true},
		{"0.0.0.0:8080", "", false},
		{":8080", "", false},
		{"[::]:8080", "", false},
		{"192.0.2.10:8080", "", false},
		{"dashboard.example:8080", "", false},
		{"0.0.0.0:8080", "t", true},
		{"8080", "", false},
	} {
		err := web.CheckListen(tt.addr, tt.token)
		if (err == nil) != tt.ok {
			t.Errorf("CheckListen(%q, %q) = %v, want ok %v", tt.addr, tt.token, err, tt.ok)
		}
	}
}

// blocked is a Reader whose Results wait until release is closed: a report that takes long.
type blocked struct {
	store.Reader
	release chan struct{}
}

func (b blocked) Results(ctx context.Context, id string, fn func(probe.Result) error) error {
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return b.Reader.Results(ctx, id, fn)
}

// TestPendingPage: a run whose report is still being built answers at once with the store's
// per-system figures and a refresh, then with the report.
func TestPendingPage(t *testing.T) {
	st, scans := twoScans(t)
	b := blocked{st.ReadOnly(), make(chan struct{})}
	ts, _ := serve(t, web.Config{Store: b, Wait: 50 * time.Millisecond})
	start := time.Now()
	code, _, page := get(t, ts.URL+"/scans/"+scans[1].ID)
	if code != 200 || !strings.Contains(page, `http-equiv="refresh"`) || time.Since(start) > 5*time.Second {
		t.Fatalf("pending page: %d after %v\n%s", code, time.Since(start), page)
	}
	sys, err := st.Systems(context.Background(), scans[1].ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := cells(t, page, "data-run", scans[1].ID); got["systems_found"] != sys.Found || sys.Found == 0 {
		t.Errorf("pending page shows %v, want the store's %+v", got, sys)
	}
	close(b.release)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, page = get(t, ts.URL+"/scans/"+scans[1].ID)
		if !strings.Contains(page, `http-equiv="refresh"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the report never came")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(page, `id="total"`) {
		t.Errorf("report page lacks its totals:\n%s", page)
	}
}

func TestMetricsAndErrors(t *testing.T) {
	st, _ := twoScans(t)
	ts, _ := serve(t, web.Config{Store: st.ReadOnly()})
	for path, want := range map[string]int{"/scans/nope": 404, "/hosts/not-an-ip": 400, "/api/v1/hosts/x": 400,
		"/api/v1/scans/nope/report": 404, "/elsewhere": 404} {
		if code, _, body := get(t, ts.URL+path); code != want || strings.Contains(body, "netip") {
			t.Errorf("%s: %d, want %d: %s", path, code, want, body)
		}
	}
	resp, err := http.Post(ts.URL+"/", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", resp.StatusCode)
	}
	get(t, ts.URL+"/")
	_, _, m := get(t, ts.URL+"/metrics")
	for _, want := range []string{`pacswatch_serve_requests_total{code="200",route="GET /{$}"}`, "pacswatch_exposed_systems 3", "pacswatch_serve_scans 2"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	var runs []web.APIRun
	_, _, body := get(t, ts.URL+"/api/v1/runs")
	if err := json.Unmarshal([]byte(body), &runs); err != nil || len(runs) != 2 || runs[1].Metrics.SystemsAccessible != 3 {
		t.Errorf("runs = %+v, %v", runs, err)
	}
}

// TestChangesPage: a run's changes against the run its report compares it with: the new
// exposure, the growth and the fix with its time to fix, on the page and in the API.
func TestChangesPage(t *testing.T) {
	st, scans := twoScans(t)
	ts, _ := serve(t, web.Config{Store: st.ReadOnly(), Geo: openGeo(t)})
	code, _, page := get(t, ts.URL+"/scans/"+scans[1].ID+"/changes")
	if code != 200 {
		t.Fatalf("changes page: %d %s", code, page)
	}
	for _, want := range []string{`<tr data-ip="127.0.0.2" data-kind="fixed">`, `data-seconds="604800"`,
		`<tr data-ip="127.0.1.1" data-kind="new-exposure">`, `<tr data-ip="127.1.0.1" data-kind="growth">`} {
		if !strings.Contains(page, want) {
			t.Errorf("changes page lacks %s", want)
		}
	}
	if n := strings.Count(page, "<tr data-ip="); n != 3 {
		t.Errorf("%d changes, want 3", n)
	}
	var l struct {
		Previous string `json:"previous_run"`
		Changes  []struct {
			IP   string `json:"ip"`
			Kind string `json:"kind"`
			TTF  int64  `json:"time_to_fix_seconds"`
		} `json:"changes"`
	}
	_, _, body := get(t, ts.URL+"/api/v1/scans/"+scans[1].ID+"/changes")
	if err := json.Unmarshal([]byte(body), &l); err != nil || l.Previous != scans[0].ID || len(l.Changes) != 3 {
		t.Errorf("API changes = %s (%v)", body, err)
	}
	_, _, first := get(t, ts.URL+"/scans/"+scans[0].ID+"/changes")
	if !strings.Contains(first, "Nothing changed.") {
		t.Error("the first run has changes")
	}
}
