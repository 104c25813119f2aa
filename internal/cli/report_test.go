package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/cli"
	"github.com/pacswatch/pacswatch/internal/geo"
	"github.com/pacswatch/pacswatch/internal/geo/geotest"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/sqlite"
)

// reportFixture writes the report package's fixture (three scans of hosts on 127.0.0.0/8)
// into a new store, and a city and an ASN database placing them; it returns their paths.
func reportFixture(t *testing.T) (db, city, asn string) {
	t.Helper()
	dir := t.TempDir()
	db, city, asn = filepath.Join(dir, "pacswatch.db"), filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	ctx := context.Background()
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b, err := os.ReadFile("../report/testdata/scans.json")
	if err != nil {
		t.Fatal(err)
	}
	var scans []struct {
		ID, Name string
		Started  time.Time
		Total    uint64
	}
	if err := json.Unmarshal(b, &scans); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("../report/testdata/results.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	results := map[string][]probe.Result{}
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var r probe.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		results[r.ScanID] = append(results[r.ScanID], r)
	}
	for _, s := range scans {
		if _, err := st.CreateScan(ctx, store.Scan{ID: s.ID, Name: s.Name, Started: s.Started, Total: s.Total}); err != nil {
			t.Fatal(err)
		}
		if err := st.PutResults(ctx, s.ID, results[s.ID], store.Progress{Done: uint64(len(results[s.ID]))}); err != nil {
			t.Fatal(err)
		}
	}
	err = geotest.WriteCity(city, "GeoLite2-City", geo.LayoutMaxMind, []geotest.Place{
		{Prefix: netip.MustParsePrefix("127.1.0.0/16"), Location: geo.Location{Country: "IN", CountryName: "India", Region: "Maharashtra"}},
		{Prefix: netip.MustParsePrefix("127.2.0.0/15"), Location: geo.Location{Country: "IN", CountryName: "India", Region: "Karnataka"}},
		{Prefix: netip.MustParsePrefix("127.4.0.0/14"), Location: geo.Location{Country: "TR", CountryName: "Türkiye", Region: "İstanbul"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = geotest.WriteASN(asn, "GeoLite2-ASN", []geotest.AS{
		{Prefix: netip.MustParsePrefix("127.0.0.0/8"), ASN: geo.ASN{Number: 9829, Org: "National Internet Backbone"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return db, city, asn
}

// runCLI runs pacswatch in process and returns stdout, stderr and the exit status.
func runCLI(args ...string) (string, string, int) {
	var stdout, stderr bytes.Buffer
	code := cli.Run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
	return stdout.String(), stderr.String(), code
}

func TestReportCommand(t *testing.T) {
	db, city, asn := reportFixture(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		args  []string
		file  string   // output file, "" for stdout
		check []string // substrings of the output
	}{
		{"markdown to stdout", []string{"report", "--db", db, "--geo", city, "--asn", asn}, "",
			[]string{"# pacswatch report", "## By country", "## By region (state)", "## By autonomous system", "| IN | Maharashtra |", "Compared with: s2019-10"}},
		{"html by extension", []string{"report", "--db", db, "--geo", city, "-o", filepath.Join(dir, "r.html")}, "r.html",
			[]string{"<!DOCTYPE html>", `class="map"`, "Maharashtra", "&lt;script&gt;alert(1)&lt;/script&gt;"}},
		{"csv by flag", []string{"report", "--db", db, "--geo", city, "--group", "country", "--format", "csv"}, "",
			[]string{"group,key,name,country,systems_found", "country,IN,India,"}},
		{"json by extension, compare none", []string{"report", "--db", db, "--scan", "s2019-10", "--compare", "none", "-o", filepath.Join(dir, "r.json")}, "r.json",
			[]string{`"id": "s2019-10"`, `"trend_rule"`}},
		{"asn only, thresholds", []string{"report", "--db", db, "--asn", asn, "--group", "asn", "--good-drop", "20", "--ugly-rise", "5"}, "",
			[]string{"| AS9829 | National Internet Backbone |", "down by at least 20 %", "more than 5 %"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runCLI(tc.args...)
			if code != cli.ExitOK {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			out := stdout
			if tc.file != "" {
				b, err := os.ReadFile(filepath.Join(dir, tc.file))
				if err != nil {
					t.Fatal(err)
				}
				out = string(b)
				if stdout != "" || !strings.Contains(stderr, tc.file) {
					t.Errorf("stdout %q, stderr %q; want nothing on stdout and the file named on stderr", stdout, stderr)
				}
			}
			for _, s := range tc.check {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q", s)
				}
			}
			switch {
			case strings.HasSuffix(tc.file, ".json"):
				if !json.Valid([]byte(out)) {
					t.Error("JSON output does not parse")
				}
			case strings.Contains(strings.Join(tc.args, " "), "csv"):
				recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
				if err != nil || len(recs) < 3 {
					t.Errorf("CSV output: %d records, %v", len(recs), err)
				}
			}
		})
	}
}

// TestReportBadInput: each mistake is one line on stderr, exit 2, and no store is created.
func TestReportBadInput(t *testing.T) {
	db, city, asn := reportFixture(t)
	missing := filepath.Join(t.TempDir(), "none.db")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no store", []string{"report", "--db", missing}, "no store at " + missing},
		{"bad format", []string{"report", "--db", db, "--format", "xml"}, `"xml"`},
		{"bad group", []string{"report", "--db", db, "--group", "planet"}, `"planet"`},
		{"group needs geo", []string{"report", "--db", db, "--group", "region"}, "--geo"},
		{"missing geo file", []string{"report", "--db", db, "--geo", "/nonexistent/city.mmdb"}, "/nonexistent/city.mmdb"},
		{"asn db as geo", []string{"report", "--db", db, "--geo", asn}, "--geo: geo: wrong kind of MaxMind DB: " + asn + " holds ASN records"},
		{"city db as asn", []string{"report", "--db", db, "--asn", city}, "--asn: geo: wrong kind of MaxMind DB: " + city + " holds city records"},
		{"store as geo", []string{"report", "--db", db, "--geo", db}, "not a MaxMind DB file"},
		{"unknown scan", []string{"report", "--db", db, "--scan", "nope"}, `scan "nope"`},
		{"bad threshold", []string{"report", "--db", db, "--good-drop", "0"}, "good-drop"},
		{"argument", []string{"report", "--db", db, "extra"}, "unknown command"},
		{"unwritable output", []string{"report", "--db", db, "-o", "/nonexistent/dir/r.md"}, "-o:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runCLI(tc.args...)
			if code != cli.ExitUsage {
				t.Errorf("exit %d, want %d", code, cli.ExitUsage)
			}
			if strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q, want one line containing %q", stderr, tc.want)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("report created a store")
	}
}
