package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
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
		// No kind Classify knows: the cause, never a bare "error" (issue 10 item 13).
		{fmt.Errorf("something else"), StatusError, "something else"},
		{wrap(&net.OpError{Op: "dial", Err: os.NewSyscallError("socket", syscall.EMFILE)}), StatusError, "too many open files"},
		{wrap(os.NewSyscallError("connect", syscall.EADDRNOTAVAIL)), StatusError, "cannot assign requested address"},
		{fmt.Errorf("read: %w", fmt.Errorf(`malformed HTTP response "%s\x1b[31m"`, strings.Repeat("A", 20000))), StatusError, "malformed HTTP response invalid (20005 bytes)"},
		{wrap(errors.New("")), StatusError, "unclassified error (*errors.errorString)"},
		{wrap(errors.New(strings.Repeat("word ", 40))), StatusError, strings.TrimSpace(strings.Repeat("word ", 24))},
	} {
		s, text := Classify(tc.err)
		if s != tc.status || text != tc.text {
			t.Errorf("Classify(%.80v) = %v %q, want %v %q", tc.err, s, text, tc.status, tc.text)
		}
		if tc.err != nil && (text == "" || text == "error") {
			t.Errorf("Classify(%.80v): text %q says nothing", tc.err, text)
		}
	}
}

func TestKnown(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, true},
		{fmt.Errorf("x: %w", syscall.ECONNREFUSED), true},
		{fmt.Errorf("x: %w", io.EOF), true},
		{errors.New("something else"), false},
		{os.NewSyscallError("socket", syscall.EMFILE), false},
	} {
		if got := Known(tc.err); got != tc.want {
			t.Errorf("Known(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestSafeText(t *testing.T) {
	long := strings.Repeat("1.2", 7000)
	for _, tc := range []struct{ in, want string }{
		{"plain text", "plain text"},
		{`transfer syntax "1.2.840.10008.1.2.1" not proposed`, `transfer syntax "1.2.840.10008.1.2.1" not proposed`},
		{fmt.Sprintf("transfer syntax %q, which was not proposed", long), "transfer syntax invalid (21000 bytes), which was not proposed"},
		{`called "FAKE^PATIENT" here`, "called invalid (12 bytes) here"},
		{`a "\x1b[2J" escape`, "a invalid (4 bytes) escape"},
		{`a lone " quote`, `a lone " quote`},
		{"line\nbreak\x1b[31m", "line break[31m"},
		{strings.Repeat("x", 1000), strings.Repeat("x", MaxError)},
	} {
		if got := SafeText(tc.in); got != tc.want {
			t.Errorf("SafeText(%.60q) = %.80q, want %.80q", tc.in, got, tc.want)
		}
	}
	if got := SafeError(nil); got != "" {
		t.Errorf("SafeError(nil) = %q, want empty", got)
	}
}

func TestSafeUID(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"1.2.840.10008.1.2", "1.2.840.10008.1.2"},
		{strings.Repeat("1", 64), strings.Repeat("1", 64)},
		{strings.Repeat("1", 65), "invalid (65 bytes)"},
		{strings.Repeat("9", 20000), "invalid (20000 bytes)"},
		{"1.2.3 ", "invalid (6 bytes)"},
		{"", "invalid (0 bytes)"},
	} {
		if got := SafeUID(tc.in); got != tc.want {
			t.Errorf("SafeUID(%.40q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
