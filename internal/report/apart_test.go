package report_test

import (
	"context"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/report"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/memstore"
)

// apartResult is an accessible DICOM port with the given counts and caveats.
func apartResult(ip string, studies, instances int64, cs ...probe.Caveat) probe.Result {
	return probe.Result{IP: netip.MustParseAddr(ip), Port: 104, Status: probe.StatusOpen, Time: time.Unix(1e9, 0),
		DICOM: &probe.DICOM{Association: probe.AssociationAccepted, Product: "DCMTK", ImplementationVersion: "OFFIS_DCMTK_367"},
		Exposure: &probe.Exposure{Level: probe.LevelQuery, Studies: studies, StudiesExact: true, Instances: instances,
			InstancesSource: probe.InstancesSourceStudyAttr, Retrieve: probe.RetrieveRefused, Caveats: cs}}
}

// TestKeptApart: hostile claims (a huge instance count, a UID-less flood, a huge web count), a
// capped archive and a honeypot leave the totals as the honest archives make them; each is in
// its own column and named under caveats; an open Orthanc REST API whose DICOM side refuses
// queries is a system accessible on the web, with its studies and its product.
func TestKeptApart(t *testing.T) {
	ctx := context.Background()
	honest := []probe.Result{apartResult("192.0.2.1", 100, 1000), apartResult("192.0.2.2", 50, 400)}
	// The same archive on DICOM and on the web counts once, on the DICOM side.
	both := apartResult("192.0.2.3", 30, 300)
	both.Web = []probe.Web{{URL: "http://192.0.2.3:8042/", Product: "Orthanc", Version: "1.10.1", Auth: probe.AuthNone, Studies: 30, Instances: 300}}
	honest = append(honest, both)

	build := func(extra ...probe.Result) *report.Report {
		t.Helper()
		st := memstore.New()
		sc, err := st.CreateScan(ctx, store.Scan{Name: "n"})
		if err != nil {
			t.Fatal(err)
		}
		rs := append(append([]probe.Result(nil), honest...), extra...)
		if err := st.PutResults(ctx, sc.ID, rs, store.Progress{Done: uint64(len(rs))}); err != nil {
			t.Fatal(err)
		}
		r, err := report.Build(ctx, st, report.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	want := build().Total.Metrics
	if want.Studies != 180 || want.SystemsAccessible != 3 {
		t.Fatalf("honest totals %+v", want)
	}

	huge := apartResult("198.51.100.1", 1, 16777216, probe.Caveat{Kind: probe.CaveatImplausible, Reason: "NumberOfStudyRelatedInstances 16777216 in one study"})
	flood := apartResult("198.51.100.2", 200000, 3_400_000_000_000, probe.Caveat{Kind: probe.CaveatImplausible, Reason: "200000 responses without a Study Instance UID"})
	webHuge := apartResult("198.51.100.3", 0, 0)
	webHuge.Exposure.Level = probe.LevelEcho
	webHuge.Web = []probe.Web{{URL: "http://198.51.100.3/", Product: "Orthanc", Auth: probe.AuthNone, Studies: math.MaxInt64, Instances: math.MaxInt64}}
	capped := apartResult("198.51.100.4", 1<<20, 5<<20, probe.Caveat{Kind: probe.CaveatCapped, Reason: "1048576 distinct studies, the cap"})
	honeypot := apartResult("198.51.100.5", 10, 10, probe.Caveat{Kind: probe.CaveatHoneypot, Reason: "known honeypot fingerprint (DICOMHawk)"})
	rest := apartResult("198.51.100.6", 0, 0)
	rest.Exposure.Level = probe.LevelEcho
	rest.Web = []probe.Web{
		{URL: "http://198.51.100.6:8042/", Product: "Orthanc", Version: "1.10.1", Auth: probe.AuthNone, Studies: 1000, Instances: 5000},
		{URL: "http://198.51.100.6:8042/dicom-web/", Product: "Orthanc", Version: "1.10.1", Auth: probe.AuthNone, Studies: 1000, Instances: 5000, DICOMweb: true},
	}
	locked := apartResult("198.51.100.7", 0, 0)
	locked.Exposure.Level = probe.LevelEcho
	locked.Web = []probe.Web{{URL: "http://198.51.100.7:8042/", Product: "Orthanc", Auth: probe.AuthBasic, Studies: 0}}

	r := build(huge, flood, webHuge, capped, honeypot, rest, locked)
	got := r.Total.Metrics
	// The capped archive, the open REST API's host and the locked one are systems found; the
	// capped one is accessible, without studies in the sums.
	wantNow := want
	wantNow.SystemsFound += 4 // webHuge, capped, rest, locked (echo or above)
	wantNow.SystemsAccessible++
	if got != wantNow {
		t.Errorf("totals %+v\nwant   %+v (the honest studies and images only)", got, wantNow)
	}
	wantApart := report.Apart{CappedSystems: 1, CappedStudies: 1 << 20, CappedImages: 5 << 20, ImplausibleSystems: 2, HoneypotSystems: 1,
		WebSystems: 1, WebStudies: 1000, WebImages: 5000}
	if r.Total.Apart != wantApart {
		t.Errorf("apart %+v\nwant  %+v", r.Total.Apart, wantApart)
	}
	named := map[string]string{}
	for _, h := range r.Caveats.Hosts {
		named[h.Addr] = h.Kind
	}
	for addr, kind := range map[string]string{"198.51.100.1:104": "implausible", "198.51.100.2:104": "implausible",
		"198.51.100.4:104": "capped", "198.51.100.5:104": "honeypot"} {
		if named[addr] != kind {
			t.Errorf("caveats name %s as %q, want %q (%+v)", addr, named[addr], kind, r.Caveats.Hosts)
		}
	}
	orthanc := false
	for _, p := range r.Products {
		if p.Product == "Orthanc" && p.Version == "1.10.1" {
			orthanc = p.Systems == 2 // the REST host, and the host open on both sides
		}
	}
	if !orthanc {
		t.Errorf("products %+v, want Orthanc 1.10.1 (named by the web side) on 2 systems", r.Products)
	}
}
