package scp_test

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dicomtest"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/scp"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded)
}

func isAbort(err error, source byte) bool {
	var ab *ul.AbortedError
	return errors.As(err, &ab) && ab.Abort.Source == source
}

// TestHostile checks what our client sees of each hostile personality, and
// that the server's handler ends once the client has gone.
func TestHostile(t *testing.T) {
	short := func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	associate := func(t *testing.T, s *scp.Server, ctx context.Context) (*ul.Assoc, error) {
		contexts, roles := dimse.ProposeGet()
		a, err := ul.Dial(ctx, s.Addr(), ul.Config{CalledAE: "ANY", Contexts: contexts, Roles: roles})
		if err == nil {
			t.Cleanup(func() { a.Close() })
		}
		return a, err
	}
	// dialErr associates and checks the error.
	dialErr := func(want func(error) bool, wantText string) func(*testing.T, *scp.Server) {
		return func(t *testing.T, s *scp.Server) {
			a, err := associate(t, s, short(t))
			if err == nil {
				a.Close()
			}
			if !want(err) {
				t.Errorf("associate = %v, want %s", err, wantText)
			}
		}
	}
	is := func(target error) func(error) bool { return func(err error) bool { return errors.Is(err, target) } }

	for _, tc := range []struct {
		h     scp.Hostile
		check func(*testing.T, *scp.Server)
	}{
		{scp.SilentAfterConnect, dialErr(isTimeout, "a timeout")},
		{scp.CloseOnConnect, dialErr(func(err error) bool {
			return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
		}, "the connection's end")},
		{scp.NotDICOM, dialErr(is(ul.ErrUnknownPDUType), "unknown PDU type")},
		{scp.SSHBanner, dialErr(is(ul.ErrUnknownPDUType), "unknown PDU type")},
		{scp.AbortOnConnect, dialErr(func(err error) bool { return isAbort(err, 2) }, "an A-ABORT")},
		{scp.AbortAfterRQ, dialErr(func(err error) bool { return isAbort(err, 2) }, "an A-ABORT")},
		{scp.SilentMidPDU, dialErr(isTimeout, "a timeout")},
		{scp.HugeLength, dialErr(is(ul.ErrPDUTooLarge), "pdu too large")},
		{scp.ShortLength, dialErr(is(ul.ErrMalformed), "malformed")},
		{scp.UnknownPDUType, dialErr(is(ul.ErrUnknownPDUType), "unknown PDU type")},
		{scp.EvenContextID, dialErr(is(ul.ErrMalformed), "malformed")},
		{scp.InvalidReject, dialErr(func(err error) bool {
			var rj *ul.RejectedError
			return errors.As(err, &rj) && rj.RJ == ul.AAssociateRJ{Result: 7, Source: 9, Reason: 42} && strings.Contains(rj.RJ.Meaning(), "unknown")
		}, "rejection 7/9/42")},
		{scp.Trickle, func(t *testing.T, s *scp.Server) {
			ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			defer cancel()
			if _, err := associate(t, s, ctx); !isTimeout(err) {
				t.Errorf("associate = %v, want a timeout", err)
			}
		}},
		{scp.InvalidResult, func(t *testing.T, s *scp.Server) {
			a, err := associate(t, s, short(t))
			if err != nil {
				t.Fatalf("associate: %v", err)
			}
			info := a.Info()
			if len(info.Accepted) != 0 || len(info.Refused) == 0 {
				t.Fatalf("%d contexts accepted, %d refused; want none, all", len(info.Accepted), len(info.Refused))
			}
			for _, r := range info.Refused {
				if r.Result != 9 || r.Result.String() != "unknown(9)" {
					t.Fatalf("context %d refused with %v, want unknown(9)", r.ID, r.Result)
				}
			}
			if _, err := dimse.Echo(short(t), a); !errors.Is(err, dimse.ErrNoContext) {
				t.Errorf("C-ECHO = %v, want %v", err, dimse.ErrNoContext)
			}
			if err := a.Release(short(t)); err != nil {
				t.Errorf("release: %v", err)
			}
		}},
		{scp.AbortAfterEcho, func(t *testing.T, s *scp.Server) {
			a, err := associate(t, s, short(t))
			if err != nil {
				t.Fatalf("associate: %v", err)
			}
			if _, err := dimse.Echo(short(t), a); !isAbort(err, 0) {
				t.Errorf("C-ECHO = %v, want an A-ABORT", err)
			}
		}},
		{scp.AbortMidFind, func(t *testing.T, s *scp.Server) {
			a, err := associate(t, s, short(t))
			if err != nil {
				t.Fatalf("associate: %v", err)
			}
			n := 0
			_, err = dimse.Find(short(t), a, dimse.StudyRootFind, identifier("STUDY"), dimse.FindOptions{},
				func(dicom.Dataset) error { n++; return nil })
			if n != 3 || !isAbort(err, 0) {
				t.Errorf("C-FIND = %d responses, %v; want 3, an A-ABORT", n, err)
			}
		}},
		{scp.EndlessPending, func(t *testing.T, s *scp.Server) {
			a, err := associate(t, s, short(t))
			if err != nil {
				t.Fatalf("associate: %v", err)
			}
			n := 0
			_, err = dimse.Find(testCtx(t), a, dimse.StudyRootFind, identifier("STUDY", dicom.StudyInstanceUID), dimse.FindOptions{},
				func(dicom.Dataset) error {
					if n++; n == 100 {
						return dimse.ErrStop
					}
					return nil
				})
			if n != 100 || !errors.Is(err, dimse.ErrTooManyResponses) {
				t.Errorf("C-FIND = %d responses, %v; want 100, %v", n, err, dimse.ErrTooManyResponses)
			}
		}},
		{scp.HugePDataLength, func(t *testing.T, s *scp.Server) {
			a, err := associate(t, s, short(t))
			if err != nil {
				t.Fatalf("associate: %v", err)
			}
			if _, err := dimse.Echo(short(t), a); !errors.Is(err, ul.ErrPDUTooLarge) {
				t.Errorf("C-ECHO = %v, want %v", err, ul.ErrPDUTooLarge)
			}
		}},
		{scp.NoReleaseReply, func(t *testing.T, s *scp.Server) {
			a, err := associate(t, s, short(t))
			if err != nil {
				t.Fatalf("associate: %v", err)
			}
			if status, err := dimse.Echo(short(t), a); err != nil || status != dimse.Success {
				t.Fatalf("C-ECHO = %v, %v", status, err)
			}
			if err := a.Release(short(t)); !isTimeout(err) {
				t.Errorf("release = %v, want a timeout", err)
			}
		}},
	} {
		t.Run(tc.h.String(), func(t *testing.T) {
			s := dicomtest.Start(t, scp.Config{Hostile: tc.h, Tree: scp.NewTree(1, 10)})
			tc.check(t, s)
			waitIdle(t, s) // the handler ended when the client went away
			if s.Stats().Connections == 0 {
				t.Error("no connection served")
			}
		})
	}
}

