package dicomprobe

import (
	"context"

	"github.com/pacswatch/pacswatch/internal/dicom/ul"
	"github.com/pacswatch/pacswatch/internal/probe"
)

// measure counts what the association exposes (studies, instances, modalities) and tests
// retrieval, filling r.Exposure and r.DICOM.Services. It reports false when the association
// ended while measuring (r then says why), true when the caller should release it.
func (p *Prober) measure(ctx context.Context, a *ul.Assoc, r *probe.Result) bool {
	return true // TODO(issue 4): counting and retrieval
}
