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

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
	"github.com/pacswatch/pacswatch/internal/textsafe"
)

// Classify maps an error met while probing a target to the record's Status and a short error
// text that is safe to store: it names the kind of failure, never bytes a server sent.
// A nil error is StatusOpen. An error of no kind Classify knows (see Known) is StatusError with
// its cause as Cause words it: never a bare "error".
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
	var ne net.Error
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
	case errors.Is(err, ul.ErrPDUTooLarge):
		return StatusError, "pdu too large", true
	case errors.Is(err, ul.ErrMessageTooLarge), errors.Is(err, dicom.ErrTooLarge):
		return StatusError, "message too large", true
	case errors.Is(err, ul.ErrUnknownPDUType):
		return StatusError, "unknown pdu type", true
	case errors.Is(err, ul.ErrMalformed), errors.Is(err, dicom.ErrMalformed), errors.Is(err, dicom.ErrTruncated):
		return StatusError, "malformed pdu", true
	case errors.Is(err, ul.ErrProtocol), errors.Is(err, ul.ErrUnexpectedPDU):
		return StatusError, "protocol error", true
	case errors.Is(err, context.Canceled):
		return StatusError, "cancelled", true
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return StatusError, "i/o timeout", true
	}
	return 0, "", false
}

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
