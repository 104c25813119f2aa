package guard

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dicomtest"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
)

func TestEchoAndFindThroughGuard(t *testing.T) {
	up := upstream(t, 25, nil)
	g := startGuard(t, up.Addr(), basePolicy)
	a := mustDial(t, g.Addr, "ADMIN")
	ctx := context.Background()
	if st, err := dimse.Echo(ctx, a); err != nil || st != dimse.Success {
		t.Fatalf("C-ECHO = %v, %v", st, err)
	}
	st, n := find(t, a, studyQuery())
	if st != dimse.Success || n != 25 {
		t.Fatalf("universal C-FIND = %v with %d matches, want success with 25", st, n)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatalf("release: %v", err)
	}
	end := g.Audit.wait(t, func(r Record) bool { return r.Event == EventAssociationEnd })
	if end.End != endReleased || end.Requests != 2 || end.BytesIn == 0 || end.BytesOut == 0 || end.Peer != "admin" {
		t.Errorf("association-end = %+v", end)
	}
	rec := g.Audit.wait(t, func(r Record) bool { return r.Event == EventRequest && r.Service == "find" })
	if rec.Decision != "forwarded" || rec.Status != "0x0000" || rec.Results == nil || *rec.Results != 25 ||
		rec.Level != "STUDY" || rec.Universal == nil || !*rec.Universal || rec.Calling != "ADMIN" || rec.BytesOut == 0 {
		t.Errorf("find record = %+v", rec)
	}
	if up.Stats().Find != 1 || up.Stats().Echo != 1 {
		t.Errorf("upstream saw %+v", up.Stats())
	}
	if g.Active() != 0 {
		t.Errorf("active = %d after release", g.Active())
	}
}

func TestAssociationRejections(t *testing.T) {
	up := upstream(t, 1, nil)
	g := startGuard(t, up.Addr(), "called_ae: [ARCHIVE]\n"+basePolicy)
	tests := []struct {
		calling, called string
		reason          byte
		refusal         string
	}{
		{"PACSWATCH", "ARCHIVE", 3, "no-matching-peer"},
		{"FARAWAY", "ARCHIVE", 3, "no-matching-peer"}, // right AE, wrong source
		{"reader", "ARCHIVE", 3, "no-matching-peer"},  // AE titles compare exactly
		{"READER", "ANY-SCP", 7, "called-ae-not-allowed"},
	}
	for _, tt := range tests {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		contexts, _ := dimse.ProposeGet()
		_, err := ulDial(ctx, g.Addr, tt.called, tt.calling, contexts)
		cancel()
		rj, ok := rejected(err)
		if !ok || rj.Result != 1 || rj.Source != 1 || rj.Reason != tt.reason {
			t.Errorf("%s→%s: %v, want A-ASSOCIATE-RJ 1/1/%d", tt.calling, tt.called, err, tt.reason)
		}
		g.Audit.wait(t, func(r Record) bool {
			return r.Event == EventAssociation && r.Calling == tt.calling && r.CalledAE == tt.called &&
				r.Result == "rejected" && r.Refusal == tt.refusal && r.Reject != nil && r.Reject.Reason == tt.reason
		})
	}
	if n := up.Stats().Connections; n != 0 {
		t.Errorf("upstream saw %d connections from refused peers", n)
	}
}

func TestRequestRefusals(t *testing.T) {
	up := upstream(t, 10, map[string]string{"DEST": "127.0.0.1:1", "OTHER": "127.0.0.1:1"})
	g := startGuard(t, up.Addr(), basePolicy)
	a := mustDial(t, g.Addr, "READER")
	ctx := context.Background()

	st, n := find(t, a, studyQuery())
	if st != dimse.RefusedNotAuthorized || n != 0 {
		t.Errorf("universal C-FIND by reader = %v, %d matches; want refused", st, n)
	}
	uid := up.Stats() // the upstream must not have seen it
	if uid.Find != 0 {
		t.Fatalf("upstream saw a refused C-FIND")
	}
	st, _ = find(t, a, studyQuery(dicom.NewString(dicom.StudyDate, "20200101-")))
	if st != dimse.Success {
		t.Errorf("restricted C-FIND = %v, want success", st)
	}
	var q dicom.Dataset
	q.Set(dicom.NewString(dicom.QueryRetrieveLevel, "PATIENT"))
	q.Set(dicom.NewString(dicom.PatientID, "X*"))
	if st, _ := find(t, a, q); st != dimse.RefusedNotAuthorized {
		t.Errorf("PATIENT-level C-FIND by reader = %v, want refused", st)
	}
	move := studyQuery(dicom.NewString(dicom.StudyInstanceUID, "1.2.3"))
	sub, err := dimse.Move(ctx, a, dimse.StudyRootMove, "OTHER", move)
	if err != nil || sub.Status != dimse.MoveDestinationUnknown {
		t.Errorf("C-MOVE to OTHER = %+v, %v; want 0xA801 from the guard", sub, err)
	}
	if up.Stats().Move != 0 {
		t.Errorf("upstream saw a C-MOVE to a destination that is not pinned")
	}
	// The association is still usable after refusals.
	if st, err := dimse.Echo(ctx, a); err != nil || st != dimse.Success {
		t.Fatalf("C-ECHO after refusals = %v, %v", st, err)
	}
	sub, err = dimse.Move(ctx, a, dimse.StudyRootMove, "DEST", move)
	if err != nil || sub.Status == dimse.MoveDestinationUnknown || up.Stats().Move != 1 {
		t.Errorf("C-MOVE to DEST = %+v, %v; upstream %+v", sub, err, up.Stats())
	}
	a.Release(ctx)
	for _, want := range []string{"universal-find-not-allowed", "level-not-allowed", "move-destination-not-allowed"} {
		g.Audit.wait(t, func(r Record) bool { return r.Event == EventRequest && r.Refusal == want && r.Decision == "refused" })
	}
	if !strings.Contains(g.Audit.String(), `"status":"0xA801"`) {
		t.Errorf("no 0xA801 in the audit log")
	}
}

func TestGetThroughGuard(t *testing.T) {
	up := upstream(t, 3, nil)
	g := startGuard(t, up.Addr(), basePolicy)
	a := mustDial(t, g.Addr, "READER")
	ctx := context.Background()
	tree := dicomtest.NewTree(7, 3) // the upstream's
	got := 0
	sub, err := dimse.Get(ctx, a, dimse.StudyRootGet, studyQuery(dicom.NewString(dicom.StudyInstanceUID, tree.Studies[0].UID)),
		func(ctx context.Context, req dimse.StoreRequest, data io.Reader) (dimse.Status, error) {
			got++
			return dimse.Success, nil
		})
	if err != nil || sub.Status != dimse.Success || got == 0 {
		t.Fatalf("C-GET = %+v, %v, %d instances", sub, err, got)
	}
	a.Release(ctx)
	rec := g.Audit.wait(t, func(r Record) bool { return r.Event == EventRequest && r.Service == "get" })
	if rec.Instances == nil || *rec.Instances != got || rec.SubOps == nil || rec.SubOps.Completed != got {
		t.Errorf("get record = %+v, want %d instances", rec, got)
	}
}
