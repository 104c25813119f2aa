package probe

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

func TestClassify(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("step: %w", err) }
	for _, tc := range []struct {
		err    error
		status Status
		text   string
	}{
		{nil, StatusOpen, ""},
		{wrap(&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}), StatusClosed, "connection refused"},
		{wrap(syscall.EHOSTUNREACH), StatusFiltered, "unreachable"},
		{wrap(syscall.ECONNRESET), StatusError, "connection reset"},
		{wrap(io.ErrUnexpectedEOF), StatusError, "connection closed by peer"},
		{wrap(os.ErrDeadlineExceeded), StatusError, "i/o timeout"},
		{wrap(context.DeadlineExceeded), StatusError, "i/o timeout"},
		{wrap(context.Canceled), StatusError, "cancelled"},
		{wrap(ul.ErrPDUTooLarge), StatusError, "pdu too large"},
		{wrap(ul.ErrMessageTooLarge), StatusError, "message too large"},
		{wrap(ul.ErrUnknownPDUType), StatusError, "unknown pdu type"},
		{wrap(ul.ErrMalformed), StatusError, "malformed pdu"},
		{wrap(ul.ErrProtocol), StatusError, "protocol error"},
		{fmt.Errorf("something else"), StatusError, "error"},
	} {
		s, text := Classify(tc.err)
		if s != tc.status || text != tc.text {
			t.Errorf("Classify(%v) = %v %q, want %v %q", tc.err, s, text, tc.status, tc.text)
		}
	}
}
