package audit

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	junit "github.com/joshdk/go-junit"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// evaluated returns the fixture's report, with pacswatch's version fixed for golden files.
func evaluated(in Input) *Report {
	r := Evaluate(in)
	r.Pacswatch = "test"
	return r
}

// TestGolden: text and JSON of each fixture, against testdata/golden (go test -update rewrites).
func TestGolden(t *testing.T) {
	for name, in := range fixtures() {
		for _, f := range []Format{FormatText, FormatJSON} {
			t.Run(name+"/"+string(f), func(t *testing.T) {
				var buf bytes.Buffer
				if err := evaluated(in).Write(&buf, f); err != nil {
					t.Fatal(err)
				}
				ext := map[Format]string{FormatText: ".txt", FormatJSON: ".json"}[f]
				path := filepath.Join("testdata", "golden", name+ext)
				if *update {
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test -update to write it)", err)
				}
				if !bytes.Equal(buf.Bytes(), want) {
					t.Errorf("%s differs from the golden file (go test -update rewrites it):\n%s", path, buf.String())
				}
			})
		}
	}
}

// TestJSONRoundTrip: the JSON output decodes back into the same report.
func TestJSONRoundTrip(t *testing.T) {
	for name, in := range fixtures() {
		var buf bytes.Buffer
		rep := evaluated(in)
		if err := rep.Write(&buf, FormatJSON); err != nil {
			t.Fatal(err)
		}
		var back Report
		if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var again bytes.Buffer
		if err := back.Write(&again, FormatJSON); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), again.Bytes()) {
			t.Errorf("%s: JSON does not round-trip:\n%s\n%s", name, buf.String(), again.String())
		}
	}
}

// TestSARIFSchema validates each fixture's SARIF against the OASIS SARIF 2.1.0 schema (errata
// 01, testdata/sarif-schema-2.1.0.json) with a JSON Schema validator, and checks the synthetic
// locations: one per check, pacs/HOST_PORT/CHECK_ID.
func TestSARIFSchema(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "sarif-schema-2.1.0.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(sarifSchema, doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile(sarifSchema)
	if err != nil {
		t.Fatal(err)
	}
	// The validator rejects what the schema forbids: a result without a message.
	if bad, _ := jsonschema.UnmarshalJSON(strings.NewReader(`{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"x"}},"results":[{"ruleId":"a"}]}]}`)); schema.Validate(bad) == nil {
		t.Fatal("the schema accepts a result without a message: the validator proves nothing")
	}
	for name, in := range fixtures() {
		rep := evaluated(in)
		var buf bytes.Buffer
		if err := rep.Write(&buf, FormatSARIF); err != nil {
			t.Fatal(err)
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := schema.Validate(inst); err != nil {
			t.Errorf("%s: SARIF does not validate: %v", name, err)
		}
		var log struct {
			Runs []struct {
				Results []struct {
					RuleID, Kind, Level string
					Locations           []struct {
						PhysicalLocation struct{ ArtifactLocation struct{ URI string } }
					}
				}
			}
		}
		if err := json.Unmarshal(buf.Bytes(), &log); err != nil {
			t.Fatal(err)
		}
		res := log.Runs[0].Results
		if len(res) != len(Checks) {
			t.Fatalf("%s: %d results, want one per check (%d)", name, len(res), len(Checks))
		}
		for i, r := range res {
			want := "pacs/127.0.0.1_" + rep.Target[strings.LastIndexByte(rep.Target, ':')+1:] + "/" + Checks[i].ID
			if uri := r.Locations[0].PhysicalLocation.ArtifactLocation.URI; uri != want {
				t.Errorf("%s: result %s at %q, want %q", name, r.RuleID, uri, want)
			}
			f, _ := rep.Finding(r.RuleID)
			wantKind := map[Status]string{Pass: "pass", Fail: "fail", Skip: "notApplicable"}[f.Status]
			if r.Kind != wantKind || (r.Kind == "fail") == (r.Level == "none") {
				t.Errorf("%s: %s kind %q level %q for status %s", name, r.RuleID, r.Kind, r.Level, f.Status)
			}
		}
	}
}

// TestJUnit parses each fixture's JUnit XML with go-junit, the parser CI report tools build on
// (it reads testsuites/testsuite/testcase with failure, error and skipped as JUnit and Jenkins
// write them), and finds every check with its status.
func TestJUnit(t *testing.T) {
	for name, in := range fixtures() {
		rep := evaluated(in)
		var buf bytes.Buffer
		if err := rep.Write(&buf, FormatJUnit); err != nil {
			t.Fatal(err)
		}
		suites, err := junit.Ingest(buf.Bytes())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(suites) != 1 {
			t.Fatalf("%s: %d suites, want 1", name, len(suites))
		}
		s := suites[0]
		if s.Totals.Tests != len(Checks) || s.Totals.Failed != rep.Summary.Fail || s.Totals.Skipped != rep.Summary.Skip ||
			s.Totals.Passed != rep.Summary.Pass || s.Totals.Error != 0 {
			t.Errorf("%s: totals %+v, want %+v", name, s.Totals, rep.Summary)
		}
		for i, tc := range s.Tests {
			f := rep.Checks[i]
			want := map[Status]junit.Status{Pass: junit.StatusPassed, Fail: junit.StatusFailed, Skip: junit.StatusSkipped}[f.Status]
			if !strings.HasPrefix(tc.Name, f.ID+": ") || tc.Status != want || tc.Classname != "pacs."+rep.slug() {
				t.Errorf("%s: test case %q (%s) status %s, want %s %s", name, tc.Name, tc.Classname, tc.Status, f.ID, want)
			}
			if f.Status == Fail && (tc.Error == nil || !strings.Contains(tc.Error.Error(), f.Evidence)) {
				t.Errorf("%s: failure of %s does not carry its evidence: %v", name, f.ID, tc.Error)
			}
		}
	}
}

var placeholderRE = regexp.MustCompile(`<[A-Z_]+>`)

// TestPlaceholdersExplained: every <PLACEHOLDER> a remediation holds is explained in it, and it
// explains no other.
func TestPlaceholdersExplained(t *testing.T) {
	n := 0
	for name, in := range fixtures() {
		for _, f := range evaluated(in).Checks {
			if f.Remediation == nil {
				continue
			}
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			if err := enc.Encode([]any{f.Remediation.Text, f.Remediation.Config}); err != nil {
				t.Fatal(err)
			}
			held := placeholderRE.FindAllString(b.String(), -1)
			n += len(held)
			for _, p := range held {
				if _, ok := f.Remediation.Placeholders[p]; !ok {
					t.Errorf("%s: %s: placeholder %s is not explained", name, f.ID, p)
				}
			}
			for k := range f.Remediation.Placeholders {
				if !slices.Contains(held, k) {
					t.Errorf("%s: %s explains %s, which it does not hold", name, f.ID, k)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no fixture's remediation holds a placeholder: the test proves nothing")
	}
}
