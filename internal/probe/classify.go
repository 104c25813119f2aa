package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/pacswatch/pacswatch/internal/textsafe"
)

// Classify maps an error met while probing a target to the record's Status and a short error
// text that is safe to store: it names the kind of failure, never bytes a server sent.
// A nil error is StatusOpen. An error of no kind Classify knows (see Known) is StatusError with
// its cause as Cause words it: never a bare "error".
//
// Classify knows the network's errors and the kinds of protocol failure of Failure, which a
// prober marks in its protocol's errors with Mark: this package imports no protocol, and this
// table is the one place where a failure is worded.
func Classify(err error) (Status, string) {
	if s, text, ok := classify(err); ok {
		return s, text
	}
	return StatusError, Cause(err)
}

// Known reports whether Classify recognizes the kind of err, rather than falling back to Cause.
func Known(err error) bool {
	_, _, ok := classify(err)
	return ok
}

func classify(err error) (Status, string, bool) {
	var fe *failureError
	switch {
	case err == nil:
		return StatusOpen, "", true
	case errors.Is(err, syscall.ECONNREFUSED):
		return StatusClosed, "connection refused", true
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return StatusFiltered, "unreachable", true
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return StatusError, "connection reset", true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return StatusError, "connection closed by peer", true
	case errors.As(err, &fe) && fe.f > FailureNone && fe.f < failureEnd:
		return StatusError, fe.f.String(), true
	case errors.Is(err, context.Canceled):
		return StatusError, "cancelled", true
	case IsTimeout(err), errors.Is(err, os.ErrDeadlineExceeded):
		return StatusError, "i/o timeout", true
	}
	return 0, "", false
}

// ClassifyConnect is Classify for an error of opening the TCP connection to a target: an
// attempt that timed out is StatusFiltered with no error text (no answer to the SYN, as nmap
// says filtered).
func ClassifyConnect(err error) (Status, string) {
	s, text := Classify(err)
	if s == StatusError && IsTimeout(err) {
		return StatusFiltered, ""
	}
	return s, text
}

// ResetOnConnect reports whether err, an error of opening a TCP connection, says the peer
// accepted the connection and reset it before the dialer saw it established. A refusal is
// ECONNREFUSED (a reset answering the SYN); ECONNRESET comes only once the handshake is done.
// Something listens there: the port is open, and the probe records it as it records a
// connection reset before it was read, which it is as often, depending only on which side of
// the reset the dialer looked.
func ResetOnConnect(err error) bool {
	return errors.Is(err, syscall.ECONNRESET)
}

// IsTimeout reports whether err is a timeout: a context's deadline, or a net.Error (a
// connection's deadline, a dial's timeout) that says it is one.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// A Failure is a kind of protocol failure that a prober recognized in an error of its own
// protocol's packages, as Classify words it (see Mark).
type Failure uint8

// Kinds of protocol failure.
const (
	FailureNone            Failure = iota // not a protocol failure: Mark leaves the error alone
	FailurePDUTooLarge                    // "pdu too large": a unit's length is over the read cap
	FailureMessageTooLarge                // "message too large": a reassembled message or data set is over its cap
	FailureUnknownPDU                     // "unknown pdu type": not a unit of the protocol; the peer speaks another
	FailureMalformed                      // "malformed pdu": a unit, message or data set breaks its encoding
	FailureProtocol                       // "protocol error": a well-formed unit where the protocol does not allow it
	failureEnd
)

var failureText = [...]string{
	FailurePDUTooLarge:     "pdu too large",
	FailureMessageTooLarge: "message too large",
	FailureUnknownPDU:      "unknown pdu type",
	FailureMalformed:       "malformed pdu",
	FailureProtocol:        "protocol error",
}

// String returns the text Classify words f with.
func (f Failure) String() string {
	if f > FailureNone && f < failureEnd {
		return failureText[f]
	}
	return fmt.Sprintf("Failure(%d)", uint8(f))
}

// Mark returns err marked as a failure of kind f, for Classify; its message and its chain
// (errors.Is, errors.As) are err's. A nil err, or FailureNone, returns err unchanged.
func Mark(err error, f Failure) error {
	if err == nil || f == FailureNone {
		return err
	}
	return &failureError{err: err, f: f}
}

// failureError is an error marked by Mark.
type failureError struct {
	err error
	f   Failure
}

func (e *failureError) Error() string { return e.err.Error() }
func (e *failureError) Unwrap() error { return e.err }

// MaxCause is the length of Cause's text, at most.
const MaxCause = 120

// Cause words the root cause of err for a record: the system's text for an errno anywhere in
// the chain ("too many open files"), else the innermost error's message through SafeText. It
// is never empty for a non-nil error.
func Cause(err error) string {
	if err == nil {
		return ""
	}
	var errno syscall.Errno
	if errors.As(err, &errno) && errno != 0 {
		return textsafe.Clean(errno.Error(), MaxCause)
	}
	for {
		var next error
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			next = u.Unwrap()
		case interface{ Unwrap() []error }:
			if es := u.Unwrap(); len(es) > 0 {
				next = es[0]
			}
		}
		if next == nil {
			break
		}
		err = next
	}
	if s := cutAtWord(SafeText(err.Error()), MaxCause); s != "" {
		return s
	}
	return fmt.Sprintf("unclassified error (%T)", err)
}

// cutAtWord cuts s to at most n bytes, at a space when there is one in its second half.
func cutAtWord(s string, n int) string {
	s = textsafe.Clean(s, n)
	if len(s) < n {
		return s
	}
	if i := strings.LastIndexByte(s, ' '); i > n/2 {
		return s[:i]
	}
	return s
}

// SafeText is an error message as a log line or a record may show it, when some of its words
// may come from a server: every double-quoted Go string in it (as %q writes one: net/http and
// the Upper Layer quote what a peer sent) is kept only when it is a valid UID (see SafeUID) and
// replaced by "invalid (N bytes)" otherwise; the rest is cleaned of control characters and cut
// to MaxError bytes.
func SafeText(s string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '"')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		q, err := strconv.QuotedPrefix(s[i:])
		if err != nil {
			b.WriteString(s[i:]) // a lone quote: no quoted string follows
			break
		}
		v, _ := strconv.Unquote(q)
		if validUID(v) {
			b.WriteString(q)
		} else {
			b.WriteString(SafeUID(v))
		}
		s = s[i+len(q):]
	}
	return textsafe.Clean(b.String(), MaxError)
}

// SafeError is SafeText of err's message; "" for a nil error.
func SafeError(err error) string {
	if err == nil {
		return ""
	}
	return SafeText(err.Error())
}

// SafeUID is s when it is a valid UID (PS3.5 §9.1: 1 to 64 characters, digits and dots), else
// "invalid (N bytes)": what a log may show of a UID a server chose.
func SafeUID(s string) string {
	if validUID(s) {
		return s
	}
	return "invalid (" + strconv.Itoa(len(s)) + " bytes)"
}

func validUID(s string) bool {
	if len(s) == 0 || len(s) > MaxUID {
		return false
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && s[i] != '.' {
			return false
		}
	}
	return true
}
