// Package ul implements the DICOM Upper Layer protocol for TCP/IP of PS3.8
// (DICOM Part 8, "Network Communication Support for Message Exchange"): the
// protocol data units of §9.3, the user information sub-items of PS3.8 Annex D
// and PS3.7 Annex D.3.3, and the association life cycle of §7 and §9.2 for
// both the requestor (Dial, NewClient) and the acceptor (Accept), with
// presentation data value fragmentation and reassembly. Reassembler rebuilds
// messages from PDVs on its own, for a reader of PDUs that is not an Assoc.
//
// Everything read from the network is untrusted: every length is checked
// against what remains and against a cap before anything is allocated, every
// read has a deadline taken from its context, and no input makes the package
// panic. The package works on bytes; command sets and data sets are encoded and
// decoded by its callers.
package ul

import (
	"errors"
	"fmt"

	"github.com/pacswatch/pacswatch/internal/version"
)

// Our identity on the wire (PS3.7 §D.3.3.2), the defaults of Config and
// ServerConfig: pacswatch's, from package version, written there once.
// pacswatch never impersonates another product.
const (
	ImplementationClassUID    = version.ImplementationClassUID
	ImplementationVersionName = version.ImplementationVersionName
)

// ApplicationContext is the DICOM Application Context Name (PS3.7 §A.2.1).
const ApplicationContext = "1.2.840.10008.3.1.1.1"

// Errors returned by the package. They are wrapped with context; test them
// with errors.Is.
var (
	// ErrPDUTooLarge: a PDU's length field exceeds the read cap.
	ErrPDUTooLarge = errors.New("ul: pdu too large")
	// ErrMessageTooLarge: a reassembled command or data set exceeds MaxMessage.
	ErrMessageTooLarge = errors.New("ul: message too large")
	// ErrMalformed: a PDU or item does not follow PS3.8 §9.3, or an
	// A-ASSOCIATE-AC answers something that was not proposed.
	ErrMalformed = errors.New("ul: malformed pdu")
	// ErrUnknownPDUType: the first byte of a PDU is not a PS3.8 PDU type,
	// typically because the peer does not speak DICOM.
	ErrUnknownPDUType = errors.New("ul: unknown pdu type")
	// ErrUnexpectedPDU: a well-formed PDU arrived where the protocol does
	// not allow it.
	ErrUnexpectedPDU = errors.New("ul: unexpected pdu")
	// ErrProtocol: a P-DATA-TF breaks the message rules (a data fragment
	// where a command is expected or the reverse, a presentation context
	// that was not accepted, contexts mixed within one message), or a method
	// is called in a state that does not allow it.
	ErrProtocol = errors.New("ul: protocol error")
	// ErrReleaseRequested: the peer sent A-RELEASE-RQ; answer with
	// ReplyRelease.
	ErrReleaseRequested = errors.New("ul: release requested by peer")
)

// RejectedError reports an A-ASSOCIATE-RJ, received by a requestor or sent by
// an acceptor.
type RejectedError struct {
	RJ AAssociateRJ
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("ul: association rejected: %s, %s, %s (result %d, source %d, reason %d)",
		e.RJ.ResultString(), e.RJ.SourceString(), e.RJ.Meaning(), e.RJ.Result, e.RJ.Source, e.RJ.Reason)
}

// AbortedError reports an A-ABORT received from the peer.
type AbortedError struct {
	Abort AAbort
}

func (e *AbortedError) Error() string {
	return fmt.Sprintf("ul: association aborted: %s (source %d, reason %d)",
		e.Abort.Meaning(), e.Abort.Source, e.Abort.Reason)
}
