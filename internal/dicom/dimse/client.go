package dimse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

// messageID is the Message ID (0000,0110) of every request this package
// sends. Operations are synchronous, one outstanding at a time, so one ID
// distinguishes the request from every other in flight (PS3.7 §9.3.1.1).
const messageID uint16 = 1

// MaxResponsesAfterCancel bounds the responses Find reads after its
// C-CANCEL-RQ while it waits for the final one; a peer that keeps sending
// pending responses beyond it gets an A-ABORT.
const MaxResponsesAfterCancel = 10000

// DefaultMaxIdentifierBytes is FindOptions.MaxIdentifierBytes's default.
const DefaultMaxIdentifierBytes = dicom.DefaultMaxBytes

// Echo sends a C-ECHO-RQ on a's Verification context and returns the
// C-ECHO-RSP status (PS3.7 §9.1.5, PS3.4 Annex A).
func Echo(ctx context.Context, a *ul.Assoc) (Status, error) {
	pc, err := acceptedContext(a, Verification)
	if err != nil {
		return 0, err
	}
	rq := Command{Field: CEchoRQ, AffectedSOPClassUID: Verification, MessageID: messageID}
	if err := a.Send(ctx, pc.ID, rq.Encode(), nil); err != nil {
		return 0, fail(ctx, a, "c-echo", err)
	}
	rsp, err := readResponse(ctx, a, pc.ID, CEchoRSP)
	if err == nil {
		err = discard(ctx, a, rsp)
	}
	if err != nil {
		return 0, fail(ctx, a, "c-echo", err)
	}
	return rsp.Status, nil
}

// FindOptions configures Find.
type FindOptions struct {
	// Allow reports whether to keep a key of a response identifier; every
	// other key is dropped at parse time, so its value is never copied.
	// Nil keeps no key: each then sees empty data sets, enough to count.
	Allow func(dicom.Tag) bool
	// MaxIdentifierBytes caps one response identifier; a longer one ends
	// Find with an error wrapping dicom.ErrTooLarge. Zero or less means
	// DefaultMaxIdentifierBytes.
	MaxIdentifierBytes int
	// Priority of the C-FIND-RQ; default PriorityMedium.
	Priority uint16
}

// Find sends a C-FIND-RQ with identifier on a's context for sopClass (a
// Query/Retrieve information model, e.g. StudyRootFind), encoded in that
// context's transfer syntax, and calls each with the identifier of every
// pending response, one at a time and decoded as opt says, so that memory
// stays constant whatever the number of matches (PS3.7 §9.1.2, PS3.4
// §C.4.1). It returns the final response's status, which may be a failure.
//
// When each returns ErrStop, Find sends a C-CANCEL-RQ (PS3.7 §9.3.2.3) and
// reads on, without calling each, until the final response, normally Cancel,
// whose status it returns; a peer that sends more than MaxResponsesAfterCancel
// responses first gets an A-ABORT and Find returns ErrTooManyResponses. Any
// other error from each aborts the association and is returned as it is.
//
// A response on another context, to another message or of another kind,
// a pending response without identifier or a data set where none is
// announced are errors wrapping ErrProtocol or ul.ErrProtocol.
func Find(ctx context.Context, a *ul.Assoc, sopClass string, identifier dicom.Dataset, opt FindOptions,
	each func(dicom.Dataset) error) (Status, error) {
	pc, err := acceptedContext(a, sopClass)
	if err != nil {
		return 0, err
	}
	explicit, err := isExplicit(pc)
	if err != nil {
		return 0, err
	}
	if err := request(ctx, a, pc, Command{Field: CFindRQ, AffectedSOPClassUID: sopClass, Priority: opt.Priority}, identifier); err != nil {
		return 0, fail(ctx, a, "c-find", err)
	}
	dec := dicom.DecodeOptions{Explicit: explicit, Allow: opt.Allow, MaxBytes: opt.MaxIdentifierBytes}
	if dec.Allow == nil {
		dec.Allow = func(dicom.Tag) bool { return false }
	}
	if dec.MaxBytes <= 0 {
		dec.MaxBytes = DefaultMaxIdentifierBytes
	}
	var buf bytes.Buffer // reused for every identifier
	cancelled, after := false, 0
	for {
		rsp, err := readResponse(ctx, a, pc.ID, CFindRSP)
		if err != nil {
			return 0, fail(ctx, a, "c-find", err)
		}
		if rsp.Status.Class() != ClassPending || cancelled {
			if err := discard(ctx, a, rsp); err != nil {
				return 0, fail(ctx, a, "c-find", err)
			}
		}
		if rsp.Status.Class() != ClassPending {
			return rsp.Status, nil
		}
		if cancelled {
			if after++; after > MaxResponsesAfterCancel {
				return 0, fail(ctx, a, "c-find", ErrTooManyResponses)
			}
			continue
		}
		if !rsp.HasDataset {
			return 0, fail(ctx, a, "c-find", fmt.Errorf("%w: pending C-FIND-RSP without identifier", ErrProtocol))
		}
		ds, err := readIdentifier(ctx, a, &buf, dec)
		if err != nil {
			return 0, fail(ctx, a, "c-find", err)
		}
		if err := each(ds); errors.Is(err, ErrStop) {
			cancelled = true
			c := Command{Field: CCancelRQ, MessageIDBeingRespondedTo: messageID}
			if err := a.Send(ctx, pc.ID, c.Encode(), nil); err != nil {
				return 0, fail(ctx, a, "c-find: send C-CANCEL-RQ", err)
			}
		} else if err != nil {
			a.Abort()
			return 0, err
		}
	}
}

