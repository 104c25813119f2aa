package dimse

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pacswatch/pacswatch/internal/dicom"
)

// SOP classes of the services this package uses (PS3.4 Annex A.4 and C.6;
// PS3.6 Annex A).
const (
	Verification     = "1.2.840.10008.1.1"
	StudyRootFind    = "1.2.840.10008.5.1.4.1.2.2.1"
	StudyRootMove    = "1.2.840.10008.5.1.4.1.2.2.2"
	StudyRootGet     = "1.2.840.10008.5.1.4.1.2.2.3"
	PatientRootFind  = "1.2.840.10008.5.1.4.1.2.1.1"
	PatientRootMove  = "1.2.840.10008.5.1.4.1.2.1.2"
	PatientRootGet   = "1.2.840.10008.5.1.4.1.2.1.3"
	SecondaryCapture = "1.2.840.10008.5.1.4.1.1.7"
)

// StorageClasses are common storage SOP classes (PS3.4 Annex B.5) that a
// C-GET proposes, with SCP role selection, so that the peer may send its
// instances back as C-STORE sub-operations on the same association. It is
// read-only.
var StorageClasses = []string{
	"1.2.840.10008.5.1.4.1.1.2",     // CT Image Storage
	"1.2.840.10008.5.1.4.1.1.2.1",   // Enhanced CT Image Storage
	"1.2.840.10008.5.1.4.1.1.4",     // MR Image Storage
	"1.2.840.10008.5.1.4.1.1.4.1",   // Enhanced MR Image Storage
	"1.2.840.10008.5.1.4.1.1.1",     // Computed Radiography Image Storage
	"1.2.840.10008.5.1.4.1.1.1.1",   // Digital X-Ray Image Storage - For Presentation
	"1.2.840.10008.5.1.4.1.1.1.2",   // Digital Mammography X-Ray Image Storage - For Presentation
	"1.2.840.10008.5.1.4.1.1.6.1",   // Ultrasound Image Storage
	"1.2.840.10008.5.1.4.1.1.3.1",   // Ultrasound Multi-frame Image Storage
	SecondaryCapture,                // Secondary Capture Image Storage
	"1.2.840.10008.5.1.4.1.1.12.1",  // X-Ray Angiographic Image Storage
	"1.2.840.10008.5.1.4.1.1.20",    // Nuclear Medicine Image Storage
	"1.2.840.10008.5.1.4.1.1.128",   // Positron Emission Tomography Image Storage
	"1.2.840.10008.5.1.4.1.1.481.1", // RT Image Storage
	"1.2.840.10008.5.1.4.1.1.88.11", // Basic Text SR Storage
	"1.2.840.10008.5.1.4.1.1.104.1", // Encapsulated PDF Storage
}

// CommandField is the Command Field (0000,0100) of a DIMSE message (PS3.7
// §9.3 and Annex E.1). Responses have bit 15 set.
type CommandField uint16

// Command fields of the DIMSE-C services (PS3.7 Table E.1-1).
const (
	CStoreRQ  CommandField = 0x0001
	CStoreRSP CommandField = 0x8001
	CGetRQ    CommandField = 0x0010
	CGetRSP   CommandField = 0x8010
	CFindRQ   CommandField = 0x0020
	CFindRSP  CommandField = 0x8020
	CMoveRQ   CommandField = 0x0021
	CMoveRSP  CommandField = 0x8021
	CEchoRQ   CommandField = 0x0030
	CEchoRSP  CommandField = 0x8030
	CCancelRQ CommandField = 0x0FFF
)

// IsResponse reports whether f is a response's command field.
func (f CommandField) IsResponse() bool { return f&0x8000 != 0 }

