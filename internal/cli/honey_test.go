package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/peertest"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/report"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/sqlite"
)

// reportJSON runs pacswatch report --format json on a store and decodes it.
func reportJSON(t *testing.T, args ...string) report.Report {
	t.Helper()
	stdout, stderr, code := pacswatch(t, "", append([]string{"report", "--format", "json"}, args...)...)
	if code != 0 {
		t.Fatalf("report exited %d: %s", code, stderr)
	}
	var r report.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("report JSON: %v\n%s", err, stdout)
	}
	return r
}

// hostileStore writes a finished scan of honest archives, and the hostile claims when hostile,
// to a new store.
func hostileStore(t *testing.T, hostile bool) string {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hostile.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sc, err := st.CreateScan(ctx, store.Scan{Name: "2026-12", Finished: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	res := func(ip string, studies, instances int64, cs ...probe.Caveat) probe.Result {
		return probe.Result{IP: netip.MustParseAddr(ip), Port: 104, Status: probe.StatusOpen, Time: time.Now(),
			DICOM: &probe.DICOM{Association: probe.AssociationAccepted},
			Exposure: &probe.Exposure{Level: probe.LevelRetrieve, Studies: studies, StudiesExact: true, Instances: instances,
				Retrieve: probe.RetrieveAccepted, Caveats: cs}}
	}
	rs := []probe.Result{res("192.0.2.1", 1000, 50000), res("192.0.2.2", 20, 400)}
	if hostile {
		web := res("192.0.2.9", 0, 0)
		web.Exposure.Level = probe.LevelEcho
		web.Web = []probe.Web{{URL: "http://192.0.2.9:8042/", Product: "Orthanc", Auth: probe.AuthNone, Studies: math.MaxInt64, Instances: math.MaxInt64}}
		web.Exposure.Caveats = []probe.Caveat{{Kind: probe.CaveatImplausible, Reason: "web: 9223372036854775807 studies"}}
		rs = append(rs,
			res("192.0.2.7", 1, 16777216, probe.Caveat{Kind: probe.CaveatImplausible, Reason: "NumberOfStudyRelatedInstances 16777216 in one study"}),
			res("192.0.2.8", 200000, 3_400_000_000_000, probe.Caveat{Kind: probe.CaveatImplausible, Reason: "200000 responses without a Study Instance UID"}),
			web)
	}
	if err := st.PutResults(ctx, sc.ID, rs, store.Progress{Done: uint64(len(rs))}); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestHostileInflationReport: one huge count, a UID-less flood and a huge web count leave the
// totals of pacswatch report unchanged, each host named under caveats with what it claimed.
func TestHostileInflationReport(t *testing.T) {
	honest := reportJSON(t, "--db", hostileStore(t, false))
	got := reportJSON(t, "--db", hostileStore(t, true))
	want := honest.Total.Metrics
	if got.Total.Metrics != want || want.Studies != 1020 {
		t.Errorf("totals %+v\nwant   %+v", got.Total.Metrics, want)
	}
	for _, tr := range got.Trend {
		if tr.Studies != 1020 {
			t.Errorf("trend point %s: %d studies, want 1020", tr.Scan, tr.Studies)
		}
	}
	if got.Total.Apart.ImplausibleSystems != 3 || got.Total.Apart.WebSystems != 0 {
		t.Errorf("apart %+v, want 3 implausible hosts and no web system", got.Total.Apart)
	}
	named := ""
	for _, h := range got.Caveats.Hosts {
		named += h.Addr + " " + h.Reason + "\n"
	}
	for _, want := range []string{"192.0.2.7:104 NumberOfStudyRelatedInstances 16777216", "192.0.2.8:104 200000 responses", "192.0.2.9:104 web: 9223372036854775807"} {
		if !strings.Contains(named, want) {
			t.Errorf("caveats lack %q:\n%s", want, named)
		}
	}
}

// TestDemoHoneypotsAndGrowth: the demo flags its honeypots and leaves them out, says the
// changes pacswatch diff counts, grows India by the published 61 %, and keeps its store and
// location database with --db so that the report can be made again, the same.
func TestDemoHoneypotsAndGrowth(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "demo.db")
	_, stderr, code := pacswatchIn(t, dir, "", "demo", "--db", db, "-o", "demo.json")
	if code != 0 {
		t.Fatalf("demo exited %d: %s", code, stderr)
	}
	if _, err := os.Stat(db + ".geo.mmdb"); err != nil {
		t.Fatalf("the location database was not kept: %v", err)
	}
	again := reportJSON(t, "--db", db, "--geo", db+".geo.mmdb")
	b, err := os.ReadFile(filepath.Join(dir, "demo.json"))
	if err != nil {
		t.Fatal(err)
	}
	var first report.Report
	if err := json.Unmarshal(b, &first); err != nil {
		t.Fatal(err)
	}
	if first.Total.Metrics != again.Total.Metrics || len(first.Tables) != len(again.Tables) {
		t.Errorf("the report made again differs: %+v vs %+v", again.Total.Metrics, first.Total.Metrics)
	}
	for _, tb := range first.Tables {
		for _, row := range tb.Rows {
			if row.Key == "IN" && report.Percent(row.Previous.Studies, row.Studies) != "+61 %" {
				t.Errorf("India: %d → %d studies, want +61 %% as the README says", row.Previous.Studies, row.Studies)
			}
		}
	}
	if hp := first.Total.Apart.HoneypotSystems; hp < 6 {
		t.Errorf("%d honeypots apart, want the demo's DICOMHawks, dicompots and cluster", hp)
	}
	m := regexp.MustCompile(`(\d+) archives grew, (\d+) shrank, (\d+) closed, (\d+) appeared`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("the demo did not say what changed:\n%s", stderr)
	}
	out, _, code := pacswatch(t, "", "diff", "1", "2", "--db", db)
	if code != 0 {
		t.Fatalf("diff exited %d", code)
	}
	if want := m[4] + " appeared, " + m[3] + " closed, " + m[1] + " grew, " + m[2] + " shrank"; !strings.Contains(out, want) {
		t.Errorf("demo said %q; diff says:\n%s", m[0], out[max(0, len(out)-600):])
	}
}

// TestOrthancRESTAccessible: an Orthanc as the exam sets it up — DICOM queries refused to
// unknown AEs (its default), the REST API open without authentication — counts in pacswatch
// report as a system accessible on the web, with its studies, and as Orthanc with its version
// (its association shows DCMTK's identity).
func TestOrthancRESTAccessible(t *testing.T) {
	o := peertest.StartOrthanc(t, peertest.OrthancConfig{})
	corpus := peertest.Generate(11, 7, "11")
	o.Upload(t, corpus)
	db := filepath.Join(t.TempDir(), "exam.db")
	_, stderr, code := pacswatch(t, "", "scan", "-q", "--db", db, "--timeout", "3s", "--web",
		"-p", fmt.Sprint(o.DICOMPort), "--web-ports", fmt.Sprint(o.HTTPPort), "127.0.0.1")
	if code != 0 && code != 1 {
		t.Fatalf("scan exited %d: %s", code, stderr)
	}
	r := reportJSON(t, "--db", db)
	if a := r.Total.Apart; a.WebSystems != 1 || a.WebStudies != 7 || a.WebImages == 0 {
		t.Errorf("apart %+v, want one web system with 7 studies", a)
	}
	if r.Total.SystemsFound != 1 || r.Total.SystemsAccessible != 0 {
		t.Errorf("totals %+v: want the DICOM side found (echo), not accessible", r.Total.Metrics)
	}
	found := false
	for _, p := range r.Products {
		found = found || p.Product == "Orthanc" && p.Version != "" && !strings.Contains(p.Version, "DCMTK")
	}
	if !found {
		t.Errorf("products %+v, want Orthanc with its version", r.Products)
	}
}
