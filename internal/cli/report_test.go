package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
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
		Finished string // RFC 3339, "" while unfinished
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
		var finished time.Time
		if s.Finished != "" {
			if finished, err = time.Parse(time.RFC3339, s.Finished); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := st.CreateScan(ctx, store.Scan{ID: s.ID, Name: s.Name, Started: s.Started, Finished: finished, Total: s.Total}); err != nil {
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

// isolated runs the built binary in dir, in a network namespace of its own when one is allowed
// (robust_test.go's isolation): report reads only files, and a mistake could reach nothing.
func isolated(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.SysProcAttr = isolation(t)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run pacswatch: %v", err)
	}
	return out.String(), errb.String(), code
}

// TestReportOutputNotStore: report -o naming the store, its -wal or -shm, or a link to it
// exits 2 in one line and leaves the store byte for byte (it used to overwrite it and exit 0).
func TestReportOutputNotStore(t *testing.T) {
	fixture, _, _ := reportFixture(t)
	dir := t.TempDir()
	b, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "pacswatch.db") // the default --db, in the working directory
	if err := os.WriteFile(db, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(db, filepath.Join(dir, "hard.md")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"default store", []string{"report", "-o", "pacswatch.db"}, "-o: pacswatch.db: is the store (--db); choose another file"},
		{"with --format", []string{"report", "--format", "md", "-o", "pacswatch.db"}, "is the store"},
		{"absolute --db", []string{"report", "--db", db, "-o", "./sub/../pacswatch.db"}, "is the store"},
		{"wal", []string{"report", "--format", "md", "-o", "pacswatch.db-wal"}, "write-ahead log"},
		{"shm", []string{"report", "--db", db, "--format", "md", "--output", db + "-shm"}, "shared-memory"},
		{"hard link", []string{"report", "-o", "hard.md"}, "hard.md: is the store"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := isolated(t, dir, tc.args...)
			oneLine(t, tc.name, stderr, code, tc.want)
			if stdout != "" {
				t.Errorf("stdout %q", stdout)
			}
			if got, err := os.ReadFile(db); err != nil || !bytes.Equal(got, b) {
				t.Fatalf("the store changed (%v)", err)
			}
			for _, f := range []string{"pacswatch.db-wal", "pacswatch.db-shm"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
					t.Errorf("%s appeared: the store was opened", f)
				}
			}
		})
	}
	// The store still reports.
	if stdout, stderr, code := isolated(t, dir, "report"); code != cli.ExitOK || !strings.Contains(stdout, "Compared with: s2019-10") {
		t.Errorf("report after the refusals: exit %d, %s", code, stderr)
	}
}

// TestReportOutputFile: -o is created 0600 (also over an old 0644 file), never through a
// symbolic link, in an existing directory; an unknown extension is refused unless --format
// says what to write.
func TestReportOutputFile(t *testing.T) {
	db, _, _ := reportFixture(t)
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	if err := os.WriteFile(p("target.md"), []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(p("target.md"), p("link.md")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p("old.md"), []byte("old report"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"symbolic link", []string{"-o", "link.md"}, "link.md: is a symbolic link"},
		{"unknown extension", []string{"-o", "x.pdf"}, `-o: x.pdf: unknown extension .pdf; name a .html, .md, .csv or .json file, or give --format`},
		{"unknown extension, upper case", []string{"-o", "x.PDF"}, ".html, .md, .csv or .json"},
		{"missing directory", []string{"-o", "none/r.md"}, "-o: none/r.md: directory none does not exist"},
		{"directory", []string{"-o", "."}, "is a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := isolated(t, dir, append([]string{"report", "--db", db}, tc.args...)...)
			oneLine(t, tc.name, stderr, code, tc.want)
			if stdout != "" {
				t.Errorf("stdout %q", stdout)
			}
		})
	}
	if got, _ := os.ReadFile(p("target.md")); string(got) != "keep me" {
		t.Errorf("the link's target now holds %q", got)
	}
	for _, tc := range []struct {
		file, format, want string
	}{
		{"x.pdf", "html", "<!DOCTYPE html>"},
		{"report", "", "# pacswatch report"}, // no extension: Markdown, said on stderr
		{"old.md", "", "# pacswatch report"},
		{"r.JSON", "", `"trend_rule"`},
	} {
		args := []string{"report", "--db", db, "-o", tc.file}
		if tc.format != "" {
			args = append(args, "--format", tc.format)
		}
		stdout, stderr, code := isolated(t, dir, args...)
		if code != cli.ExitOK || stdout != "" || !strings.Contains(stderr, "written to "+tc.file) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
			continue
		}
		b, err := os.ReadFile(p(tc.file))
		if err != nil || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s: %v, want it to hold %q", tc.file, err, tc.want)
		}
		if st, err := os.Stat(p(tc.file)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600", tc.file, st.Mode().Perm(), err)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") || e.Name() == "x.PDF" || e.Name() == "none" {
			t.Errorf("%s left behind", e.Name())
		}
	}
}