// String returns the message name, e.g. "C-FIND-RQ", or "CommandField(0x....)".
func (f CommandField) String() string {
	switch f {
	case CStoreRQ:
		return "C-STORE-RQ"
	case CStoreRSP:
		return "C-STORE-RSP"
	case CGetRQ:
		return "C-GET-RQ"
	case CGetRSP:
		return "C-GET-RSP"
	case CFindRQ:
		return "C-FIND-RQ"
	case CFindRSP:
		return "C-FIND-RSP"
	case CMoveRQ:
		return "C-MOVE-RQ"
	case CMoveRSP:
		return "C-MOVE-RSP"
	case CEchoRQ:
		return "C-ECHO-RQ"
	case CEchoRSP:
		return "C-ECHO-RSP"
	case CCancelRQ:
		return "C-CANCEL-RQ"
	}
	return fmt.Sprintf("CommandField(0x%04X)", uint16(f))
}

// Priority values of the Priority (0000,0700) element (PS3.7 Annex E.1).
const (
	PriorityMedium uint16 = 0x0000
	PriorityHigh   uint16 = 0x0001
	PriorityLow    uint16 = 0x0002
)

// Values of Command Data Set Type (0000,0800): DataSetNone says no data set
// follows the command; any other value says one does (PS3.7 Annex E.1).
// DataSetPresent is the value this package writes, as DCMTK does.
const (
	DataSetNone    uint16 = 0x0101
	DataSetPresent uint16 = 0x0001
)

// Status is the Status (0000,0900) of a DIMSE response (PS3.7 Annex C).
// Its meaning partly depends on the service; see Class.
type Status uint16

// Statuses of the DIMSE-C services (PS3.7 Annex C; PS3.4 Tables B.2-1, C.4-1,
// C.4-2 and C.4-3).
const (
	Success                  Status = 0x0000
	Warning                  Status = 0x0001
	AttributeListError       Status = 0x0107 // warning
	AttributeValueOutOfRange Status = 0x0116 // warning
	SOPClassNotSupported     Status = 0x0122
	RefusedNotAuthorized     Status = 0x0124
	DuplicateInvocation      Status = 0x0210
	UnrecognizedOperation    Status = 0x0211
	MistypedArgument         Status = 0x0212
	ResourceLimitation       Status = 0x0213
	OutOfResources           Status = 0xA700
	OutOfResourcesMatches    Status = 0xA701 // unable to calculate number of matches
	OutOfResourcesSubOps     Status = 0xA702 // unable to perform sub-operations
	MoveDestinationUnknown   Status = 0xA801
	IdentifierDoesNotMatch   Status = 0xA900 // identifier (or data set) does not match SOP class
	SubOpsWarning            Status = 0xB000 // sub-operations complete with failures or warnings; C-STORE: coercion of data elements
	ElementsDiscarded        Status = 0xB006
	DataSetDoesNotMatch      Status = 0xB007
	UnableToProcess          Status = 0xC000 // any 0xCxxx
	Cancel                   Status = 0xFE00
	Pending                  Status = 0xFF00
	PendingWarning           Status = 0xFF01 // pending; optional keys not supported
)

// StatusClass is the class of a Status (PS3.7 Annex C).
type StatusClass uint8

// Status classes.
const (
	ClassSuccess StatusClass = iota
	ClassPending
	ClassCancel
	ClassWarning
	ClassFailure
)

// String returns "success", "pending", "cancel", "warning" or "failure".
func (c StatusClass) String() string {
	switch c {
	case ClassSuccess:
		return "success"
	case ClassPending:
		return "pending"
	case ClassCancel:
		return "cancel"
	case ClassWarning:
		return "warning"
	case ClassFailure:
		return "failure"
	}
	return fmt.Sprintf("StatusClass(%d)", uint8(c))
}

