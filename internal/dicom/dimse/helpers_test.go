package dimse_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

// scp is the acceptor side of a scripted conversation: a test drives it
// message by message and checks every command the client sends.
type scp struct {
	t   testing.TB
	ctx context.Context
	a   *ul.Assoc
}

// serve listens on 127.0.0.1, accepts one association with the transfer
// syntax prefer (Explicit or Implicit VR Little Endian) on every context,
// and runs script on it in its own goroutine. The test waits for script to
// end before it ends itself.
func serve(t testing.TB, prefer string, script func(s *scp)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	done := make(chan struct{})
	t.Cleanup(func() {
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("scripted SCP did not finish")
		}
		cancel()
	})
	go func() {
		defer close(done)
		defer ln.Close()
		conn, err := ln.Accept()
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		a, err := ul.Accept(ctx, conn, ul.ServerConfig{Decide: func(rq *ul.AAssociateRQ) (*ul.AAssociateAC, *ul.AAssociateRJ) {
			return ul.DefaultAC(rq, nil, []string{prefer}), nil
		}})
		if err != nil {
			t.Errorf("ul.Accept: %v", err)
			return
		}
		defer a.Close()
		script(&scp{t: t, ctx: ctx, a: a})
	}()
	return ln.Addr().String()
}

// dial requests an association with ProposeGet's contexts and roles.
func dial(t testing.TB, addr string) *ul.Assoc {
	t.Helper()
	contexts, roles := dimse.ProposeGet()
	a, err := ul.Dial(context.Background(), addr, ul.Config{CalledAE: "SCRIPTED", Contexts: contexts, Roles: roles})
	if err != nil {
		t.Fatalf("ul.Dial: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// read reads the next command and, when one follows, its data set.
func (s *scp) read() (id byte, c dimse.Command, data []byte, ok bool) {
	s.t.Helper()
	id, b, err := s.a.ReadCommand(s.ctx)
	if err != nil {
		s.t.Errorf("SCP: read command: %v", err)
		return 0, c, nil, false
	}
	if c, err = dimse.DecodeCommand(b); err != nil {
		s.t.Errorf("SCP: %v", err)
		return 0, c, nil, false
	}
	if c.HasDataset {
		if data, err = s.a.ReadData(s.ctx); err != nil {
			s.t.Errorf("SCP: read data set: %v", err)
			return 0, c, nil, false
		}
	}
	return id, c, data, true
}

// expect reads the next command and checks its field and, for a request
// with an identifier, that the identifier decodes in the context's transfer
// syntax.
func (s *scp) expect(field dimse.CommandField) (byte, dimse.Command, dicom.Dataset, bool) {
	s.t.Helper()
	id, c, data, ok := s.read()
	if !ok {
		return 0, c, dicom.Dataset{}, false
	}
	if c.Field != field {
		s.t.Errorf("SCP: got %v, want %v", c.Field, field)
		return 0, c, dicom.Dataset{}, false
	}
	var ds dicom.Dataset
	if data != nil {
		var err error
		if ds, err = dicom.Decode(data, dicom.DecodeOptions{Explicit: s.ts(id) == dicom.ExplicitVRLittleEndian}); err != nil {
			s.t.Errorf("SCP: decode identifier: %v", err)
			return 0, c, ds, false
		}
	}
	return id, c, ds, true
}

// ts returns the transfer syntax of context id.
func (s *scp) ts(id byte) string {
	for _, pc := range s.a.Info().Accepted {
		if pc.ID == id {
			return pc.TransferSyntax
		}
	}
	return ""
}

// contextOf returns the ID of the accepted context for abstractSyntax.
func (s *scp) contextOf(abstractSyntax string) byte {
	pc, ok := s.a.Context(abstractSyntax)
	if !ok {
		s.t.Errorf("SCP: no context for %s", abstractSyntax)
	}
	return pc.ID
}

// send sends c on context id, with ds encoded in that context's transfer
// syntax when c.HasDataset.
func (s *scp) send(id byte, c dimse.Command, ds dicom.Dataset) bool {
	s.t.Helper()
	var data []byte
	if c.HasDataset {
		var err error
		if data, err = dicom.Encode(ds, s.ts(id) == dicom.ExplicitVRLittleEndian); err != nil {
			s.t.Errorf("SCP: encode: %v", err)
			return false
		}
	}
	return s.sendRaw(id, c.Encode(), data)
}

func (s *scp) sendRaw(id byte, cmd, data []byte) bool {
	s.t.Helper()
	if err := s.a.Send(s.ctx, id, cmd, data); err != nil {
		s.t.Errorf("SCP: send: %v", err)
		return false
	}
	return true
}

// expectAbort checks that the client's next PDU is an A-ABORT, possibly
// after commands it sent before it.
func (s *scp) expectAbort() {
	s.t.Helper()
	for range 100 {
		_, _, err := s.a.ReadCommand(s.ctx)
		var ab *ul.AbortedError
		switch {
		case errors.As(err, &ab):
			return
		case err != nil:
			s.t.Errorf("SCP: got %v, want A-ABORT", err)
			return
		}
	}
	s.t.Error("SCP: no A-ABORT")
}

// expectRelease answers the client's A-RELEASE-RQ.
func (s *scp) expectRelease() {
	s.t.Helper()
	if _, _, err := s.a.ReadCommand(s.ctx); !errors.Is(err, ul.ErrReleaseRequested) {
		s.t.Errorf("SCP: got %v, want A-RELEASE-RQ", err)
		return
	}
	if err := s.a.ReplyRelease(s.ctx); err != nil {
		s.t.Errorf("SCP: %v", err)
	}
}

func rsp(field dimse.CommandField, status dimse.Status, hasData bool) dimse.Command {
	return dimse.Command{Field: field, MessageIDBeingRespondedTo: 1, Status: status, HasDataset: hasData}
}

func studyMatch(uid string) dicom.Dataset {
	var ds dicom.Dataset
	ds.Set(dicom.NewString(dicom.QueryRetrieveLevel, "STUDY"))
	ds.Set(dicom.NewString(dicom.StudyInstanceUID, uid))
	ds.Set(dicom.NewString(dicom.PatientName, "FAKE^SECRET"))
	ds.Set(dicom.NewString(dicom.PatientID, "FAKE-ID-1"))
	return ds
}

func studyQuery() dicom.Dataset {
	var ds dicom.Dataset
	ds.Set(dicom.NewString(dicom.QueryRetrieveLevel, "STUDY"))
	ds.Set(dicom.NewString(dicom.StudyInstanceUID))
	return ds
}