// TestReportComparesFinishedOnly is issue 10's case through the binary: a failed start left
// an empty unfinished scan between two finished ones, and the next report compared with it
// ("Trend: ugly", every study new), not with the scan before (100 to 105 studies: bad). It compares with the finished scan before, refuses an
// explicit --compare of the unfinished one, and notes an unfinished reported scan.
func TestReportComparesFinishedOnly(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "pacswatch.db")
	ctx := context.Background()
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	host := func(studies int64) []probe.Result {
		return []probe.Result{{IP: netip.MustParseAddr("127.0.0.1"), Port: 104, Time: day, Status: probe.StatusOpen,
			DICOM:    &probe.DICOM{Association: probe.AssociationAccepted, CalledAE: "ANY-SCP"},
			Exposure: &probe.Exposure{Level: probe.LevelQuery, Studies: studies, StudiesExact: true}}}
	}
	for i, sc := range []struct {
		id       string
		results  []probe.Result
		finished bool
	}{
		{"march", host(100), true},
		{"failed", nil, false}, // -o /missing/dir/x used to leave this
		{"april", host(105), true},
		{"may", host(90), false}, // still running
	} {
		s := store.Scan{ID: sc.id, Started: day.AddDate(0, i, 0), Total: 1}
		if sc.finished {
			s.Finished = s.Started.Add(time.Hour)
		}
		if _, err := st.CreateScan(ctx, s); err != nil {
			t.Fatal(err)
		}
		if err := st.PutResults(ctx, sc.id, sc.results, store.Progress{Done: uint64(len(sc.results))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	stdout, stderr, code := isolated(t, dir, "report", "--scan", "april")
	if code != cli.ExitOK || !strings.Contains(stdout, "Compared with: march") || !strings.Contains(stdout, "Trend: **bad**") || stderr != "" {
		t.Errorf("report on april: exit %d, stderr %q, want it compared with march, trend bad, no note:\n%s", code, stderr, stdout)
	}
	stdout, stderr, code = isolated(t, dir, "report")
	if code != cli.ExitOK || !strings.Contains(stdout, "Compared with: april") || strings.Count(stderr, "\n") != 1 ||
		!strings.Contains(stderr, "scan may is not finished: its figures are partial") {
		t.Errorf("report on the unfinished latest: exit %d, stderr %q, want a note and april compared:\n%s", code, stderr, stdout)
	}
	_, stderr, code = isolated(t, dir, "report", "--scan", "april", "--compare", "failed")
	oneLine(t, "--compare failed", stderr, code, `scan "failed" is not finished`)
	_, stderr, code = isolated(t, dir, "report", "--scan", strings.Repeat("x", 70000))
	oneLine(t, "huge --scan", stderr, code, strings.Repeat("x", 200)+`…"`)
	if len(stderr) > 300 {
		t.Errorf("error line of %d bytes for a 70,000-byte scan ID", len(stderr))
	}
}

// TestReportLongInputCapped: an error line quotes a user's value cut to 200 bytes with "…",
// escapes control characters, and shows no Go internals.
func TestReportLongInputCapped(t *testing.T) {
	db, _, _ := reportFixture(t)
	huge := strings.Repeat("x", 70000)
	cut := strings.Repeat("x", 200) + "…"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"argument", []string{"report", "--db", db, huge}, `unknown command "` + cut + `"`},
		{"escape in argument", []string{"report", "--db", db, "a\x1b[2Jb"}, `unknown command "a\x1b[2Jb"`},
		{"scan", []string{"report", "--db", db, "--scan", huge}, `scan "` + cut + `"`},
		{"compare", []string{"report", "--db", db, "--compare", huge}, `scan "` + cut + `"`},
		{"store", []string{"report", "--db", huge}, `--db: "` + cut + `"`},
		{"store with an escape", []string{"report", "--db", "/nonexistent/\x1b[31m.db"}, `no store at "/nonexistent/\x1b[31m.db"`},
		{"geo", []string{"report", "--db", db, "--geo", huge}, `--geo: `},
		{"format", []string{"report", "--db", db, "--format", huge}, `format "` + cut + `"`},
		{"group", []string{"report", "--db", db, "--group", huge}, `grouping "` + cut + `"`},
		{"output", []string{"report", "--db", db, "-o", huge + ".md"}, `-o: "` + cut + `"`},
		{"output extension", []string{"report", "--db", db, "-o", "r." + huge}, `…": unknown extension; name a .html`},
		{"flag", []string{"report", "--db", db, "--" + huge}, `unknown flag: --"` + cut + `"`},
		{"shorthand", []string{"report", "--db", db, "-" + huge}, `unknown shorthand flag: "x" in -"` + cut + `"`},
		{"not a number", []string{"report", "--db", db, "--good-drop", "abc"}, `--good-drop: "abc" is not a number`},
		{"huge number", []string{"report", "--db", db, "--ugly-rise", "1e999"}, `--ugly-rise: "1e999" is out of range`},
		{"long number", []string{"report", "--db", db, "--ugly-rise", huge}, `--ugly-rise: "` + cut + `" is not a number`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runCLI(tc.args...)
			if code != cli.ExitUsage || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %.400q; want exit 2 and one line containing %.300q", code, stderr, tc.want)
			}
			if len(stderr) > 400 || strings.Contains(stderr, "strconv.") || strings.ContainsAny(stderr, "\x1b") || stdout != "" {
				t.Errorf("stderr of %d bytes: %.400q (stdout %q)", len(stderr), stderr, stdout)
			}
		})
	}
}
