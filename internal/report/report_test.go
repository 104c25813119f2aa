package report_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/geo"
	"github.com/pacswatch/pacswatch/internal/geo/geotest"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/report"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/sqlite"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// Places of the fixture's hosts: all on loopback, spread over the 2019 report's states.
var fixturePlaces = []geotest.Place{
	{Prefix: netip.MustParsePrefix("127.1.0.0/16"), Location: geo.Location{Country: "IN", CountryName: "India", Region: "Maharashtra", City: "Mumbai"}},
	{Prefix: netip.MustParsePrefix("127.2.0.0/16"), Location: geo.Location{Country: "IN", CountryName: "India", Region: "Karnataka", City: "Bengaluru"}},
	{Prefix: netip.MustParsePrefix("127.3.0.0/16"), Location: geo.Location{Country: "IN", CountryName: "India", Region: "West Bengal", City: "Kolkata"}},
	{Prefix: netip.MustParsePrefix("127.4.0.0/16"), Location: geo.Location{Country: "IN", CountryName: "India", Region: "Telangana", City: "Hyderabad"}},
	{Prefix: netip.MustParsePrefix("127.5.0.0/16"), Location: geo.Location{Country: "IN", CountryName: "India"}},
	{Prefix: netip.MustParsePrefix("127.6.0.0/16"), Location: geo.Location{Country: "TR", CountryName: "Türkiye", Region: "İstanbul"}},
	// A hostile database string: it must come out as text in every format.
	{Prefix: netip.MustParsePrefix("127.7.0.0/16"), Location: geo.Location{Country: "US", CountryName: "United States", Region: `<img src=x onerror=alert(2)>|*x*`}},
	{Prefix: netip.MustParsePrefix("127.8.0.0/16"), Location: geo.Location{Country: "IN", CountryName: "India", Region: "Punjab"}},
	{Prefix: netip.MustParsePrefix("127.10.0.0/16"), Location: geo.Location{Country: "IN", CountryName: "India", Region: "Gujarat"}},
}

var fixtureASes = []geotest.AS{
	{Prefix: netip.MustParsePrefix("127.1.0.0/16"), ASN: geo.ASN{Number: 9829, Org: "National Internet Backbone"}},
	{Prefix: netip.MustParsePrefix("127.2.0.0/16"), ASN: geo.ASN{Number: 24560, Org: "Bharti Airtel"}},
	{Prefix: netip.MustParsePrefix("127.3.0.0/16"), ASN: geo.ASN{Number: 9829, Org: "National Internet Backbone"}},
	{Prefix: netip.MustParsePrefix("127.4.0.0/15"), ASN: geo.ASN{Number: 55836, Org: "Reliance Jio"}},
	{Prefix: netip.MustParsePrefix("127.6.0.0/16"), ASN: geo.ASN{Number: 9121, Org: "Turk Telekom"}},
	{Prefix: netip.MustParsePrefix("127.7.0.0/16"), ASN: geo.ASN{Number: 7018, Org: "AT&T <Services>, \"=cmd\""}},
	{Prefix: netip.MustParsePrefix("127.10.0.0/16"), ASN: geo.ASN{Number: 45609, Org: "=HYPERLINK(\"x\")"}},
}

