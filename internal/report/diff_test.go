package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/report"
	"github.com/pacswatch/pacswatch/internal/store"
)

func TestDiff(t *testing.T) {
	st := fixtureStore(t)
	// The cross-check below builds the report of September compared with November, and a
	// report compares finished scans only.
	if err := st.FinishScan(context.Background(), "s2019-11", time.Date(2019, 11, 15, 10, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	g, a := fixtureGeo(t)
	for _, tc := range []struct {
		name       string
		old, new   string
		want       []string
		wantCounts report.DiffCounts
	}{
		{"october to november", "s2019-10", "s2019-11", []string{
			"127.1.0.1 grew retrieve→retrieve 100000→120000 IN/Maharashtra AS9829",
			"127.1.0.2 appeared closed→query 0→50000 IN/Maharashtra AS9829",
			"127.2.0.1 grew retrieve→retrieve 180000→182865 IN/Karnataka AS24560",
			"127.4.0.2 shrank query→query 300000→118816 IN/Telangana AS55836",
			"127.6.0.1 grew query→query 4900→4924 TR/İstanbul AS9121",
			"127.7.0.1 appeared closed→query 0→10 US/<img src=x onerror=alert(2)>|*x* AS7018",
			"127.9.0.3 appeared closed→query 0→3 / AS0",
			"127.10.0.1 closed retrieve→protected 111408→0 IN/Gujarat AS45609",
		}, report.DiffCounts{Appeared: 3, Closed: 1, Grew: 3, Shrank: 1, Unchanged: 2}},
		{"november back to september", "s2019-11", "s2019-09", []string{
			"127.1.0.1 shrank retrieve→retrieve 120000→80000 IN/Maharashtra AS9829",
			"127.1.0.2 not-rescanned query→closed 50000→0 IN/Maharashtra AS9829",
			"127.2.0.1 shrank retrieve→retrieve 182865→150000 IN/Karnataka AS24560",
			"127.3.0.1 not-rescanned query→closed 172885→0 IN/West Bengal AS9829",
			"127.4.0.1 not-rescanned retrieve→closed 7344→0 IN/Telangana AS55836",
			"127.4.0.2 not-rescanned query→closed 118816→0 IN/Telangana AS55836",
			"127.6.0.1 not-rescanned query→closed 4924→0 TR/İstanbul AS9121",
			"127.7.0.1 not-rescanned query→closed 10→0 US/<img src=x onerror=alert(2)>|*x* AS7018",
			"127.9.0.3 not-rescanned query→closed 3→0 / AS0",
		}, report.DiffCounts{Shrank: 2, NotRescanned: 7}},
		{"same scan", "s2019-11", "s2019-11", nil, report.DiffCounts{Unchanged: 9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			sum, err := report.Diff(context.Background(), st, tc.old, tc.new, report.Options{Geo: g, ASN: a}, func(c report.Change) error {
				got = append(got, fmt.Sprintf("%s %s %s→%s %d→%d %s/%s AS%d", c.IP, c.Kind, c.Old.Level, c.New.Level, c.Old.Studies, c.New.Studies, c.Country, c.Region, c.ASN))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("changes:\n%q\nwant\n%q", got, tc.want)
			}
			if sum.Counts != tc.wantCounts {
				t.Errorf("counts = %+v, want %+v", sum.Counts, tc.wantCounts)
			}
			if sum.Old.ID != tc.old || sum.New.ID != tc.new {
				t.Errorf("summary of %s → %s, want %s → %s", sum.Old.ID, sum.New.ID, tc.old, tc.new)
			}
			// The per-group deltas are those of the report of NEW compared with OLD.
			if tc.old == tc.new {
				return
			}
			r, err := report.Build(context.Background(), st, report.Options{Scan: tc.new, Compare: tc.old, Geo: g, ASN: a})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(sum.Tables, r.Tables) || !reflect.DeepEqual(sum.Total, r.Total) {
				t.Errorf("diff groups differ from the report's:\n%+v\n%+v", sum.Tables, r.Tables)
			}
		})
	}
}

func TestDiffErrors(t *testing.T) {
	st := fixtureStore(t)
	stop := errors.New("enough")
	calls := 0
	_, err := report.Diff(context.Background(), st, "s2019-10", "s2019-11", report.Options{}, func(report.Change) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Diff with a failing callback = %v after %d calls; want %v after 1", err, calls, stop)
	}
	for _, ids := range [][2]string{{"nope", "s2019-11"}, {"s2019-10", "nope"}} {
		_, err := report.Diff(context.Background(), st, ids[0], ids[1], report.Options{}, func(report.Change) error { return nil })
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Diff(%s, %s) = %v, want ErrNotFound", ids[0], ids[1], err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := report.Diff(ctx, st, "s2019-10", "s2019-11", report.Options{}, func(report.Change) error { return nil }); err == nil {
		t.Error("Diff with a cancelled context succeeded")
	}
}

// TestDiffLevels: hand-made pairs for each kind of change.
func TestDiffLevels(t *testing.T) {
	q := func(studies, images int64, retrieve probe.Retrieve) probe.Exposure {
		return probe.Exposure{Level: probe.LevelQuery, Studies: studies, Instances: images, StudiesExact: true, Retrieve: retrieve}
	}
	for _, tc := range []struct {
		name     string
		old, new *probe.Exposure
		want     string // "" for no change
	}{
		{"unchanged", ptr(q(10, 100, probe.RetrieveRefused)), ptr(q(10, 100, probe.RetrieveRefused)), ""},
		{"more images", ptr(q(10, 100, probe.RetrieveRefused)), ptr(q(10, 101, probe.RetrieveRefused)), "grew"},
		{"fewer images", ptr(q(10, 100, probe.RetrieveRefused)), ptr(q(10, 99, probe.RetrieveRefused)), "shrank"},
		{"retrieval gained", ptr(q(10, 100, probe.RetrieveRefused)), ptr(q(10, 100, probe.RetrieveAccepted)), "grew"},
		{"retrieval lost", ptr(q(10, 100, probe.RetrieveVerified)), ptr(q(10, 100, probe.RetrieveRefused)), "shrank"},
		{"protected to query", &probe.Exposure{Level: probe.LevelProtected}, ptr(q(1, 1, probe.RetrieveRefused)), "appeared"},
		{"query to echo", ptr(q(1, 1, probe.RetrieveRefused)), &probe.Exposure{Level: probe.LevelEcho}, "closed"},
		{"echo to protected", &probe.Exposure{Level: probe.LevelEcho}, &probe.Exposure{Level: probe.LevelProtected}, ""},
		{"new, not accessible", nil, &probe.Exposure{Level: probe.LevelEcho}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newMemStore()
			st.add("old", tc.old)
			st.add("new", tc.new)
			var got string
			_, err := report.Diff(context.Background(), st, "old", "new", report.Options{}, func(c report.Change) error {
				got = c.Kind.String()
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("change %q, want %q", got, tc.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestDiffGolden: the text and JSON forms of a diff of the fixture, against golden files.
func TestDiffGolden(t *testing.T) {
	st := fixtureStore(t)
	g, a := fixtureGeo(t)
	for _, tc := range []struct {
		name string
		new  func(io.Writer) report.DiffWriter
	}{
		{"diff.txt", report.NewDiffText},
		{"diff.json", report.NewDiffJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := tc.new(&buf)
			sum, err := report.Diff(context.Background(), st, "s2019-10", "s2019-11", report.Options{Geo: g, ASN: a, Groups: []report.Grouping{report.GroupRegion}}, w.Change)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Summary(sum); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "golden", tc.name), buf.Bytes())
			if strings.HasSuffix(tc.name, ".json") {
				var doc struct {
					Changes []report.Change
					Summary report.DiffSummary
				}
				if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
					t.Fatalf("diff JSON does not parse: %v", err)
				}
				if len(doc.Changes) != 8 || doc.Summary.Counts != sum.Counts {
					t.Errorf("diff JSON has %d changes and counts %+v; want 8 and %+v", len(doc.Changes), doc.Summary.Counts, sum.Counts)
				}
			}
		})
	}
	// No change at all still makes a valid document.
	var buf bytes.Buffer
	w := report.NewDiffJSON(&buf)
	sum, err := report.Diff(context.Background(), st, "s2019-11", "s2019-11", report.Options{}, w.Change)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Summary(sum); err != nil {
		t.Fatal(err)
	}
	if !json.Valid(buf.Bytes()) {
		t.Errorf("empty diff JSON is not valid: %s", buf.String())
	}
}
