package dicomprobe

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"math/big"
	"net/netip"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
	"github.com/pacswatch/pacswatch/internal/probe"
)

// NoDestination is the C-MOVE destination AE title of the harmless retrieval test: no server
// should know it, so a server that moves answers "move destination unknown" (0xA801, dcmqrscp) or
// another failure (0xC000, Orthanc) and sends nothing anywhere.
const NoDestination = "PACSWATCH_NONE"

// retrieve tests retrieval (SPEC "Exposure levels") on a, where c counted at least one study, and
// fills r.Exposure.Retrieve, the level and r.DICOM.Services.Get/Move. The default tests move no
// data (PS3.4 §C.4.2, §C.4.3):
//   - C-MOVE of a study that exists (one c saw) to NoDestination;
//   - C-GET of a study UID made up on the spot, which matches nothing.
//
// A test answered with any status but a refusal (0x0122, 0x0124, 0x0211) makes retrieval
// "accepted"; an A-ABORT or a refused presentation context "refused". When a test's abort ends a,
// the other runs on a new association. With Config.VerifyRetrieve and C-GET accepted, a is
// released and verify proves retrieval on an association of its own.
//
// It reports whether a is still usable (it may have been released already, to open the
// association that verifies retrieval: releasing it again does nothing).
func (p *Prober) retrieve(ctx context.Context, a *ul.Assoc, r *probe.Result, c *counter) bool {
	d, e := r.DICOM, r.Exposure
	var inst instance
	if _, ok := a.Context(dimse.StudyRootGet); ok && p.cfg.VerifyRetrieve {
		var err error
		if inst, err = c.oneInstance(ctx); err != nil {
			r.Error = "c-find: " + errorText(err)
			a = nil
		}
	}
	tests := []struct {
		op, sop  string
		answered *bool
		run      func(context.Context, *ul.Assoc) (dimse.SubOps, error)
	}{
		{"c-move", dimse.StudyRootMove, &d.Services.Move, func(ctx context.Context, a *ul.Assoc) (dimse.SubOps, error) {
			return dimse.Move(ctx, a, dimse.StudyRootMove, NoDestination, studyIdentifier(c.sample))
		}},
		{"c-get", dimse.StudyRootGet, &d.Services.Get, func(ctx context.Context, a *ul.Assoc) (dimse.SubOps, error) {
			// Nothing matches, so nothing may come back: the main association proposes no storage
			// context, and any instance would end the test at once.
			return dimse.Get(ctx, a, dimse.StudyRootGet, studyIdentifier(randomUID()), refuseStore)
		}},
	}
	var (
		cur, own          = a, false // the association the tests run on; own: one retrieve opened
		reached, accepted bool
		getAccepted       bool
	)
	for _, t := range tests {
		if _, ok := c.a.Context(t.sop); !ok { // c.a: the counting association, even once it ended
			reached = true // the server refused the presentation context
			continue
		}
		if cur == nil {
			na, err := p.reassociate(ctx, r, contexts, nil)
			if err != nil {
				c.log.Debug("reassociate", "error", probe.SafeError(err))
				break
			}
			cur, own = na, true
		}
		tctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
		so, err := t.run(tctx, cur)
		cancel()
		c.log.Debug(t.op, "status", so.Status, "error", probe.SafeError(err))
		var ab *ul.AbortedError
		switch {
		case errors.Is(err, dimse.ErrStopped):
			// An instance came back for a study that does not exist: retrieval is open.
			*t.answered, accepted, reached = true, true, true
			cur = nil
		case err != nil:
			// The association ended: refused if the peer aborted it, untested if it timed out.
			reached = reached || errors.As(err, &ab)
			if cur == a {
				r.Error = t.op + ": " + errorText(err)
			}
			cur = nil
		default:
			*t.answered, reached = true, true
			if !refusal(so.Status) {
				accepted = true
				getAccepted = getAccepted || t.sop == dimse.StudyRootGet
			}
		}
	}
	alive := a != nil && cur == a
	switch {
	case accepted:
		e.Retrieve, e.Level = probe.RetrieveAccepted, probe.LevelRetrieve
	case reached:
		e.Retrieve = probe.RetrieveRefused
	}
	if getAccepted && inst.sop != "" {
		// One association at a time: release the counting one before opening the next.
		p.release(ctx, cur)
		cur = nil
		ok, err := p.verify(ctx, r, inst)
		c.log.Debug("verify retrieve", "verified", ok, "error", probe.SafeError(err))
		if ok {
			e.Retrieve = probe.RetrieveVerified
		}
	}
	if own {
		p.release(ctx, cur)
	}
	return alive
}

// refusal reports a C-MOVE or C-GET status that refuses the operation itself (PS3.4 §C.4.2.1.5,
// §C.4.3.1.4; PS3.7 Annex C): any other answer shows that the server would retrieve.
func refusal(s dimse.Status) bool {
	return s == dimse.SOPClassNotSupported || s == dimse.RefusedNotAuthorized || s == dimse.UnrecognizedOperation
}

