package scp

import (
	"fmt"
	"net"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

const (
	// maxSubOps bounds the instances of one C-GET or C-MOVE: the counts of
	// the responses are 16-bit (PS3.7 Annex E.1).
	maxSubOps = 0xFFFF
	// maxFailedUIDs bounds the Failed SOP Instance UID List of a final
	// response.
	maxFailedUIDs = 1000
	// failedSOPInstanceUIDList is the tag of Failed SOP Instance UID List
	// (PS3.4 §C.4.2.1.5).
	failedSOPInstanceUIDList = dicom.Tag(0x00080058)
)

// subOp performs one C-STORE sub-operation and returns its status, or an
// error that ends the association.
type subOp func(st *Study, se *Series, in *Instance) (dimse.Status, error)

// retrieve answers a C-GET-RQ (PS3.4 §C.4.3) or a C-MOVE-RQ (§C.4.2): one
// C-STORE sub-operation per instance that matches, on the same association
// for C-GET and on a new one to the move destination for C-MOVE, with a
// pending response after each and a final response with the counts.
func (c *assoc) retrieve(ctxID byte, pc ul.Context, cmd dimse.Command) error {
	get := cmd.Field == dimse.CGetRQ
	refused := c.cfg.Refused.Move
	if get {
		refused = c.cfg.Refused.Get
	}
	if ok, err := c.refuse(refused, ctxID, cmd); ok {
		return err
	}
	q, ok, err := c.readQuery(ctxID, pc, cmd)
	if !ok {
		return err
	}
	if !sleep(c.s.ctx, c.cfg.Latency) {
		return errStop
	}
	total := 0
	var classes []string
	q.instances(c.cfg.Tree, func(_ *Study, _ *Series, in *Instance) bool {
		total++
		if !contains(classes, in.SOPClassUID) {
			classes = append(classes, in.SOPClassUID)
		}
		return total <= maxSubOps
	})
	if total > maxSubOps {
		return c.fail(ctxID, cmd, dimse.OutOfResourcesMatches, fmt.Sprintf("over %d instances", maxSubOps))
	}

	r := &retrieval{total: total}
	var store subOp
	if get {
		store = func(st *Study, se *Series, in *Instance) (dimse.Status, error) {
			return c.getStore(cmd, st, se, in, &r.cancelled)
		}
	} else {
		addr, ok := c.cfg.MoveDestinations[cmd.MoveDestination]
		if !ok {
			return c.fail(ctxID, cmd, dimse.MoveDestinationUnknown, "")
		}
		if total > 0 {
			sub, nc, err := c.dialMove(cmd.MoveDestination, addr, classes)
			if err != nil {
				zero, n := uint16(0), uint16(total)
				return c.respond(ctxID, dimse.Command{
					Field: dimse.CMoveRSP, AffectedSOPClassUID: cmd.AffectedSOPClassUID,
					MessageIDBeingRespondedTo: cmd.MessageID, Status: dimse.OutOfResourcesSubOps,
					Completed: &zero, Failed: &n, Warning: &zero,
					ErrorComment: trimComment("move destination: " + err.Error()),
				}, nil)
			}
			defer func() {
				sub.Release(c.dl.fresh())
				c.s.untrack(nc)
			}()
			store = func(st *Study, se *Series, in *Instance) (dimse.Status, error) {
				return c.moveStore(sub, cmd, st, se, in)
			}
		}
	}
	if err := c.subOps(ctxID, cmd, &q, r, store); err != nil {
		return err
	}
	return c.retrieved(ctxID, pc, cmd, r)
}

// retrieval is the progress of one C-GET or C-MOVE.
type retrieval struct {
	total                      int // instances that match
	completed, failed, warning uint16
	failedUIDs                 []string // at most maxFailedUIDs
	cancelled                  bool     // a C-CANCEL-RQ came
}

func (r *retrieval) remaining() uint16 {
	return uint16(r.total) - r.completed - r.failed - r.warning
}

// subOps runs store on each instance that q matches, with a pending response
// after each, until all are done, a C-CANCEL-RQ comes, or an error ends the
// association.
func (c *assoc) subOps(ctxID byte, cmd dimse.Command, q *query, r *retrieval, store subOp) error {
	var err error
	q.instances(c.cfg.Tree, func(st *Study, se *Series, in *Instance) bool {
		if !r.cancelled {
			r.cancelled, err = c.cancelled(cmd.MessageID)
		}
		if r.cancelled || err != nil {
			return false
		}
		var status dimse.Status
		if status, err = store(st, se, in); err != nil {
			return false
		}
		switch status.Class() {
		case dimse.ClassSuccess:
			r.completed++
		case dimse.ClassWarning:
			r.warning++
		default:
			r.failed++
			if len(r.failedUIDs) < maxFailedUIDs {
				r.failedUIDs = append(r.failedUIDs, in.SOPUID)
			}
		}
		remaining := r.remaining()
		err = c.respond(ctxID, dimse.Command{
			Field: cmd.Field | 0x8000, AffectedSOPClassUID: cmd.AffectedSOPClassUID,
			MessageIDBeingRespondedTo: cmd.MessageID, Status: dimse.Pending,
			Remaining: &remaining, Completed: &r.completed, Failed: &r.failed, Warning: &r.warning,
		}, nil)
		return err == nil
	})
	return err
}

// retrieved sends the final response of a C-GET or C-MOVE, with the counts
// and the Failed SOP Instance UID List.
func (c *assoc) retrieved(ctxID byte, pc ul.Context, cmd dimse.Command, r *retrieval) error {
	final := dimse.Command{
		Field: cmd.Field | 0x8000, AffectedSOPClassUID: cmd.AffectedSOPClassUID,
		MessageIDBeingRespondedTo: cmd.MessageID, Status: dimse.Success,
		Completed: &r.completed, Failed: &r.failed, Warning: &r.warning,
	}
	switch {
	case r.cancelled:
		remaining := r.remaining()
		final.Status, final.Remaining = dimse.Cancel, &remaining
	case r.failed > 0 && r.completed == 0 && r.warning == 0:
		final.Status = dimse.OutOfResourcesSubOps // every sub-operation failed
	case r.failed > 0 || r.warning > 0:
		final.Status = dimse.SubOpsWarning
	}
	var data []byte
	if len(r.failedUIDs) > 0 {
		var v []byte
		for i, uid := range r.failedUIDs {
			if i > 0 {
				v = append(v, '\\')
			}
			v = append(v, uid...)
		}
		data = appendElem(nil, failedSOPInstanceUIDList, dicom.VRUI, pc.TransferSyntax == dicom.ExplicitVRLittleEndian, v)
		final.HasDataset = true
	}
	return c.respond(ctxID, final, data)
}

// getStore sends one instance back to the C-GET SCU as a C-STORE-RQ on the
// same association (PS3.4 §C.4.3.3), on a context of its SOP class for which
// the SCU took the SCP role, and reads the C-STORE-RSP. A C-CANCEL-RQ for the
// C-GET read meanwhile sets *cancelled.
func (c *assoc) getStore(get dimse.Command, st *Study, se *Series, in *Instance, cancelled *bool) (dimse.Status, error) {
	sc, ok := c.storageContext(in.SOPClassUID)
	if !ok {
		return dimse.SOPClassNotSupported, nil
	}
	c.next++
	id := c.next
	c.buf = appendInstance(c.buf[:0], st, se, in, sc.TransferSyntax == dicom.ExplicitVRLittleEndian)
	rq := dimse.Command{
		Field: dimse.CStoreRQ, AffectedSOPClassUID: in.SOPClassUID, MessageID: id, Priority: get.Priority,
		HasDataset: true, AffectedSOPInstanceUID: in.SOPUID,
	}
	if err := c.a.Send(c.dl.stream(), sc.ID, rq.Encode(), c.buf); err != nil {
		return 0, fmt.Errorf("%w: send C-STORE-RQ: %w", errStop, err)
	}
	for {
		_, rsp, err := c.readCommand(c.dl.fresh())
		if err != nil {
			return 0, err
		}
		switch {
		case rsp.Field == dimse.CCancelRQ && rsp.MessageIDBeingRespondedTo == get.MessageID:
			c.s.st.cancels.Add(1)
			*cancelled = true
			if err := c.discardData(rsp); err != nil {
				return 0, err
			}
		case rsp.Field == dimse.CStoreRSP && rsp.MessageIDBeingRespondedTo == id:
			return rsp.Status, c.discardData(rsp)
		default:
			return 0, fmt.Errorf("%w: %v while waiting for C-STORE-RSP %d", dimse.ErrProtocol, rsp.Field, id)
		}
	}
}

// storageContext returns an accepted context of class on which the peer
// took the SCP role.
func (c *assoc) storageContext(class string) (ul.Context, bool) {
	if !proposesSCP(c.a.RQ(), class) {
		return ul.Context{}, false
	}
	return c.a.Context(class)
}

// dialMove opens the association of a C-MOVE's sub-operations to the move
// destination ae at addr, proposing the given storage classes.
func (c *assoc) dialMove(ae, addr string, classes []string) (*ul.Assoc, net.Conn, error) {
	ctx := c.dl.fresh()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	if !c.s.track(nc, false) {
		nc.Close()
		return nil, nil, errStop
	}
	proposals := make([]ul.ContextProposal, len(classes))
	for i, class := range classes {
		proposals[i] = ul.ContextProposal{
			AbstractSyntax:   class,
			TransferSyntaxes: []string{dicom.ExplicitVRLittleEndian, dicom.ImplicitVRLittleEndian},
		}
	}
	sub, err := ul.NewClient(ctx, nc, ul.Config{
		CalledAE:                  ae,
		CallingAE:                 c.cfg.AETitle,
		Contexts:                  proposals,
		MaxPDU:                    c.cfg.MaxPDU,
		ImplementationClassUID:    c.cfg.ImplementationClassUID,
		ImplementationVersionName: c.cfg.ImplementationVersionName,
	})
	if err != nil {
		c.s.untrack(nc)
		return nil, nil, err
	}
	return sub, nc, nil
}

// moveStore sends one instance to the move destination (PS3.4 §C.4.2.3) and
// reads its C-STORE-RSP. A failure of the destination fails the
// sub-operation, not the C-MOVE's association.
func (c *assoc) moveStore(sub *ul.Assoc, move dimse.Command, st *Study, se *Series, in *Instance) (dimse.Status, error) {
	sc, ok := sub.Context(in.SOPClassUID)
	if !ok {
		return dimse.SOPClassNotSupported, nil
	}
	c.next++
	id := c.next
	c.buf = appendInstance(c.buf[:0], st, se, in, sc.TransferSyntax == dicom.ExplicitVRLittleEndian)
	rq := dimse.Command{
		Field: dimse.CStoreRQ, AffectedSOPClassUID: in.SOPClassUID, MessageID: id, Priority: move.Priority,
		HasDataset: true, AffectedSOPInstanceUID: in.SOPUID,
		MoveOriginatorAE: c.a.Info().CallingAE, MoveOriginatorMessageID: move.MessageID,
	}
	ctx := c.dl.fresh()
	if err := sub.Send(ctx, sc.ID, rq.Encode(), c.buf); err != nil {
		return dimse.UnableToProcess, nil
	}
	_, b, err := sub.ReadCommand(ctx)
	if err != nil {
		return dimse.UnableToProcess, nil
	}
	rsp, err := dimse.DecodeCommand(b)
	if err != nil || rsp.Field != dimse.CStoreRSP || rsp.MessageIDBeingRespondedTo != id {
		return dimse.UnableToProcess, nil
	}
	return rsp.Status, nil
}

// appendInstance appends the data set of a synthetic instance: its
// identifiers, fake patient data and a 4×4 8-bit monochrome image of 16
// bytes, in Explicit or Implicit VR Little Endian.
func appendInstance(b []byte, st *Study, se *Series, in *Instance, explicit bool) []byte {
	x := explicit
	b = appendElem(b, dicom.SpecificCharacterSet, dicom.VRCS, x, "ISO_IR 100")
	b = appendElem(b, dicom.SOPClassUID, dicom.VRUI, x, in.SOPClassUID)
	b = appendElem(b, dicom.SOPInstanceUID, dicom.VRUI, x, in.SOPUID)
	b = appendElem(b, dicom.StudyDate, dicom.VRDA, x, st.Date)
	b = appendElem(b, dicom.Modality, dicom.VRCS, x, se.Modality)
	b = appendElem(b, dicom.InstitutionName, dicom.VRLO, x, "FAKE INSTITUTION")
	b = appendElem(b, dicom.PatientName, dicom.VRPN, x, st.PatientName)
	b = appendElem(b, dicom.PatientID, dicom.VRLO, x, st.PatientID)
	b = appendElem(b, dicom.StudyInstanceUID, dicom.VRUI, x, st.UID)
	b = appendElem(b, dicom.SeriesInstanceUID, dicom.VRUI, x, se.UID)
	b = appendUint16(b, dicom.SamplesPerPixel, x, 1)
	b = appendElem(b, dicom.PhotometricInterpretation, dicom.VRCS, x, "MONOCHROME2")
	b = appendUint16(b, dicom.Rows, x, 4)
	b = appendUint16(b, dicom.Columns, x, 4)
	b = appendUint16(b, dicom.BitsAllocated, x, 8)
	b = appendUint16(b, dicom.BitsStored, x, 8)
	b = appendUint16(b, dicom.HighBit, x, 7)
	b = appendUint16(b, dicom.PixelRepresentation, x, 0)
	return appendElem(b, dicom.PixelData, dicom.VROB, x, "\x00\x10\x20\x30\x40\x50\x60\x70\x80\x90\xa0\xb0\xc0\xd0\xe0\xf0")
}