// Class returns the class of s (PS3.7 Annex C): success 0000; pending FF00 and
// FF01; cancel FE00; warning 0001, 0107, 0116 and Bxxx; failure for every
// other value, among them Axxx, Cxxx and the other 01xx and 02xx values.
func (s Status) Class() StatusClass {
	switch {
	case s == Success:
		return ClassSuccess
	case s == Pending || s == PendingWarning:
		return ClassPending
	case s == Cancel:
		return ClassCancel
	case s == Warning || s == AttributeListError || s == AttributeValueOutOfRange || s&0xF000 == 0xB000:
		return ClassWarning
	}
	return ClassFailure
}

var statusMeanings = map[Status]string{
	Success:                  "success",
	Warning:                  "warning",
	AttributeListError:       "warning: attribute list error",
	AttributeValueOutOfRange: "warning: attribute value out of range",
	0x0105:                   "failure: no such attribute",
	0x0106:                   "failure: invalid attribute value",
	0x0110:                   "failure: processing failure",
	0x0112:                   "failure: no such SOP instance",
	0x0117:                   "failure: invalid SOP instance",
	0x0118:                   "failure: no such SOP class",
	0x0119:                   "failure: class-instance conflict",
	SOPClassNotSupported:     "failure: SOP class not supported",
	RefusedNotAuthorized:     "failure: refused: not authorized",
	DuplicateInvocation:      "failure: duplicate invocation",
	UnrecognizedOperation:    "failure: unrecognized operation",
	MistypedArgument:         "failure: mistyped argument",
	ResourceLimitation:       "failure: resource limitation",
	OutOfResources:           "failure: refused: out of resources",
	OutOfResourcesMatches:    "failure: refused: out of resources: unable to calculate number of matches",
	OutOfResourcesSubOps:     "failure: refused: out of resources: unable to perform sub-operations",
	MoveDestinationUnknown:   "failure: refused: move destination unknown",
	IdentifierDoesNotMatch:   "failure: identifier does not match SOP class",
	SubOpsWarning:            "warning: sub-operations complete with failures or warnings",
	ElementsDiscarded:        "warning: elements discarded",
	DataSetDoesNotMatch:      "warning: data set does not match SOP class",
	Cancel:                   "cancel: operation terminated",
	Pending:                  "pending",
	PendingWarning:           "pending: optional keys not supported",
}

// String returns the status in hexadecimal with its meaning, e.g.
// "0xA801 (failure: refused: move destination unknown)". Values without a
// specific meaning print their class: any 0xCxxx is "failure: unable to
// process".
func (s Status) String() string {
	m, ok := statusMeanings[s]
	switch {
	case ok:
	case s&0xF000 == 0xC000:
		m = "failure: unable to process"
	case s&0xF000 == 0xA000:
		m = "failure: refused"
	default:
		m = s.Class().String()
	}
	return fmt.Sprintf("0x%04X (%s)", uint16(s), m)
}

// Command is a DIMSE command set (PS3.7 §6.3.1, §9.3 and Annex E.1): the
// elements of group 0000 that the DIMSE-C services use. Requests and
// responses share the type, as they share the standard's command group.
// Integer fields hold 0 when absent; the sub-operation counts are nil when
// absent.
type Command struct {
	Field                     CommandField // (0000,0100)
	AffectedSOPClassUID       string       // (0000,0002)
	MessageID                 uint16       // (0000,0110), requests
	MessageIDBeingRespondedTo uint16       // (0000,0120), responses and C-CANCEL-RQ
	Priority                  uint16       // (0000,0700), C-STORE/FIND/GET/MOVE-RQ
	HasDataset                bool         // (0000,0800) is not DataSetNone
	Status                    Status       // (0000,0900), responses
	MoveDestination           string       // (0000,0600), C-MOVE-RQ
	AffectedSOPInstanceUID    string       // (0000,1000)

	// Number of Remaining, Completed, Failed and Warning Sub-operations
	// (0000,1020)-(0000,1023) of C-GET-RSP and C-MOVE-RSP.
	Remaining, Completed, Failed, Warning *uint16

	ErrorComment            string // (0000,0902)
	MoveOriginatorAE        string // (0000,1030), C-STORE-RQ of a C-MOVE
	MoveOriginatorMessageID uint16 // (0000,1031), C-STORE-RQ of a C-MOVE
}

