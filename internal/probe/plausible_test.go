package probe_test

import (
	"context"
	"math"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/targets"
)

func TestCaveats(t *testing.T) {
	var e probe.Exposure
	if e.HasCaveat(probe.CaveatCapped) || !e.Summable() {
		t.Fatalf("empty exposure: has capped %v, summable %v", e.HasCaveat(probe.CaveatCapped), e.Summable())
	}
	e.AddCaveat(probe.CaveatCapped, "limit of 100")
	e.AddCaveat(probe.CaveatCapped, "limit of 100") // the same one again: kept once
	e.AddCaveat(probe.CaveatEstimate, "sample")
	if len(e.Caveats) != 2 || !e.HasCaveat(probe.CaveatCapped) || !e.HasCaveat(probe.CaveatEstimate) {
		t.Errorf("caveats %+v, want capped and estimate once each", e.Caveats)
	}
	if !e.Summable() {
		t.Error("a capped estimate is summable (as a lower bound)")
	}
	for _, kind := range []string{probe.CaveatImplausible, probe.CaveatHoneypot} {
		f := e
		f.Caveats = append([]probe.Caveat(nil), e.Caveats...)
		f.AddCaveat(kind, "x")
		if f.Summable() {
			t.Errorf("%s: summable", kind)
		}
	}
}

func TestBoundWeb(t *testing.T) {
	for _, tc := range []struct {
		name               string
		studies, instances int64
		wantKeep           bool
		wantCaveats        int
		wantInReason       string
	}{
		{"plausible", 1004, 70312, true, 0, ""},
		{"empty", 0, 0, true, 0, ""},
		{"at the study bound", probe.MaxHostStudies, probe.MaxHostStudies * 20, true, 0, ""},
		{"one study at the instance bound", 1, probe.MaxStudyInstances, true, 0, ""},
		{"one study beyond", 1, probe.MaxStudyInstances + 1, false, 1, "100001 instances in 1 studies"},
		{"no study, many instances", 0, probe.MaxStudyInstances + 1, false, 1, "instances"},
		{"too many studies", probe.MaxHostStudies + 1, 5, false, 1, "10000001 studies"},
		{"int64 max both", math.MaxInt64, math.MaxInt64, false, 1, "9223372036854775807 studies"},
		{"int64 max instances", 12, math.MaxInt64, false, 1, "9223372036854775807 instances in 12 studies"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := probe.Web{URL: "http://127.0.0.1:8042/", Product: "Orthanc", Studies: tc.studies, Instances: tc.instances}
			cs := probe.BoundWeb(&w)
			if len(cs) != tc.wantCaveats {
				t.Fatalf("caveats %+v, want %d", cs, tc.wantCaveats)
			}
			kept := w.Studies == tc.studies && w.Instances == tc.instances
			if kept != tc.wantKeep || !kept && (w.Studies != 0 || w.Instances != 0) {
				t.Errorf("counts %d/%d after BoundWeb; keep %v", w.Studies, w.Instances, tc.wantKeep)
			}
			for _, c := range cs {
				if c.Kind != probe.CaveatImplausible || !strings.Contains(c.Reason, tc.wantInReason) || !strings.Contains(c.Reason, "Orthanc at http://127.0.0.1:8042/") {
					t.Errorf("caveat %+v, want implausible naming the front end and %q", c, tc.wantInReason)
				}
			}
		})
	}
}

func TestJoinWebCaveats(t *testing.T) {
	caveat := probe.Caveat{Kind: probe.CaveatImplausible, Reason: "web: claims"}
	w := &fakeWeb{r: probe.Result{Status: probe.StatusOpen, Web: []probe.Web{{Product: "Orthanc"}},
		Exposure: &probe.Exposure{Level: probe.LevelNotDICOM, Caveats: []probe.Caveat{caveat}}}}
	for _, tc := range []struct {
		name string
		r    probe.Result
		want []probe.Caveat
	}{
		{"dicom exposure", probe.Result{Status: probe.StatusOpen, Exposure: &probe.Exposure{Level: probe.LevelQuery,
			Caveats: []probe.Caveat{{Kind: probe.CaveatCapped, Reason: "x"}}}},
			[]probe.Caveat{{Kind: probe.CaveatCapped, Reason: "x"}, caveat}},
		{"no exposure", probe.Result{Status: probe.StatusError}, []probe.Caveat{caveat}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			probe.JoinWeb(t.Context(), &r, w, targetOf())
			if r.Exposure == nil || !reflect.DeepEqual(r.Exposure.Caveats, tc.want) || len(r.Web) != 1 {
				t.Errorf("after JoinWeb: exposure %+v web %+v; want caveats %+v", r.Exposure, r.Web, tc.want)
			}
		})
	}
}

// fakeWeb answers every target with its result.
type fakeWeb struct{ r probe.Result }

func (f *fakeWeb) Probe(context.Context, targets.Target) probe.Result { return f.r }

func targetOf() targets.Target {
	return targets.Target{Addr: netip.MustParseAddr("127.0.0.1"), Port: 8042}
}
