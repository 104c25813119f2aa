package dicomprobe

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/pacswatch/pacswatch/internal/dicom/dicomtest"
	"github.com/pacswatch/pacswatch/internal/probe"
)

// TestAssociateOutcome checks what a record says of the called AE title after guessing: the
// title that was accepted, or that got past the called-AE check; none when every title was
// refused (issue 15: not "IOCM_EXPIRED", the last title tried); and the depth probed at.
func TestAssociateOutcome(t *testing.T) {
	for _, tc := range []struct {
		name        string
		server      dicomtest.Config
		cfg         Config
		association probe.Association
		calledAE    string
		aeCheck     probe.AECheck
		reason      int // of the rejection, 0 when accepted
		tries       int64
	}{
		{"no check", dicomtest.Config{}, Config{}, probe.AssociationAccepted, GenericAE, probe.AECheckNone, 0, 1},
		{"conquest's title, guessed", dicomtest.Config{AETitle: "CONQUESTSRV1", CheckCalled: true}, Config{},
			probe.AssociationAccepted, "CONQUESTSRV1", probe.AECheckCalled, 0, 3},
		{"a title no dictionary has", dicomtest.Config{AETitle: "PACS_SECRET", CheckCalled: true}, Config{},
			probe.AssociationRejected, "", probe.AECheckCalled, 7, 8},
		{"the right title, calling AE refused", dicomtest.Config{AETitle: "ORTHANC", CheckCalled: true, AllowedCalling: []string{"MODALITY01"}}, Config{},
			probe.AssociationRejected, "ORTHANC", probe.AECheckCalling, 3, 2},
		{"a fixed title refused", dicomtest.Config{AETitle: "PACS_SECRET", CheckCalled: true}, Config{CalledAE: "MY_GUESS"},
			probe.AssociationRejected, "MY_GUESS", probe.AECheckCalled, 7, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := dicomtest.Start(t, tc.server)
			tc.cfg.Depth = DepthEcho
			r := New(tc.cfg).Probe(context.Background(), target(t, s.Addr()))
			js, _ := json.Marshal(r)
			d := r.DICOM
			if d == nil || d.Association != tc.association || d.CalledAE != tc.calledAE || d.AECheck != tc.aeCheck {
				t.Fatalf("got %s\nwant association %v called_ae %q ae_check %v", js, tc.association, tc.calledAE, tc.aeCheck)
			}
			if (d.Reject == nil) != (tc.reason == 0) || d.Reject != nil && d.Reject.Reason != tc.reason {
				t.Errorf("reject %+v, want reason %d", d.Reject, tc.reason)
			}
			if r.Depth != "echo" {
				t.Errorf("depth %q, want echo", r.Depth)
			}
			if got := s.Stats().Connections; got != tc.tries {
				t.Errorf("%d connections, want %d (one per title tried)", got, tc.tries)
			}
		})
	}
}