// readIdentifier reads the data set that follows the last command into buf,
// failing as soon as it exceeds dec.MaxBytes, and decodes it.
func readIdentifier(ctx context.Context, a *ul.Assoc, buf *bytes.Buffer, dec dicom.DecodeOptions) (dicom.Dataset, error) {
	buf.Reset()
	if _, err := buf.ReadFrom(io.LimitReader(a.DataReader(ctx), int64(dec.MaxBytes)+1)); err != nil {
		return dicom.Dataset{}, err
	}
	if buf.Len() > dec.MaxBytes {
		return dicom.Dataset{}, fmt.Errorf("identifier over %d bytes: %w", dec.MaxBytes, dicom.ErrTooLarge)
	}
	ds, err := dicom.Decode(buf.Bytes(), dec)
	if err != nil {
		return dicom.Dataset{}, fmt.Errorf("decode identifier: %w", err)
	}
	return ds, nil
}

// SubOps is the outcome of a C-GET or C-MOVE: the final response's status
// and its sub-operation counts (PS3.4 §C.4.2.1.4, §C.4.3.1.4), each nil when
// the peer left it out.
type SubOps struct {
	Status                                Status
	Remaining, Completed, Failed, Warning *uint16
}

func subOps(c Command) SubOps {
	return SubOps{Status: c.Status, Remaining: c.Remaining, Completed: c.Completed, Failed: c.Failed, Warning: c.Warning}
}

// StoreRequest describes a C-STORE-RQ sub-operation of a C-GET.
type StoreRequest struct {
	SOPClassUID, SOPInstanceUID string
	MessageID                   uint16
	// TransferSyntax is the transfer syntax of the presentation context
	// the data set comes on.
	TransferSyntax string
}

// StoreHandler handles one C-STORE sub-operation of a C-GET. data streams
// the instance's data set (without File Meta Information) as it arrives, in
// req.TransferSyntax, and is valid until the handler returns; the handler
// may read any part of it, and Get discards the rest. The returned
// status answers the C-STORE-RQ. Returning ErrStop ends the C-GET early: Get
// aborts the association and returns ErrStopped. Any other error also aborts
// the association, and Get returns it.
type StoreHandler func(ctx context.Context, req StoreRequest, data io.Reader) (Status, error)

