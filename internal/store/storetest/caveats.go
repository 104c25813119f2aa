package storetest

// Tests of what issue 15 added to the store: counts kept apart from the totals (store.ApartOf)
// in Systems, and caveats added after a scan (AddCaveats).

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// caveated returns port(...) with caveats.
func caveated(scanID, ip string, p uint16, studies, instances int64, cs ...probe.Caveat) probe.Result {
	r := port(scanID, ip, p, probe.LevelRetrieve, studies, instances, probe.RetrieveAccepted)
	r.Exposure.Caveats = cs
	return r
}

// testSystemsApart: a capped count makes a system found and accessible with no studies in the
// totals; an implausible or honeypot caveat leaves the port out, so another port of its host
// represents it.
func testSystemsApart(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := mustOpen(t, open)
	sc := createScan(t, s, newScan())
	rs := []probe.Result{
		port(sc.ID, "127.0.0.1", 104, probe.LevelQuery, 10, 100, probe.RetrieveRefused),
		caveated(sc.ID, "127.0.0.2", 104, 1<<20, 5<<20, probe.Caveat{Kind: probe.CaveatCapped, Reason: "1048576 distinct studies, the cap"}),
		// .3: its implausible port is left out; the echo port represents it.
		caveated(sc.ID, "127.0.0.3", 104, 1, 16777216, probe.Caveat{Kind: probe.CaveatImplausible, Reason: "NumberOfStudyRelatedInstances 16777216 in one study"}),
		port(sc.ID, "127.0.0.3", 4242, probe.LevelEcho, 0, 0, probe.RetrieveUntested),
		// .4: a honeypot alone: no system.
		caveated(sc.ID, "127.0.0.4", 104, 10, 10, probe.Caveat{Kind: probe.CaveatHoneypot, Reason: "DICOMHawk fingerprint"}),
		// .5: an estimate is labelled, and summed.
		caveated(sc.ID, "127.0.0.5", 104, 20, 200, probe.Caveat{Kind: probe.CaveatEstimate, Reason: "instances from a sample"}),
	}
	if err := s.PutResults(ctx, sc.ID, rs, store.Progress{Done: uint64(len(rs))}); err != nil {
		t.Fatal(err)
	}
	want := store.Systems{Found: 4, Accessible: 3, Studies: 10 + 20, Images: 100 + 200, StudiesImageAccess: 20, ImagesAccessible: 200}
	if got, err := s.Systems(ctx, sc.ID); err != nil || got != want {
		t.Errorf("Systems = %+v, %v\nwant %+v", got, err, want)
	}
	if ref := store.SystemsOf(readResults(t, s, sc.ID)); ref != want {
		t.Errorf("SystemsOf = %+v\nwant %+v", ref, want)
	}
}

// testAddCaveats: caveats added after the fact are stored once, a honeypot caveat sets
// dicom.honeypot and takes the system out of Systems, and a mark for a result not stored
// changes nothing.
func testAddCaveats(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := mustOpen(t, open)
	sc := createScan(t, s, newScan())
	other := createScan(t, s, newScan())
	rs := []probe.Result{
		port(sc.ID, "127.0.0.1", 104, probe.LevelQuery, 10, 100, probe.RetrieveRefused),
		port(sc.ID, "127.0.0.2", 11112, probe.LevelQuery, 7, 70, probe.RetrieveRefused),
	}
	if err := s.PutResults(ctx, sc.ID, rs, store.Progress{Done: 2}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutResults(ctx, other.ID, []probe.Result{port(other.ID, "127.0.0.2", 11112, probe.LevelQuery, 7, 70, probe.RetrieveRefused)}, store.Progress{Done: 1}); err != nil {
		t.Fatal(err)
	}
	hp := probe.Caveat{Kind: probe.CaveatHoneypot, Reason: "one of 3 hosts serving the same 7 studies\x00"}
	mark := store.Mark{IP: netip.MustParseAddr("127.0.0.2"), Port: 11112, Caveat: hp}
	for range 2 { // the second time changes nothing
		if err := s.AddCaveats(ctx, sc.ID, []store.Mark{mark}); err != nil {
			t.Fatalf("AddCaveats: %v", err)
		}
	}
	got := readResults(t, s, sc.ID)
	if len(got) != 2 || got[1].DICOM == nil || !got[1].DICOM.Honeypot || got[1].Exposure == nil ||
		len(got[1].Exposure.Caveats) != 1 || got[1].Exposure.Caveats[0].Reason != "one of 3 hosts serving the same 7 studies" {
		t.Fatalf("after AddCaveats, results = %+v", got)
	}
	if got[0].Exposure.Caveats != nil || got[0].DICOM.Honeypot {
		t.Errorf("an unmarked result changed: %+v", got[0])
	}
	want := store.Systems{Found: 1, Accessible: 1, Studies: 10, Images: 100}
	if sys, err := s.Systems(ctx, sc.ID); err != nil || sys != want {
		t.Errorf("Systems after a honeypot mark = %+v, %v, want %+v", sys, err, want)
	}
	if rs := readResults(t, s, other.ID); len(rs) != 1 || rs[0].DICOM.Honeypot {
		t.Errorf("the same address in another scan changed: %+v", rs)
	}

	// A mark for a port not stored fails the whole batch.
	capped := store.Mark{IP: netip.MustParseAddr("127.0.0.1"), Port: 104, Caveat: probe.Caveat{Kind: probe.CaveatCapped}}
	missing := store.Mark{IP: netip.MustParseAddr("127.0.0.1"), Port: 4242, Caveat: hp}
	if err := s.AddCaveats(ctx, sc.ID, []store.Mark{capped, missing}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("AddCaveats with a result not stored: %v, want ErrNotFound", err)
	}
	if rs := readResults(t, s, sc.ID); rs[0].Exposure.Caveats != nil {
		t.Errorf("a failed AddCaveats changed a result: %+v", rs[0].Exposure)
	}
	if err := s.AddCaveats(ctx, "no-such-scan", []store.Mark{capped}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("AddCaveats of an unknown scan: %v, want ErrNotFound", err)
	}
}