// refuseStore ends a C-GET as soon as an instance starts to arrive, reading none of it.
func refuseStore(context.Context, dimse.StoreRequest, io.Reader) (dimse.Status, error) {
	return dimse.UnableToProcess, dimse.ErrStop
}

// studyIdentifier is a STUDY-level retrieve identifier (PS3.4 §C.4.2.1.4.1).
func studyIdentifier(uid string) dicom.Dataset {
	var id dicom.Dataset
	id.Set(dicom.NewString(dicom.QueryRetrieveLevel, "STUDY"))
	id.Set(dicom.NewString(dicom.StudyInstanceUID, uid))
	return id
}

// randomUID returns a new UID in the 2.25 arc, from 122 random bits as a UUID has (PS3.5 §B.2).
func randomUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // variant 10
	return "2.25." + new(big.Int).SetBytes(b[:]).String()
}

// An instance identifies one SOP instance for verify; its UIDs stay in memory only.
type instance struct{ study, series, sop string }

// oneInstance finds one instance of the sample study with a SERIES-level query and an
// IMAGE-level one, each cancelled at its first answer. Its sop is empty when none was found.
func (c *counter) oneInstance(ctx context.Context) (instance, error) {
	in := instance{study: c.sample}
	if c.budget < 2 {
		return in, nil
	}
	first := func(id dicom.Dataset, key dicom.Tag) (string, error) {
		var uid string
		n := 0
		_, err := c.find(ctx, id, dimse.AllowTags(key), func(ds *dicom.Dataset) error {
			uid, _ = ds.String(key)
			if n++; uid != "" || n >= c.maxResponses {
				return dimse.ErrStop
			}
			return nil
		})
		return uid, err
	}
	var id dicom.Dataset
	id.Set(dicom.NewString(dicom.QueryRetrieveLevel, "SERIES"))
	id.Set(dicom.NewString(dicom.StudyInstanceUID, in.study))
	id.Set(dicom.NewString(dicom.SeriesInstanceUID))
	var err error
	if in.series, err = first(id, dicom.SeriesInstanceUID); err != nil || in.series == "" {
		return in, err
	}
	id = dicom.Dataset{}
	id.Set(dicom.NewString(dicom.QueryRetrieveLevel, "IMAGE"))
	id.Set(dicom.NewString(dicom.StudyInstanceUID, in.study))
	id.Set(dicom.NewString(dicom.SeriesInstanceUID, in.series))
	id.Set(dicom.NewString(dicom.SOPInstanceUID))
	in.sop, err = first(id, dicom.SOPInstanceUID)
	return in, err
}

// verify proves retrieval (SPEC --verify-retrieve) on a new association proposing the storage
// contexts and SCP roles of a C-GET (PS3.4 §C.4.3.3): a C-GET of the one instance in, ended by an
// A-ABORT as soon as the first bytes of its data set arrive. It reports whether they made a
// plausible data element header; it keeps none of them.
func (p *Prober) verify(ctx context.Context, r *probe.Result, in instance) (bool, error) {
	proposed, roles := dimse.ProposeGet()
	a, err := p.reassociate(ctx, r, proposed, roles)
	if err != nil {
		return false, err
	}
	defer a.Close()
	var id dicom.Dataset
	id.Set(dicom.NewString(dicom.QueryRetrieveLevel, "IMAGE"))
	id.Set(dicom.NewString(dicom.StudyInstanceUID, in.study))
	id.Set(dicom.NewString(dicom.SeriesInstanceUID, in.series))
	id.Set(dicom.NewString(dicom.SOPInstanceUID, in.sop))
	got := false
	gctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	_, err = dimse.Get(gctx, a, dimse.StudyRootGet, id, func(_ context.Context, _ dimse.StoreRequest, data io.Reader) (dimse.Status, error) {
		var head [8]byte // one element header: tag, then VR and length or a 4-byte length
		if _, err := io.ReadFull(data, head[:]); err == nil {
			group := binary.LittleEndian.Uint16(head[:])
			got = group >= 0x0002 && group%2 == 0 // a standard element of a data set
		}
		return dimse.UnableToProcess, dimse.ErrStop
	})
	switch {
	case errors.Is(err, dimse.ErrStopped):
		return got, nil
	case err == nil:
		p.release(ctx, a) // answered without sending the instance
		return false, nil
	}
	return false, err
}

// reassociate opens one more association to r's host, over TLS when the first ran over it, with the
// called AE title that was accepted.
func (p *Prober) reassociate(ctx context.Context, r *probe.Result, proposed []ul.ContextProposal, roles []ul.RoleSelection) (*ul.Assoc, error) {
	conn, err := p.open(ctx, netip.AddrPortFrom(r.IP, r.Port).String(), r.DICOM.TLS)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	conn = trace(conn, p.cfg.Logger.With("target", netip.AddrPortFrom(r.IP, r.Port).String()))
	return ul.NewClient(ctx, conn, ul.Config{CalledAE: r.DICOM.CalledAE, CallingAE: p.cfg.CallingAE, Contexts: proposed, Roles: roles})
}

// release releases a within one step; a nil a is nothing to release.
func (p *Prober) release(ctx context.Context, a *ul.Assoc) {
	if a == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	_ = a.Release(ctx)
}