// Get sends a C-GET-RQ with identifier on a's context for sopClass (e.g.
// StudyRootGet) and serves the C-STORE sub-operations the peer sends back on
// the same association (PS3.7 §9.1.3, PS3.4 §C.4.3) with onStore, until the
// final C-GET-RSP. The association must have been negotiated with the storage
// contexts and SCP roles of ProposeGet, or the peer has nowhere to send the
// instances. A nil onStore discards every instance and answers Success.
//
// Memory stays within one PDU per instance whatever the instances' size;
// the time spent draining them is bounded by ctx only.
func Get(ctx context.Context, a *ul.Assoc, sopClass string, identifier dicom.Dataset, onStore StoreHandler) (SubOps, error) {
	pc, err := acceptedContext(a, sopClass)
	if err != nil {
		return SubOps{}, err
	}
	if err := request(ctx, a, pc, Command{Field: CGetRQ, AffectedSOPClassUID: sopClass}, identifier); err != nil {
		return SubOps{}, fail(ctx, a, "c-get", err)
	}
	for {
		id, c, err := readCommand(ctx, a)
		if err != nil {
			return SubOps{}, fail(ctx, a, "c-get", err)
		}
		if c.Field == CStoreRQ {
			if err := store(ctx, a, id, c, onStore); errors.Is(err, ErrStop) {
				a.Abort()
				return SubOps{}, ErrStopped
			} else if err != nil {
				return SubOps{}, fail(ctx, a, "c-get", err)
			}
			continue
		}
		if err := checkResponse(c, id, pc.ID, CGetRSP); err != nil {
			return SubOps{}, fail(ctx, a, "c-get", err)
		}
		if err := discard(ctx, a, c); err != nil {
			return SubOps{}, fail(ctx, a, "c-get", err)
		}
		if c.Status.Class() != ClassPending {
			return subOps(c), nil
		}
	}
}

// store serves one C-STORE-RQ that came on context id.
func store(ctx context.Context, a *ul.Assoc, id byte, c Command, onStore StoreHandler) error {
	if !c.HasDataset {
		return fmt.Errorf("%w: C-STORE-RQ without data set", ErrProtocol)
	}
	req := StoreRequest{SOPClassUID: c.AffectedSOPClassUID, SOPInstanceUID: c.AffectedSOPInstanceUID, MessageID: c.MessageID}
	for _, pc := range a.Info().Accepted {
		if pc.ID == id {
			req.TransferSyntax = pc.TransferSyntax
		}
	}
	data := a.DataReader(ctx)
	status := Success
	if onStore != nil {
		var err error
		if status, err = onStore(ctx, req, data); err != nil {
			return err
		}
	}
	if _, err := io.Copy(io.Discard, data); err != nil {
		return fmt.Errorf("discard C-STORE data set: %w", err)
	}
	rsp := Command{
		Field:                     CStoreRSP,
		AffectedSOPClassUID:       c.AffectedSOPClassUID,
		AffectedSOPInstanceUID:    c.AffectedSOPInstanceUID,
		MessageIDBeingRespondedTo: c.MessageID,
		Status:                    status,
	}
	if err := a.Send(ctx, id, rsp.Encode(), nil); err != nil {
		return fmt.Errorf("send C-STORE-RSP: %w", err)
	}
	return nil
}

// Move sends a C-MOVE-RQ with identifier on a's context for sopClass (e.g.
// StudyRootMove), asking the peer to send the matching instances to the AE
// titled destination over an association of its own, and waits for the
// final C-MOVE-RSP (PS3.7 §9.1.4, PS3.4 §C.4.2). A move to a destination the
// peer does not know is a harmless test of whether it allows C-MOVE: the
// status is then MoveDestinationUnknown, or another failure.
func Move(ctx context.Context, a *ul.Assoc, sopClass, destination string, identifier dicom.Dataset) (SubOps, error) {
	pc, err := acceptedContext(a, sopClass)
	if err != nil {
		return SubOps{}, err
	}
	if err := request(ctx, a, pc, Command{Field: CMoveRQ, AffectedSOPClassUID: sopClass, MoveDestination: destination}, identifier); err != nil {
		return SubOps{}, fail(ctx, a, "c-move", err)
	}
	for {
		rsp, err := readResponse(ctx, a, pc.ID, CMoveRSP)
		if err == nil {
			err = discard(ctx, a, rsp)
		}
		if err != nil {
			return SubOps{}, fail(ctx, a, "c-move", err)
		}
		if rsp.Status.Class() != ClassPending {
			return subOps(rsp), nil
		}
	}
}

