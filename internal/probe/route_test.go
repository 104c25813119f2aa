package probe

import (
	"context"
	"net/netip"
	"testing"

	"github.com/pacswatch/pacswatch/internal/targets"
)

// fakeProber answers every target with its result, and counts its calls.
type fakeProber struct {
	r     Result
	calls int
}

func (f *fakeProber) Probe(_ context.Context, t targets.Target) Result {
	f.calls++
	r := f.r
	r.IP, r.Port = t.Addr, t.Port
	return r
}

func TestByPort(t *testing.T) {
	web := []Web{{URL: "http://127.0.0.1:8042/", Product: "Orthanc"}}
	for _, tc := range []struct {
		name        string
		port        uint16
		dicomStatus Status
		wantDICOM   int // calls
		wantWeb     int
		wantWebRecs bool
	}{
		{"DICOM port", 11112, StatusOpen, 1, 0, false},
		{"unlisted port goes to DICOM", 9999, StatusOpen, 1, 0, false},
		{"web port", 8080, StatusOpen, 0, 1, true},
		{"both, open", 8042, StatusOpen, 1, 1, true},
		{"both, error", 8042, StatusError, 1, 1, true},
		{"both, closed", 8042, StatusClosed, 1, 0, false},
		{"both, filtered", 8042, StatusFiltered, 1, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &fakeProber{r: Result{Status: tc.dicomStatus, DICOM: &DICOM{CalledAE: "ANY-SCP"}}}
			w := &fakeProber{r: Result{Status: StatusOpen, Web: web}}
			b := ByPort{DICOM: d, Web: w, DICOMPorts: []uint16{104, 11112, 8042}, WebPorts: []uint16{8080, 8042}}
			r := b.Probe(context.Background(), targets.Target{Addr: netip.MustParseAddr("127.0.0.1"), Port: tc.port})
			if d.calls != tc.wantDICOM || w.calls != tc.wantWeb {
				t.Errorf("calls: DICOM %d web %d, want %d %d", d.calls, w.calls, tc.wantDICOM, tc.wantWeb)
			}
			if got := len(r.Web) > 0; got != tc.wantWebRecs {
				t.Errorf("web records %v, want %v", r.Web, tc.wantWebRecs)
			}
			if tc.wantDICOM > 0 && (r.DICOM == nil || r.Status != tc.dicomStatus) {
				t.Errorf("result %+v: want the DICOM prober's", r)
			}
		})
	}
}
