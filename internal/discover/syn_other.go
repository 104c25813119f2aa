//go:build !linux

package discover

import (
	"context"
	"fmt"
	"net/netip"
	"time"
)

// A SYNScanner finds whether IPv4 targets accept TCP connections from raw sockets; only on
// Linux. Elsewhere NewSYNScanner fails with ErrSYNUnavailable, and scans use connect().
type SYNScanner struct{}

// NewSYNScanner fails: no SYN stage on this system.
func NewSYNScanner(time.Duration) (*SYNScanner, error) { return nil, SYNAvailable() }

// SYNAvailable reports that this system has no SYN stage.
func SYNAvailable() error {
	return fmt.Errorf("%w: the SYN stage is Linux-only", ErrSYNUnavailable)
}

// Pending is never called: there is no SYNScanner.
func (s *SYNScanner) Pending() int { return 0 }

// Start fails: there is no SYNScanner.
func (s *SYNScanner) Start(netip.AddrPort, func(error)) error { return SYNAvailable() }

// Connect fails: there is no SYNScanner.
func (s *SYNScanner) Connect(context.Context, netip.AddrPort) error { return SYNAvailable() }

// Close does nothing.
func (s *SYNScanner) Close() error { return nil }
