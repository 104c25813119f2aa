package scan

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
)

// ErrNetworkUnreachable is wrapped by the error Run returns when the first UnreachableAfter
// connection attempts of the run all failed with "network is unreachable" (ENETUNREACH): this
// machine has no route to the targets (no network, or not the one intended), so the scan stops
// (SPEC "Safety of a run"). No result is stored for the targets those attempts were for, and
// the checkpoint stays below them: the scan resumes where it stopped.
//
// Only ENETUNREACH counts, which the local routing table gives without a packet leaving.
// EHOSTUNREACH ("no route to host") is an answer about one host: ARP found no neighbour on a
// local link, or a router sent ICMP host-unreachable, as whole unused subnets do. It proves
// the network works, and so does any other outcome of an attempt.
var ErrNetworkUnreachable = errors.New("scan: network is unreachable")

// UnreachableAfter is how many connection attempts, all unreachable, stop a scan.
const UnreachableAfter = 1000

// Verdicts of a reachWatch.
const (
	undecided = iota
	reachable
	unreachable
)

// reachWatch follows the first connection attempts of a run until one reaches the network
// (reachable) or UnreachableAfter of them did not (unreachable).
type reachWatch struct {
	mu      sync.Mutex    // protects the fields below
	n       int           // attempts so far, all unreachable
	verdict int           // undecided, reachable or unreachable
	decided chan struct{} // closed with the verdict
}

// reset starts watching afresh.
func (w *reachWatch) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n, w.verdict, w.decided = 0, undecided, make(chan struct{})
}

// report counts the outcome of one connection attempt (err nil: connected), and marks a when
// it found no route before the network was found reachable.
func (w *reachWatch) report(err error, a *attempt) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.verdict == reachable {
		return
	}
	if !errors.Is(err, syscall.ENETUNREACH) {
		if w.verdict == undecided {
			w.verdict = reachable
			close(w.decided)
		}
		return
	}
	if a != nil {
		a.unreach.Store(true) // held back, or dropped once the network is found unreachable
	}
	if w.verdict != undecided {
		return
	}
	if w.n++; w.n >= UnreachableAfter {
		w.verdict = unreachable
		close(w.decided)
	}
}

// state returns the verdict and the channel closed when it is reached.
func (w *reachWatch) state() (int, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.verdict, w.decided
}

// err is the error of an unreachable verdict.
func (w *reachWatch) err() error {
	return fmt.Errorf("%w: the first %d connection attempts found no route to their targets; check this machine's network, then resume",
		ErrNetworkUnreachable, UnreachableAfter)
}
