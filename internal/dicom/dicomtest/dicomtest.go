// Package dicomtest runs pacswatch's DICOM SCP (package scp) in-process for
// tests and benchmarks: Start serves a Config on a loopback port for the
// length of a test. The names below are those of package scp, kept here so
// that a test needs one import.
package dicomtest

import (
	"context"
	"net"
	"testing"

	"github.com/pacswatch/pacswatch/internal/dicom/scp"
)

// Start starts a server for cfg on 127.0.0.1 with a port of the system's
// choosing, and closes it when the test ends.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("dicomtest: listen: %v", err)
	}
	s := scp.New(cfg)
	errc := s.Start(context.Background(), l)
	t.Cleanup(func() {
		s.Close()
		if err := <-errc; err != nil {
			t.Errorf("dicomtest: %v", err)
		}
	})
	return s
}

// New returns a server with cfg's defaults filled in, as scp.New does.
func New(cfg Config) *Server { return scp.New(cfg) }

// NewTree and NewVirtualTree are scp's.
func NewTree(seed uint64, n int) *Tree        { return scp.NewTree(seed, n) }
func NewVirtualTree(seed uint64, n int) *Tree { return scp.NewVirtualTree(seed, n) }

// Types of package scp.
type (
	Config   = scp.Config
	Server   = scp.Server
	Stats    = scp.Stats
	Services = scp.Services
	Refusal  = scp.Refusal
	Hostile  = scp.Hostile
	Tree     = scp.Tree
	Study    = scp.Study
	Series   = scp.Series
	Instance = scp.Instance
)

// Defaults and identity of package scp.
const (
	DefaultAETitle            = scp.DefaultAETitle
	DefaultTimeout            = scp.DefaultTimeout
	ImplementationClassUID    = scp.ImplementationClassUID
	ImplementationVersionName = scp.ImplementationVersionName
)

// ErrServing is scp.ErrServing.
var ErrServing = scp.ErrServing

// Refusals of package scp.
const (
	RefuseAbort   = scp.RefuseAbort
	RefuseStatus  = scp.RefuseStatus
	RefuseContext = scp.RefuseContext
)

// Hostile personalities of package scp.
const (
	HostileNone        = scp.HostileNone
	SilentAfterConnect = scp.SilentAfterConnect
	CloseOnConnect     = scp.CloseOnConnect
	NotDICOM           = scp.NotDICOM
	SSHBanner          = scp.SSHBanner
	AbortOnConnect     = scp.AbortOnConnect
	AbortAfterRQ       = scp.AbortAfterRQ
	SilentMidPDU       = scp.SilentMidPDU
	HugeLength         = scp.HugeLength
	ShortLength        = scp.ShortLength
	UnknownPDUType     = scp.UnknownPDUType
	EvenContextID      = scp.EvenContextID
	InvalidResult      = scp.InvalidResult
	InvalidReject      = scp.InvalidReject
	Trickle            = scp.Trickle
	AbortAfterEcho     = scp.AbortAfterEcho
	AbortMidFind       = scp.AbortMidFind
	EndlessPending     = scp.EndlessPending
	HugePDataLength    = scp.HugePDataLength
	NoReleaseReply     = scp.NoReleaseReply
)
