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
		// The protocols' failures, as a prober marks them (dicomprobe's TestClassify has the
		// DICOM packages' errors).
		{wrap(Mark(errors.New("x: pdu of 2 GiB"), FailurePDUTooLarge)), StatusError, "pdu too large"},
		{wrap(Mark(errors.New("x"), FailureMessageTooLarge)), StatusError, "message too large"},
		{wrap(Mark(errors.New("x"), FailureUnknownPDU)), StatusError, "unknown pdu type"},
		{wrap(Mark(errors.New("x"), FailureMalformed)), StatusError, "malformed pdu"},
		{wrap(Mark(errors.New("x"), FailureProtocol)), StatusError, "protocol error"},
		{wrap(Mark(errors.New("no kind"), FailureNone)), StatusError, "no kind"},
		{wrap(Mark(io.ErrUnexpectedEOF, FailureMalformed)), StatusError, "connection closed by peer"}, // the network's first
		{Mark(context.DeadlineExceeded, FailureMalformed), StatusError, "malformed pdu"},
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

func TestClassifyConnect(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status Status
		text   string
	}{
		{nil, StatusOpen, ""},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, StatusClosed, "connection refused"},
		{fmt.Errorf("dial: %w", context.DeadlineExceeded), StatusFiltered, ""},
		{&net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}, StatusFiltered, ""},
		{fmt.Errorf("dial: %w", context.Canceled), StatusError, "cancelled"},
		{syscall.ENETUNREACH, StatusFiltered, "unreachable"},
	} {
		if s, text := ClassifyConnect(tc.err); s != tc.status || text != tc.text {
			t.Errorf("ClassifyConnect(%v) = %v %q, want %v %q", tc.err, s, text, tc.status, tc.text)
		}
	}
}

func TestResetOnConnect(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNRESET)}, true},
		{fmt.Errorf("connect stage: %w", syscall.ECONNRESET), true},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, false},
		{syscall.EPIPE, false},
		{io.EOF, false},
		{nil, false},
	} {
		if got := ResetOnConnect(tc.err); got != tc.want {
			t.Errorf("ResetOnConnect(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestMark(t *testing.T) {
	if Mark(nil, FailureMalformed) != nil {
		t.Error("Mark(nil) is not nil")
	}
	base := fmt.Errorf("read: %w", io.ErrUnexpectedEOF)
	if Mark(base, FailureNone) != base {
		t.Error("Mark(err, FailureNone) is not err")
	}
	m := Mark(base, FailureProtocol)
	if m.Error() != base.Error() || !errors.Is(m, io.ErrUnexpectedEOF) {
		t.Errorf("Mark(err) = %q: want err's message and chain", m)
	}
	if got := Failure(200).String(); got != "Failure(200)" {
		t.Errorf("Failure(200) = %q", got)
	}
	if got, _ := Classify(Mark(errors.New("x"), Failure(200))); got != StatusError || Known(Mark(errors.New("x"), Failure(200))) {
		t.Error("an unknown Failure is known")
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