// request sends rq, completed with our message ID and the identifier encoded
// in pc's transfer syntax.
func request(ctx context.Context, a *ul.Assoc, pc ul.Context, rq Command, identifier dicom.Dataset) error {
	explicit, err := isExplicit(pc)
	if err != nil {
		return err
	}
	data, err := dicom.Encode(identifier, explicit)
	if err != nil {
		return fmt.Errorf("encode identifier: %w", err)
	}
	rq.MessageID, rq.HasDataset = messageID, true
	return a.Send(ctx, pc.ID, rq.Encode(), data)
}

// readCommand reads and decodes the next command set.
func readCommand(ctx context.Context, a *ul.Assoc) (byte, Command, error) {
	id, b, err := a.ReadCommand(ctx)
	if err != nil {
		return 0, Command{}, err
	}
	c, err := DecodeCommand(b)
	return id, c, err
}

// readResponse reads the next command set and checks it is a response of
// kind want to our request on context pcID.
func readResponse(ctx context.Context, a *ul.Assoc, pcID byte, want CommandField) (Command, error) {
	id, c, err := readCommand(ctx, a)
	if err != nil {
		return Command{}, err
	}
	return c, checkResponse(c, id, pcID, want)
}

// discard reads and drops the data set c announces, such as the Failed SOP
// Instance UID List of a final C-GET-RSP or C-MOVE-RSP, which this package
// does not use. ul.Assoc.ReadCommand discards only a data set that was
// partly read, not one that was not read at all.
func discard(ctx context.Context, a *ul.Assoc, c Command) error {
	if !c.HasDataset {
		return nil
	}
	if _, err := io.Copy(io.Discard, a.DataReader(ctx)); err != nil {
		return err
	}
	return nil
}

func checkResponse(c Command, id, pcID byte, want CommandField) error {
	switch {
	case c.Field != want:
		return fmt.Errorf("%w: %v where %v was expected", ErrProtocol, c.Field, want)
	case id != pcID:
		return fmt.Errorf("%w: %v on presentation context %d, request on %d", ErrProtocol, c.Field, id, pcID)
	case c.MessageIDBeingRespondedTo != messageID:
		return fmt.Errorf("%w: %v to message %d, request was %d", ErrProtocol, c.Field, c.MessageIDBeingRespondedTo, messageID)
	}
	return nil
}

func acceptedContext(a *ul.Assoc, sopClass string) (ul.Context, error) {
	pc, ok := a.Context(sopClass)
	if !ok {
		return ul.Context{}, fmt.Errorf("%w for %s", ErrNoContext, sopClass)
	}
	return pc, nil
}

func isExplicit(pc ul.Context) (bool, error) {
	switch pc.TransferSyntax {
	case dicom.ExplicitVRLittleEndian:
		return true, nil
	case dicom.ImplicitVRLittleEndian:
		return false, nil
	}
	return false, fmt.Errorf("%w: transfer syntax %s of %s is not supported", ErrNoContext, pc.TransferSyntax, pc.AbstractSyntax)
}

// fail aborts the association after the error err of operation op, and
// returns ctx's error when ctx is done, else err wrapped. The connection's
// deadline, which is ctx's, may fire a moment before ctx.Err reports it.
func fail(ctx context.Context, a *ul.Assoc, op string, err error) error {
	a.Abort()
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return fmt.Errorf("%s: %w", op, err)
}
