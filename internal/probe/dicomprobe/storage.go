package dicomprobe

import (
	"context"

	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/probe"
)

// storageContexts propose each of dimse.StorageClasses as a storage SCU (no role selection):
// what a modality sending images proposes.
var storageContexts = dimse.Propose(dimse.StorageClasses...)

// ProposeStorage asks whether the peer would take images from us (SPEC audit: storage accepted
// from anyone, a record tampering risk): on an association of its own, with the called AE title
// that was accepted, over TLS when the first ran over it, it proposes a storage presentation
// context for each of dimse.StorageClasses (PS3.4 Annex B) and records in Services.Store whether
// the peer accepted any. It never sends an object: the association is released as soon as the
// A-ASSOCIATE-AC is read.
//
// It runs only once Close has ended the session's exchange (one association at a time), and
// only when an association was accepted before (the peer's Implementation Class UID is known,
// PS3.7 D.3.3.2). It reports whether a storage context was accepted.
func (s *Session) ProposeStorage(ctx context.Context) bool {
	d := s.r.DICOM
	if s.conn != nil || s.a != nil || d == nil || d.ImplementationClassUID == "" {
		return false
	}
	d.Services.Store = false
	a, err := s.p.reassociate(ctx, &s.r, storageContexts, nil)
	s.log.Debug("propose storage", "error", probe.SafeError(err))
	if err != nil {
		return false
	}
	for _, c := range storageContexts {
		if _, ok := a.Context(c.AbstractSyntax); ok {
			d.Services.Store = true
			break
		}
	}
	s.p.release(ctx, a)
	return d.Services.Store
}
