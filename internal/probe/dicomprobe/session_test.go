package dicomprobe

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/dicomtest"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/targets"
)

// fakeWeb is a web Prober that finds one front end, and counts its calls.
type fakeWeb struct{ calls int }

func (w *fakeWeb) Probe(_ context.Context, t targets.Target) probe.Result {
	w.calls++
	return probe.Result{IP: t.Addr, Port: t.Port, Status: probe.StatusOpen, Web: []probe.Web{{URL: "http://" + t.String() + "/", Product: "Orthanc"}}}
}

// sameRecord fails unless a and b are the same record but for their time.
func sameRecord(t *testing.T, a, b probe.Result) {
	t.Helper()
	a.Time, b.Time = time.Time{}, time.Time{}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Errorf("records differ:\n%s\n%s", ja, jb)
	}
}

// TestSessionSteps drives a session step by step, as an audit would, and gets Probe's record;
// each step says whether the next can follow, and a step out of turn does nothing.
func TestSessionSteps(t *testing.T) {
	tree := dicomtest.NewTree(9, 20)
	srv := dicomtest.Start(t, dicomtest.Config{Tree: tree, ComputedCounts: true})
	tgt := target(t, srv.Addr())
	ctx := context.Background()
	p := New(Config{Depth: DepthQuery, Timeout: 5 * time.Second})

	s := p.NewSession(tgt)
	if s.Associate(ctx) || s.Echo(ctx) || s.Count(ctx) || s.Retrieve(ctx) {
		t.Fatal("a step before Connect went on")
	}
	if r := s.Result(); r.Status != 0 || r.DICOM != nil {
		t.Fatalf("result before Connect: %+v", r)
	}
	if srv.Stats().Connections != 0 {
		t.Fatal("a step before Connect connected")
	}
	if !s.Connect(ctx) || s.Result().Status != probe.StatusOpen {
		t.Fatalf("Connect: %+v", s.Result())
	}
	if s.Connect(ctx) {
		t.Error("a second Connect went on")
	}
	if s.Retrieve(ctx) {
		t.Error("Retrieve before Count went on")
	}
	if !s.Associate(ctx) {
		t.Fatalf("Associate: %+v", s.Result())
	}
	if r := s.Result(); r.DICOM.Association != probe.AssociationAccepted || r.Exposure.Level != probe.LevelEcho || r.DICOM.AECheck != probe.AECheckNone {
		t.Errorf("after Associate: %+v %+v", r.DICOM, r.Exposure)
	}
	w := &fakeWeb{}
	if s.Web(ctx, w) || w.calls != 0 {
		t.Error("Web ran while the association was up")
	}
	if !s.Echo(ctx) || !s.Result().DICOM.Services.Echo {
		t.Errorf("Echo: %+v", s.Result().DICOM)
	}
	if !s.Count(ctx) || s.Result().Exposure.Studies != int64(tree.Len()) || s.Result().Exposure.Level != probe.LevelQuery {
		t.Errorf("Count: %+v", s.Result().Exposure)
	}
	if !s.Retrieve(ctx) || s.Result().Exposure.Level != probe.LevelRetrieve {
		t.Errorf("Retrieve: %+v", s.Result().Exposure)
	}
	s.Close(ctx)
	s.Close(ctx) // again: nothing to do
	if s.Echo(ctx) || s.Count(ctx) || s.Retrieve(ctx) {
		t.Error("a step after Close went on")
	}
	stepped := s.Result()
	checkPrivate(t, stepped, treeUIDs(tree)...)

	if !s.Web(ctx, w) || w.calls != 1 || len(s.Result().Web) != 1 {
		t.Errorf("Web after Close: %d calls, %+v", w.calls, s.Result().Web)
	}
	sameRecord(t, stepped, p.Probe(ctx, tgt))
	for deadline := time.Now().Add(2 * time.Second); srv.Stats().Active != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open after Close", srv.Stats().Active)
		}
	}
}

// TestSessionClosedPort: a port that refuses ends the session at Connect; Web is not tried.
func TestSessionClosedPort(t *testing.T) {
	srv := dicomtest.Start(t, dicomtest.Config{})
	tgt := target(t, srv.Addr())
	srv.Close()
	ctx := context.Background()
	s := New(Config{Depth: DepthQuery, Timeout: time.Second}).NewSession(tgt)
	defer s.Close(ctx)
	if s.Connect(ctx) || s.Associate(ctx) {
		t.Fatal("steps went on at a closed port")
	}
	if r := s.Result(); r.Status != probe.StatusClosed || r.Error != "connection refused" {
		t.Errorf("result %+v, want closed", r)
	}
	w := &fakeWeb{}
	if s.Web(ctx, w) || w.calls != 0 {
		t.Error("Web probed a closed port")
	}
}
