package scp_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/scp"
)

// TestServerStart: Start serves in the background, Addr answers at once, and
// the channel tells Serve's result once the server is closed.
func TestServerStart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := scp.New(scp.Config{})
	errc := s.Start(context.Background(), l)
	if got, want := s.Addr(), l.Addr().String(); got != want {
		t.Errorf("Addr() = %q right after Start, want %q", got, want)
	}
	s.Close()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Serve returned %v after Close, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
}
