package probe

import (
	"context"
	"slices"

	"github.com/pacswatch/pacswatch/internal/targets"
)

// ByPort is a Prober that sends each target to the DICOM or the web Prober by its port (SPEC
// --web): a port in WebPorts only goes to Web, any other port to DICOM, and a port in both
// lists to DICOM first, then, when it answered, to Web too, whose records join the DICOM
// result (see JoinWeb). Web may be nil when WebPorts is empty.
type ByPort struct {
	DICOM, Web           Prober
	DICOMPorts, WebPorts []uint16
}

var _ Prober = ByPort{}

// Probe probes t with the Prober its port names.
func (b ByPort) Probe(ctx context.Context, t targets.Target) Result {
	isDICOM, isWeb := slices.Contains(b.DICOMPorts, t.Port), slices.Contains(b.WebPorts, t.Port)
	switch {
	case isWeb && !isDICOM:
		return b.Web.Probe(ctx, t)
	case isWeb && isDICOM:
		r := b.DICOM.Probe(ctx, t)
		JoinWeb(ctx, &r, b.Web, t)
		return r
	}
	return b.DICOM.Probe(ctx, t)
}

// JoinWeb probes t, the target of r, with the web Prober w and puts the web records it finds
// in r, when r's port answered (its status is neither closed nor filtered), with the caveats
// about them (BoundWeb's); it keeps nothing else of w's result.
func JoinWeb(ctx context.Context, r *Result, w Prober, t targets.Target) {
	if r.Status == StatusClosed || r.Status == StatusFiltered {
		return
	}
	wr := w.Probe(ctx, t)
	r.Web = wr.Web
	if wr.Exposure == nil || len(wr.Exposure.Caveats) == 0 {
		return
	}
	if r.Exposure == nil {
		r.Exposure = &Exposure{Level: LevelNotDICOM}
	}
	for _, c := range wr.Exposure.Caveats {
		r.Exposure.AddCaveat(c.Kind, c.Reason)
	}
}