// MaxCommandBytes caps the command sets DecodeCommand reads. The command sets
// of DIMSE-C are a few hundred bytes at most.
const MaxCommandBytes = 64 << 10

// Errors of this package. They are wrapped with context; test them with
// errors.Is.
var (
	// ErrMalformedCommand: a command set that cannot be decoded or lacks a
	// required element.
	ErrMalformedCommand = errors.New("dimse: malformed command set")
	// ErrProtocol: a peer's message breaks the DIMSE rules (PS3.7 §9.3):
	// an unexpected command, a response to another message, a data set where
	// none is announced or the reverse.
	ErrProtocol = errors.New("dimse: protocol error")
	// ErrNoContext: the association has no accepted presentation context for
	// the SOP class an operation needs.
	ErrNoContext = errors.New("dimse: no accepted presentation context")
	// ErrStop is returned by a callback to end an operation early.
	ErrStop = errors.New("dimse: stop")
	// ErrStopped reports that a C-GET was ended by its StoreHandler
	// returning ErrStop, and the association aborted.
	ErrStopped = errors.New("dimse: operation stopped")
	// ErrTooManyResponses: a peer kept answering after a C-CANCEL-RQ beyond
	// the bound this package allows.
	ErrTooManyResponses = errors.New("dimse: too many responses after cancel")
)

// Encode returns the command set in Implicit VR Little Endian (PS3.7
// §6.3.1), led by its Command Group Length. It writes the Command Field and
// Command Data Set Type always; Message ID (and, except for C-ECHO-RQ,
// Priority) for requests other than C-CANCEL-RQ; Message ID Being Responded
// To for responses and C-CANCEL-RQ; Status for responses; and every other
// field that is set (non-zero, non-empty or non-nil). It returns nil only for
// a string longer than 4 GiB.
func (c Command) Encode() []byte {
	var ds dicom.Dataset
	str := func(t dicom.Tag, s string) {
		if s != "" {
			ds.Set(dicom.NewString(t, s))
		}
	}
	u16 := func(t dicom.Tag, v uint16, always bool) {
		if v != 0 || always {
			ds.Set(dicom.NewUint16(t, v))
		}
	}
	count := func(t dicom.Tag, v *uint16) {
		if v != nil {
			ds.Set(dicom.NewUint16(t, *v))
		}
	}
	rsp := c.Field.IsResponse()
	request := !rsp && c.Field != CCancelRQ
	str(dicom.AffectedSOPClassUID, c.AffectedSOPClassUID)
	u16(dicom.CommandField, uint16(c.Field), true)
	u16(dicom.MessageID, c.MessageID, request)
	u16(dicom.MessageIDBeingRespondedTo, c.MessageIDBeingRespondedTo, !request)
	str(dicom.MoveDestination, c.MoveDestination)
	u16(dicom.Priority, c.Priority, request && c.Field != CEchoRQ)
	dst := DataSetNone
	if c.HasDataset {
		dst = DataSetPresent
	}
	u16(dicom.CommandDataSetType, dst, true)
	u16(dicom.Status, uint16(c.Status), rsp)
	str(dicom.ErrorComment, c.ErrorComment)
	str(dicom.AffectedSOPInstanceUID, c.AffectedSOPInstanceUID)
	count(dicom.NumberOfRemainingSuboperations, c.Remaining)
	count(dicom.NumberOfCompletedSuboperations, c.Completed)
	count(dicom.NumberOfFailedSuboperations, c.Failed)
	count(dicom.NumberOfWarningSuboperations, c.Warning)
	str(dicom.MoveOriginatorApplicationEntityTitle, c.MoveOriginatorAE)
	u16(dicom.MoveOriginatorMessageID, c.MoveOriginatorMessageID, c.MoveOriginatorAE != "")
	b, err := dicom.EncodeCommand(ds)
	if err != nil {
		return nil
	}
	return b
}