// fixtureStore loads testdata/scans.json and testdata/results.jsonl into a new SQLite store.
func fixtureStore(t testing.TB) store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "fixture.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b, err := os.ReadFile("testdata/scans.json")
	if err != nil {
		t.Fatal(err)
	}
	var scans []struct {
		ID, Name, Started, Finished string
		Total                       uint64
	}
	if err := json.Unmarshal(b, &scans); err != nil {
		t.Fatal(err)
	}
	results := map[string][]probe.Result{}
	f, err := os.Open("testdata/results.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r probe.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("results.jsonl: %v", err)
		}
		results[r.ScanID] = append(results[r.ScanID], r)
	}
	for _, s := range scans {
		var started, finished time.Time
		if started, err = time.Parse(time.RFC3339, s.Started); err != nil {
			t.Fatal(err)
		}
		if s.Finished != "" {
			if finished, err = time.Parse(time.RFC3339, s.Finished); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := st.CreateScan(ctx, store.Scan{ID: s.ID, Name: s.Name, Started: started, Finished: finished, Total: s.Total}); err != nil {
			t.Fatal(err)
		}
		if err := st.PutResults(ctx, s.ID, results[s.ID], store.Progress{Done: uint64(len(results[s.ID]))}); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func fixtureGeo(t testing.TB) (*geo.DB, *geo.ASNDB) {
	t.Helper()
	dir := t.TempDir()
	city, asn := filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	if err := geotest.WriteCity(city, "GeoLite2-City", geo.LayoutMaxMind, fixturePlaces); err != nil {
		t.Fatal(err)
	}
	if err := geotest.WriteASN(asn, "GeoLite2-ASN", fixtureASes); err != nil {
		t.Fatal(err)
	}
	g, err := geo.Open(city)
	if err != nil {
		t.Fatal(err)
	}
	a, err := geo.OpenASN(asn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close(); a.Close() })
	return g, a
}

// TestGolden: the fixed store and databases give exactly the committed Markdown, CSV and JSON.
// go test ./internal/report -run TestGolden -update rewrites them.
func TestGolden(t *testing.T) {
	st := fixtureStore(t)
	g, a := fixtureGeo(t)
	for _, tc := range []struct {
		name string
		opt  report.Options
	}{
		{"full", report.Options{Geo: g, ASN: a}},
		{"no-databases", report.Options{Scan: "s2019-10"}},
		{"asn-thresholds", report.Options{ASN: a, Compare: "s2019-09", Groups: []report.Grouping{report.GroupASN},
			Thresholds: report.Thresholds{GoodDrop: 20, UglyRise: 5}}},
		{"first-scan", report.Options{Scan: "s2019-09", Geo: g, Groups: []report.Grouping{report.GroupRegion}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := report.Build(context.Background(), st, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []report.Format{report.FormatMarkdown, report.FormatCSV, report.FormatJSON} {
				var buf bytes.Buffer
				if err := r.Write(&buf, f); err != nil {
					t.Fatal(err)
				}
				golden(t, filepath.Join("testdata", "golden", tc.name+"."+f.String()), buf.Bytes())
			}
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < max(len(gl), len(wl)); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("%s differs at line %d:\ngot:  %s\nwant: %s\n(run with -update to accept)", path, i+1, g, w)
			}
		}
	}
}

// TestFigures checks the definitions on the fixture by hand: hosts, not ports; accessible is
// level ≥ query; honeypots out; image access from retrieve.
func TestFigures(t *testing.T) {
	st := fixtureStore(t)
	g, a := fixtureGeo(t)
	r, err := report.Build(context.Background(), st, report.Options{Geo: g, ASN: a})
	if err != nil {
		t.Fatal(err)
	}
	// November: found = 127.1.0.1-3, 127.2.0.1, 127.3.0.1, 127.4.0.1-2, 127.5.0.1, 127.6.0.1,
	// 127.7.0.1, 127.9.0.3, 127.10.0.1 (12; the honeypot 127.8.0.1 and not-DICOM 127.9.0.1 out).
	// Accessible: all but 127.1.0.3, 127.5.0.1 (echo) and 127.10.0.1 (9). 127.1.0.1 counts once.
	want := report.Metrics{
		SystemsFound:       12,
		SystemsAccessible:  9,
		Studies:            120000 + 50000 + 182865 + 172885 + 7344 + 118816 + 4924 + 10 + 3,
		Images:             30000000 + 9000000 + 13731001 + 3400000 + 600000 + 5400000 + 179500 + 0 + 12,
		StudiesImageAccess: 120000 + 182865 + 7344,
		ImagesAccessible:   30000000 + 13731001 + 600000,
	}
	if r.Total.Metrics != want {
		t.Errorf("total = %+v\nwant    %+v", r.Total.Metrics, want)
	}
	if r.Compare == nil || r.Compare.ID != "s2019-10" || r.Scan.ID != "s2019-11" {
		t.Fatalf("scan %v compare %v; want s2019-11 against s2019-10", r.Scan.ID, r.Compare)
	}
	wantCaveats := report.Caveats{StudiesLowerBound: 1, ImagesEstimated: 1, ImagesUnknown: 1, Honeypots: 1,
		Hosts: []report.CaveatHost{{Addr: "127.8.0.1:104", Kind: "honeypot", Reason: "flagged as a honeypot", Studies: 999999, Images: 999999}}}
	if !reflect.DeepEqual(r.Caveats, wantCaveats) {
		t.Errorf("caveats = %+v, want %+v", r.Caveats, wantCaveats)
	}
	if want := (report.Share{Systems: 12, TLS: 1}); r.TLS != want {
		t.Errorf("TLS = %+v, want %+v", r.TLS, want)
	}
	levels := map[string]int64{}
	for _, c := range r.Levels {
		levels[c.Name] = c.Systems
	}
	wantLevels := map[string]int64{"not-dicom": 1, "protected": 2, "echo": 1, "query": 6, "retrieve": 3}
	for k, v := range wantLevels {
		if levels[k] != v {
			t.Errorf("level %s: %d hosts, want %d", k, levels[k], v)
		}
	}
	trends := map[string]report.Trend{}
	studies := map[string]int64{}
	rows := map[string]report.Row{}
	for _, tb := range r.Tables {
		if tb.Group != report.GroupRegion {
			continue
		}
		for _, row := range tb.Rows {
			trends[row.Key], studies[row.Key], rows[row.Key] = row.Trend, row.Studies, row
		}
	}
	for _, tc := range []struct {
		key     string
		studies int64
		trend   report.Trend
	}{
		{"IN/Maharashtra", 170000, report.TrendUgly}, // 100,000 → 170,000
		{"IN/Karnataka", 182865, report.TrendBad},    // 180,000 → 182,865
		{"IN/Telangana", 126160, report.TrendGood},   // 307,344 → 126,160: down by more than half
		{"IN/Gujarat", 0, report.TrendGood},          // 111,408 → 0 (protected now)
		{"TR/İstanbul", 4924, report.TrendBad},       // 4,900 → 4,924
		{"IN/??", 0, report.TrendGood},               // 0 → 0 (echo only)
		{"??", 3, report.TrendUgly},                  // 0 → 3
		{"US/<img src=x onerror=alert(2)>|*x*", 10, report.TrendUgly},
	} {
		if studies[tc.key] != tc.studies || trends[tc.key] != tc.trend {
			t.Errorf("%s: %d studies, %v; want %d, %v", tc.key, studies[tc.key], trends[tc.key], tc.studies, tc.trend)
		}
	}
	// The honeypot's region shows it apart, with no system in its figures.
	if row := rows["IN/Punjab"]; row.Metrics != (report.Metrics{}) || row.Apart != (report.Apart{HoneypotSystems: 1}) {
		t.Errorf("the honeypot's region: %+v %+v; want no figure, one honeypot apart", row.Metrics, row.Apart)
	}
}

func TestBuildErrors(t *testing.T) {
	ctx := context.Background()
	st := fixtureStore(t)
	empty, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "empty.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	g, a := fixtureGeo(t)
	dir := t.TempDir()
	countryPath := filepath.Join(dir, "country.mmdb")
	if err := geotest.WriteCity(countryPath, "GeoLite2-Country", geo.LayoutMaxMind, []geotest.Place{
		{Prefix: netip.MustParsePrefix("127.0.0.0/8"), Location: geo.Location{Country: "IN"}}}); err != nil {
		t.Fatal(err)
	}
	country, err := geo.Open(countryPath)
	if err != nil {
		t.Fatal(err)
	}
	defer country.Close()
	for _, tc := range []struct {
		name string
		st   store.Store
		opt  report.Options
		is   error
		want string
	}{
		{"empty store", empty, report.Options{}, report.ErrNoScans, "no scans"},
		{"unknown scan", st, report.Options{Scan: "nope"}, store.ErrNotFound, `"nope"`},
		{"unknown compare", st, report.Options{Compare: "nah"}, store.ErrNotFound, `"nah"`},
		{"compare itself", st, report.Options{Scan: "s2019-10", Compare: "s2019-10"}, nil, "itself"},
		{"country without geo", st, report.Options{Groups: []report.Grouping{report.GroupCountry}}, nil, "--geo"},
		{"asn without db", st, report.Options{Geo: g, Groups: []report.Grouping{report.GroupASN}}, nil, "--asn"},
		{"region from country db", st, report.Options{Geo: country, Groups: []report.Grouping{report.GroupRegion}}, nil, "city database"},
		{"bad good-drop", st, report.Options{ASN: a, Thresholds: report.Thresholds{GoodDrop: 150, UglyRise: 10}}, nil, "good-drop"},
		{"bad ugly-rise", st, report.Options{Thresholds: report.Thresholds{GoodDrop: 50, UglyRise: -1}}, nil, "ugly-rise"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := report.Build(ctx, tc.st, tc.opt)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// TestCountryDatabaseGroups: a country database gives a country table and no region table.
func TestCountryDatabaseGroups(t *testing.T) {
	st := fixtureStore(t)
	path := filepath.Join(t.TempDir(), "country.mmdb")
	if err := geotest.WriteCity(path, "geolite2-country", geo.LayoutFlat, []geotest.Place{
		{Prefix: netip.MustParsePrefix("127.0.0.0/9"), Location: geo.Location{Country: "IN"}}}); err != nil {
		t.Fatal(err)
	}
	db, err := geo.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r, err := report.Build(context.Background(), st, report.Options{Geo: db, Compare: report.NoCompare})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Tables) != 1 || r.Tables[0].Group != report.GroupCountry {
		t.Fatalf("tables %v, want one country table", r.Tables)
	}
	rows := r.Tables[0].Rows
	if len(rows) != 1 || rows[0].Key != "IN" || rows[0].Name != "India" || rows[0].SystemsFound != 12 || rows[0].Change != nil {
		t.Errorf("rows = %+v, want IN India with all 12 systems and no change", rows)
	}
	if r.Compare != nil || r.Total.Trend != report.TrendNone {
		t.Errorf("compare %v, trend %v with NoCompare", r.Compare, r.Total.Trend)
	}
}
