package discover

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// DefaultConnectTimeout is how long a connection attempt waits for an answer to its SYN
// (SPEC --connect-timeout).
const DefaultConnectTimeout = 2 * time.Second

// ErrTimeout is wrapped by the error of a connection attempt that had no answer before the
// connect timeout: a filtered target. It is a timeout (os.ErrDeadlineExceeded).
var ErrTimeout = fmt.Errorf("discover: no answer before the connect timeout: %w", os.ErrDeadlineExceeded)

// ErrClosed is returned by Connect on a closed Connector.
var ErrClosed = errors.New("discover: connector closed")

// Outcome is what a connection attempt found, as a scan counts it.
type Outcome int

// Outcomes.
const (
	Open        Outcome = iota + 1 // the target accepted the connection
	Closed                         // connection refused (RST)
	Filtered                       // no answer before the timeout
	Unreachable                    // no route: ICMP unreachable, or none in the routing table
	Failed                         // another error: the scanner's own (out of descriptors) or the target's (reset)
)

var outcomeNames = [...]string{"", "open", "closed", "filtered", "unreachable", "failed"}

func (o Outcome) String() string {
	if o > 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// Classify returns the outcome of a connection attempt's error.
func Classify(err error) Outcome {
	var ne net.Error
	switch {
	case err == nil:
		return Open
	case errors.Is(err, syscall.ECONNREFUSED):
		return Closed
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return Unreachable
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return Filtered
	}
	return Failed
}

// A Hit is a target discovery found answering: open (SYN-ACK), or Closed (RST), which a scan
// counts without probing.
type Hit struct {
	Addr   netip.AddrPort
	Closed bool
}