// DecodeCommand decodes a command set in Implicit VR Little Endian (PS3.7
// §6.3.1) of at most MaxCommandBytes. Elements outside group 0000 and command
// elements Command does not hold are skipped; the Command Group Length is not
// checked. It fails with ErrMalformedCommand when the bytes cannot be decoded,
// when Command Field or Command Data Set Type is missing, when a response
// has no Status, or when an element Command holds has a value of the wrong
// size. Strings are trimmed of their padding, and any byte outside ASCII
// (command sets use the default repertoire) becomes '?'.
func DecodeCommand(b []byte) (Command, error) {
	ds, err := dicom.Decode(b, dicom.DecodeOptions{
		Allow:    func(t dicom.Tag) bool { return t.Group() == 0 },
		MaxBytes: MaxCommandBytes,
	})
	if err != nil {
		return Command{}, fmt.Errorf("decode command: %w: %w", ErrMalformedCommand, err)
	}
	var c Command
	var bad dicom.Tag
	u16 := func(t dicom.Tag) (uint16, bool) {
		if _, ok := ds.Get(t); !ok {
			return 0, false
		}
		v, ok := ds.Uint16(t)
		if !ok && bad == 0 {
			bad = t
		}
		return v, ok
	}
	str := func(t dicom.Tag) string {
		s, ok := ds.String(t)
		if _, present := ds.Get(t); present && !ok && bad == 0 {
			bad = t
		}
		return asciiOnly(s)
	}
	count := func(t dicom.Tag) *uint16 {
		if v, ok := u16(t); ok {
			return &v
		}
		return nil
	}
	f, hasField := u16(dicom.CommandField)
	c.Field = CommandField(f)
	c.AffectedSOPClassUID = str(dicom.AffectedSOPClassUID)
	c.MessageID, _ = u16(dicom.MessageID)
	c.MessageIDBeingRespondedTo, _ = u16(dicom.MessageIDBeingRespondedTo)
	c.Priority, _ = u16(dicom.Priority)
	dst, hasDST := u16(dicom.CommandDataSetType)
	c.HasDataset = dst != DataSetNone
	st, hasStatus := u16(dicom.Status)
	c.Status = Status(st)
	c.MoveDestination = str(dicom.MoveDestination)
	c.AffectedSOPInstanceUID = str(dicom.AffectedSOPInstanceUID)
	c.Remaining = count(dicom.NumberOfRemainingSuboperations)
	c.Completed = count(dicom.NumberOfCompletedSuboperations)
	c.Failed = count(dicom.NumberOfFailedSuboperations)
	c.Warning = count(dicom.NumberOfWarningSuboperations)
	c.ErrorComment = str(dicom.ErrorComment)
	c.MoveOriginatorAE = str(dicom.MoveOriginatorApplicationEntityTitle)
	c.MoveOriginatorMessageID, _ = u16(dicom.MoveOriginatorMessageID)
	switch {
	case bad != 0:
		return Command{}, fmt.Errorf("decode command: element %v has a value of the wrong size: %w", bad, ErrMalformedCommand)
	case !hasField:
		return Command{}, fmt.Errorf("decode command: no command field: %w", ErrMalformedCommand)
	case !hasDST:
		return Command{}, fmt.Errorf("decode command: %v without command data set type: %w", c.Field, ErrMalformedCommand)
	case c.Field.IsResponse() && !hasStatus:
		return Command{}, fmt.Errorf("decode command: %v without status: %w", c.Field, ErrMalformedCommand)
	}
	return c, nil
}

// asciiOnly replaces every rune outside ASCII, U+FFFD included, with '?'.
func asciiOnly(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return strings.Map(func(r rune) rune {
				if r >= 0x80 {
					return '?'
				}
				return r
			}, s)
		}
	}
	return s
}
