package probe

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

// Classify maps an error met while probing a target to the record's Status and a short error
// text that is safe to store: it names the kind of failure, never bytes a server sent.
// A nil error is StatusOpen.
func Classify(err error) (Status, string) {
	var ne net.Error
	switch {
	case err == nil:
		return StatusOpen, ""
	case errors.Is(err, syscall.ECONNREFUSED):
		return StatusClosed, "connection refused"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return StatusFiltered, "unreachable"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return StatusError, "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return StatusError, "connection closed by peer"
	case errors.Is(err, ul.ErrPDUTooLarge):
		return StatusError, "pdu too large"
	case errors.Is(err, ul.ErrMessageTooLarge), errors.Is(err, dicom.ErrTooLarge):
		return StatusError, "message too large"
	case errors.Is(err, ul.ErrUnknownPDUType):
		return StatusError, "unknown pdu type"
	case errors.Is(err, ul.ErrMalformed), errors.Is(err, dicom.ErrMalformed), errors.Is(err, dicom.ErrTruncated):
		return StatusError, "malformed pdu"
	case errors.Is(err, ul.ErrProtocol), errors.Is(err, ul.ErrUnexpectedPDU):
		return StatusError, "protocol error"
	case errors.Is(err, context.Canceled):
		return StatusError, "cancelled"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return StatusError, "i/o timeout"
	}
	return StatusError, "error"
}