func TestHostileString(t *testing.T) {
	seen := map[string]bool{}
	for h := scp.HostileNone; h <= scp.NoReleaseReply; h++ {
		s := h.String()
		if seen[s] || strings.HasPrefix(s, "Hostile(") {
			t.Errorf("Hostile(%d).String() = %q: duplicate or unnamed", int(h), s)
		}
		seen[s] = true
	}
	if got, want := scp.Hostile(99).String(), "Hostile(99)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestHostileClose closes hostile servers while their clients still hold the
// connection: no handler outlives Close.
func TestHostileClose(t *testing.T) {
	for _, h := range []scp.Hostile{scp.SilentAfterConnect, scp.Trickle, scp.EndlessPending, scp.NoReleaseReply} {
		t.Run(h.String(), func(t *testing.T) {
			s := scp.New(scp.Config{Hostile: h, Timeout: time.Hour})
			ln := listen(t)
			go s.Serve(context.Background(), ln)
			for s.Addr() == "" {
				time.Sleep(time.Millisecond)
			}
			contexts, _ := dimse.ProposeGet()
			go func() { // blocks until the server goes away
				a, err := ul.Dial(context.Background(), s.Addr(), ul.Config{CalledAE: "ANY", Contexts: contexts})
				if err == nil {
					dimse.Find(context.Background(), a, dimse.StudyRootFind, identifier("STUDY"), dimse.FindOptions{},
						func(dicom.Dataset) error { return nil })
					a.Release(context.Background())
					a.Close()
				}
			}()
			for s.Stats().Connections == 0 {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			done := make(chan struct{})
			go func() { s.Close(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Close did not return")
			}
			if got := s.Stats().Active; got != 0 {
				t.Errorf("%d connections left after Close", got)
			}
		})
	}
}
