package dimse_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

var transferSyntaxes = []string{dicom.ExplicitVRLittleEndian, dicom.ImplicitVRLittleEndian}

func TestEcho(t *testing.T) {
	for _, status := range []dimse.Status{dimse.Success, dimse.RefusedNotAuthorized} {
		t.Run(status.String(), func(t *testing.T) {
			addr := serve(t, dicom.ImplicitVRLittleEndian, func(s *scp) {
				id, b, err := s.a.ReadCommand(s.ctx)
				if err != nil {
					t.Errorf("SCP: %v", err)
					return
				}
				if !bytes.Equal(b, cEchoRQ) {
					t.Errorf("C-ECHO-RQ =\n% x\nwant\n% x", b, cEchoRQ)
				}
				if id != s.contextOf(dimse.Verification) {
					t.Errorf("C-ECHO-RQ on context %d, want Verification's", id)
				}
				s.send(id, dimse.Command{Field: dimse.CEchoRSP, AffectedSOPClassUID: dimse.Verification, MessageIDBeingRespondedTo: 1, Status: status}, dicom.Dataset{})
				s.expectRelease()
			})
			a := dial(t, addr)
			got, err := dimse.Echo(context.Background(), a)
			if err != nil {
				t.Fatalf("Echo: %v", err)
			}
			if got != status {
				t.Errorf("Echo() = %v, want %v", got, status)
			}
			if err := a.Release(context.Background()); err != nil {
				t.Errorf("Release: %v", err)
			}
		})
	}
}

// TestFind streams matches carrying patient data and checks that only the
// allowed keys reach each, in both transfer syntaxes, and that the
// association stays usable.
func TestFind(t *testing.T) {
	for _, ts := range transferSyntaxes {
		t.Run(ts, func(t *testing.T) {
			const n = 5
			addr := serve(t, ts, func(s *scp) {
				id, c, ident, ok := s.expect(dimse.CFindRQ)
				if !ok {
					return
				}
				want := dimse.Command{Field: dimse.CFindRQ, AffectedSOPClassUID: dimse.StudyRootFind, MessageID: 1,
					Priority: dimse.PriorityLow, HasDataset: true}
				if !reflect.DeepEqual(c, want) {
					t.Errorf("C-FIND-RQ = %+v, want %+v", c, want)
				}
				if id != s.contextOf(dimse.StudyRootFind) {
					t.Errorf("C-FIND-RQ on context %d, want StudyRootFind's", id)
				}
				if level, _ := ident.String(dicom.QueryRetrieveLevel); level != "STUDY" || ident.Len() != 2 {
					t.Errorf("identifier: level %q, %d keys; want STUDY, 2 keys", level, ident.Len())
				}
				for i := range n {
					s.send(id, rsp(dimse.CFindRSP, dimse.Pending, true), studyMatch(fmt.Sprintf("2.25.%d", i)))
				}
				s.send(id, rsp(dimse.CFindRSP, dimse.Success, false), dicom.Dataset{})
				_, _, _, _ = s.expect(dimse.CEchoRQ)
				s.send(s.contextOf(dimse.Verification), rsp(dimse.CEchoRSP, dimse.Success, false), dicom.Dataset{})
				s.expectRelease()
			})
			a := dial(t, addr)
			var got []string
			opt := dimse.FindOptions{Allow: dimse.AllowTags(dicom.StudyInstanceUID, dicom.QueryRetrieveLevel), Priority: dimse.PriorityLow}
			status, err := dimse.Find(context.Background(), a, dimse.StudyRootFind, studyQuery(), opt, func(ds dicom.Dataset) error {
				for e := range ds.All() {
					if e.Tag != dicom.StudyInstanceUID && e.Tag != dicom.QueryRetrieveLevel {
						t.Errorf("key %v reached each", e.Tag)
					}
				}
				uid, _ := ds.String(dicom.StudyInstanceUID)
				got = append(got, uid)
				return nil
			})
			if err != nil || status != dimse.Success {
				t.Fatalf("Find() = %v, %v; want success", status, err)
			}
			if want := []string{"2.25.0", "2.25.1", "2.25.2", "2.25.3", "2.25.4"}; !reflect.DeepEqual(got, want) {
				t.Errorf("each saw %q, want %q", got, want)
			}
			if st, err := dimse.Echo(context.Background(), a); err != nil || st != dimse.Success {
				t.Errorf("Echo after Find = %v, %v", st, err)
			}
			if err := a.Release(context.Background()); err != nil {
				t.Errorf("Release: %v", err)
			}
		})
	}
}

// TestFindNilAllow checks that a nil allow-list keeps no key at all.
func TestFindNilAllow(t *testing.T) {
	addr := serve(t, dicom.ExplicitVRLittleEndian, func(s *scp) {
		id, _, _, ok := s.expect(dimse.CFindRQ)
		if !ok {
			return
		}
		s.send(id, rsp(dimse.CFindRSP, dimse.PendingWarning, true), studyMatch("2.25.1"))
		s.send(id, rsp(dimse.CFindRSP, dimse.Success, false), dicom.Dataset{})
		s.expectRelease()
	})
	a := dial(t, addr)
	n := 0
	status, err := dimse.Find(context.Background(), a, dimse.StudyRootFind, studyQuery(), dimse.FindOptions{}, func(ds dicom.Dataset) error {
		n++
		if ds.Len() != 0 {
			t.Errorf("each got %d keys, want none", ds.Len())
		}
		return nil
	})
	if err != nil || status != dimse.Success || n != 1 {
		t.Errorf("Find() = %v, %v with %d matches; want success, 1", status, err, n)
	}
	a.Release(context.Background())
}

func TestFindCancel(t *testing.T) {
	addr := serve(t, dicom.ImplicitVRLittleEndian, func(s *scp) {
		id, _, _, ok := s.expect(dimse.CFindRQ)
		if !ok {
			return
		}
		for i := range 3 {
			s.send(id, rsp(dimse.CFindRSP, dimse.Pending, true), studyMatch(fmt.Sprint("2.25.", i)))
		}
		cid, c, _, ok := s.expect(dimse.CCancelRQ)
		if !ok {
			return
		}
		if want := (dimse.Command{Field: dimse.CCancelRQ, MessageIDBeingRespondedTo: 1}); !reflect.DeepEqual(c, want) || cid != id {
			t.Errorf("C-CANCEL-RQ = %+v on context %d, want %+v on %d", c, cid, want, id)
		}
		// Responses already in flight when the cancel arrived.
		s.send(id, rsp(dimse.CFindRSP, dimse.Pending, true), studyMatch("2.25.3"))
		s.send(id, rsp(dimse.CFindRSP, dimse.Pending, false), dicom.Dataset{})
		s.send(id, rsp(dimse.CFindRSP, dimse.Cancel, false), dicom.Dataset{})
		s.expectRelease()
	})
	a := dial(t, addr)
	n := 0
	status, err := dimse.Find(context.Background(), a, dimse.StudyRootFind, studyQuery(), dimse.FindOptions{}, func(dicom.Dataset) error {
		if n++; n == 3 {
			return fmt.Errorf("enough: %w", dimse.ErrStop)
		}
		return nil
	})
	if err != nil || status != dimse.Cancel {
		t.Fatalf("Find() = %v, %v; want cancel", status, err)
	}
	if n != 3 {
		t.Errorf("each called %d times, want 3", n)
	}
	if err := a.Release(context.Background()); err != nil {
		t.Errorf("Release: %v", err)
	}
}

// TestFindCancelIgnored checks the bound on responses after a C-CANCEL-RQ.
func TestFindCancelIgnored(t *testing.T) {
	addr := serve(t, dicom.ImplicitVRLittleEndian, func(s *scp) {
		id, _, _, ok := s.expect(dimse.CFindRQ)
		if !ok {
			return
		}
		s.send(id, rsp(dimse.CFindRSP, dimse.Pending, true), studyMatch("2.25.0"))
		if _, _, _, ok := s.expect(dimse.CCancelRQ); !ok {
			return
		}
		pending := rsp(dimse.CFindRSP, dimse.Pending, false).Encode()
		for i := 0; ; i++ { // until the client hangs up
			if err := s.a.Send(s.ctx, id, pending, nil); err != nil {
				if i <= dimse.MaxResponsesAfterCancel {
					t.Errorf("SCP: send failed after %d responses: %v", i, err)
				}
				return
			}
		}
	})
	a := dial(t, addr)
	_, err := dimse.Find(context.Background(), a, dimse.StudyRootFind, studyQuery(), dimse.FindOptions{}, func(dicom.Dataset) error {
		return dimse.ErrStop
	})
	if !errors.Is(err, dimse.ErrTooManyResponses) {
		t.Errorf("Find() error = %v, want ErrTooManyResponses", err)
	}
}

func TestFindEachError(t *testing.T) {
	addr := serve(t, dicom.ImplicitVRLittleEndian, func(s *scp) {
		id, _, _, ok := s.expect(dimse.CFindRQ)
		if !ok {
			return
		}
		s.send(id, rsp(dimse.CFindRSP, dimse.Pending, true), studyMatch("2.25.0"))
		s.expectAbort()
	})
	a := dial(t, addr)
	errDisk := errors.New("disk full")
	_, err := dimse.Find(context.Background(), a, dimse.StudyRootFind, studyQuery(), dimse.FindOptions{}, func(dicom.Dataset) error {
		return errDisk
	})
	if err != errDisk {
		t.Errorf("Find() error = %v, want %v", err, errDisk)
	}
}

// TestFindPeerErrors scripts peers that break the protocol: Find must return
// an error and abort the association.
func TestFindPeerErrors(t *testing.T) {
	tooBig := studyMatch("2.25.1")
	tooBig.Set(dicom.NewString(dicom.StudyDescription, string(bytes.Repeat([]byte("x"), 200))))
	tests := []struct {
		name    string
		script  func(s *scp, id byte)
		wantErr error
		aborted bool // the peer aborted: no A-ABORT to expect
	}{
		{"response to another message", func(s *scp, id byte) {
			c := rsp(dimse.CFindRSP, dimse.Success, false)
			c.MessageIDBeingRespondedTo = 2
			s.send(id, c, dicom.Dataset{})
		}, dimse.ErrProtocol, false},
		{"response of another kind", func(s *scp, id byte) {
			s.send(id, rsp(dimse.CGetRSP, dimse.Success, false), dicom.Dataset{})
		}, dimse.ErrProtocol, false},
		{"response on another context", func(s *scp, id byte) {
			s.send(s.contextOf(dimse.Verification), rsp(dimse.CFindRSP, dimse.Success, false), dicom.Dataset{})
		}, dimse.ErrProtocol, false},
		{"pending without identifier", func(s *scp, id byte) {
			s.send(id, rsp(dimse.CFindRSP, dimse.Pending, false), dicom.Dataset{})
		}, dimse.ErrProtocol, false},
		{"identifier announced, command follows", func(s *scp, id byte) {
			s.sendRaw(id, rsp(dimse.CFindRSP, dimse.Pending, true).Encode(), nil)
			s.send(id, rsp(dimse.CFindRSP, dimse.Success, false), dicom.Dataset{})
		}, ul.ErrProtocol, false},
		{"malformed command", func(s *scp, id byte) {
			s.sendRaw(id, command(el(dicom.CommandDataSetType, us(0x0101))), nil)
		}, dimse.ErrMalformedCommand, false},
		{"identifier too large", func(s *scp, id byte) {
			s.send(id, rsp(dimse.CFindRSP, dimse.Pending, true), tooBig)
		}, dicom.ErrTooLarge, false},
		{"malformed identifier", func(s *scp, id byte) {
			s.sendRaw(id, rsp(dimse.CFindRSP, dimse.Pending, true).Encode(), []byte{0x08, 0, 0x52, 0, 1, 0, 0, 0, 'S'})
		}, dicom.ErrMalformed, false},
		{"release requested", func(s *scp, id byte) {
			s.a.Release(s.ctx)
		}, ul.ErrReleaseRequested, false},
		{"peer aborts", func(s *scp, id byte) {
			s.send(id, rsp(dimse.CFindRSP, dimse.Pending, true), studyMatch("2.25.1"))
			s.a.Abort()
		}, &ul.AbortedError{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serve(t, dicom.ExplicitVRLittleEndian, func(s *scp) {
				id, _, _, ok := s.expect(dimse.CFindRQ)
				if !ok {
					return
				}
				tt.script(s, id)
				if !tt.aborted && tt.name != "release requested" {
					s.expectAbort()
				}
			})
			a := dial(t, addr)
			opt := dimse.FindOptions{Allow: dimse.AllowTags(dicom.StudyInstanceUID), MaxIdentifierBytes: 200}
			_, err := dimse.Find(context.Background(), a, dimse.StudyRootFind, studyQuery(), opt, func(dicom.Dataset) error { return nil })
			if ab := new(*ul.AbortedError); errors.As(tt.wantErr, ab) {
				if !errors.As(err, ab) {
					t.Errorf("Find() error = %v, want an *ul.AbortedError", err)
				}
			} else if !errors.Is(err, tt.wantErr) {
				t.Errorf("Find() error = %v, want %v", err, tt.wantErr)
			}
			if _, err := dimse.Echo(context.Background(), a); err == nil {
				t.Error("association still usable after the error")
			}
		})
	}
}

func TestFindContextDone(t *testing.T) {
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"cancelled", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }, context.Canceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 200*time.Millisecond)
		}, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serve(t, dicom.ExplicitVRLittleEndian, func(s *scp) {
				id, _, _, ok := s.expect(dimse.CFindRQ)
				if !ok {
					return
				}
				s.send(id, rsp(dimse.CFindRSP, dimse.Pending, true), studyMatch("2.25.1"))
				s.expectAbort() // and nothing more: the client waits
			})
			a := dial(t, addr)
			ctx, cancel := tt.ctx()
			defer cancel()
			start := time.Now()
			_, err := dimse.Find(ctx, a, dimse.StudyRootFind, studyQuery(), dimse.FindOptions{}, func(dicom.Dataset) error {
				if tt.want == context.Canceled {
					time.AfterFunc(50*time.Millisecond, cancel)
				}
				return nil
			})
			if err != tt.want {
				t.Errorf("Find() error = %v, want %v", err, tt.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Find took %v after its context was done", d)
			}
		})
	}
}

func TestNoContext(t *testing.T) {
	addr := serve(t, dicom.ExplicitVRLittleEndian, func(s *scp) { s.expectRelease() })
	ctx := context.Background()
	a, err := ul.Dial(ctx, addr, ul.Config{CalledAE: "SCRIPTED", Contexts: []ul.ContextProposal{
		{AbstractSyntax: dimse.StudyRootFind, TransferSyntaxes: []string{dicom.ExplicitVRLittleEndian}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	each := func(dicom.Dataset) error { return nil }
	calls := map[string]func() error{
		"Echo": func() error { _, err := dimse.Echo(ctx, a); return err },
		"Find": func() error {
			_, err := dimse.Find(ctx, a, dimse.PatientRootFind, studyQuery(), dimse.FindOptions{}, each)
			return err
		},
		"Get":  func() error { _, err := dimse.Get(ctx, a, dimse.StudyRootGet, studyQuery(), nil); return err },
		"Move": func() error { _, err := dimse.Move(ctx, a, dimse.StudyRootMove, "X", studyQuery()); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, dimse.ErrNoContext) {
			t.Errorf("%s error = %v, want ErrNoContext", name, err)
		}
	}
	if err := a.Release(ctx); err != nil {
		t.Errorf("Release after ErrNoContext: %v", err)
	}
}

// instance is a data set big enough to span several PDVs.
func instance(uid string) dicom.Dataset {
	var ds dicom.Dataset
	ds.Set(dicom.NewString(dicom.SOPClassUID, dimse.SecondaryCapture))
	ds.Set(dicom.NewString(dicom.SOPInstanceUID, uid))
	ds.Set(dicom.NewString(dicom.PatientName, "FAKE^SECRET"))
	ds.Set(dicom.Element{Tag: dicom.PixelData, VR: dicom.VROB, Value: make([]byte, 40000)})
	return ds
}

func TestGet(t *testing.T) {
	statuses := []dimse.Status{dimse.Success, dimse.SubOpsWarning, dimse.OutOfResources}
	addr := serve(t, dicom.ImplicitVRLittleEndian, func(s *scp) {
		id, c, _, ok := s.expect(dimse.CGetRQ)
		if !ok {
			return
		}
		want := dimse.Command{Field: dimse.CGetRQ, AffectedSOPClassUID: dimse.StudyRootGet, MessageID: 1, HasDataset: true}
		if !reflect.DeepEqual(c, want) {
			t.Errorf("C-GET-RQ = %+v, want %+v", c, want)
		}
		sc := s.contextOf(dimse.SecondaryCapture)
		for i, st := range statuses {
			uid := fmt.Sprint("2.25.", 100+i)
			s.send(sc, dimse.Command{Field: dimse.CStoreRQ, AffectedSOPClassUID: dimse.SecondaryCapture, AffectedSOPInstanceUID: uid,
				MessageID: uint16(10 + i), HasDataset: true}, instance(uid))
			rid, r, _, ok := s.expect(dimse.CStoreRSP)
			if !ok {
				return
			}
			want := dimse.Command{Field: dimse.CStoreRSP, AffectedSOPClassUID: dimse.SecondaryCapture, AffectedSOPInstanceUID: uid,
				MessageIDBeingRespondedTo: uint16(10 + i), Status: st}
			if !reflect.DeepEqual(r, want) || rid != sc {
				t.Errorf("C-STORE-RSP = %+v on %d, want %+v on %d", r, rid, want, sc)
			}
			p := rsp(dimse.CGetRSP, dimse.Pending, false)
			p.Remaining, p.Completed = new(uint16(uint16(2-i))), new(uint16(uint16(i+1)))
			s.send(id, p, dicom.Dataset{})
		}
		final := rsp(dimse.CGetRSP, dimse.SubOpsWarning, false)
		final.Completed, final.Failed, final.Warning = new(uint16(1)), new(uint16(1)), new(uint16(1))
		s.send(id, final, dicom.Dataset{})
		s.expectRelease()
	})
	a := dial(t, addr)
	var got []dimse.StoreRequest
	var heads [][]byte
	ops, err := dimse.Get(context.Background(), a, dimse.StudyRootGet, studyQuery(), func(ctx context.Context, req dimse.StoreRequest, data io.Reader) (dimse.Status, error) {
		head := make([]byte, 8)
		if _, err := io.ReadFull(data, head); err != nil {
			t.Errorf("read head: %v", err)
		}
		got, heads = append(got, req), append(heads, head)
		return statuses[len(got)-1], nil
	})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	want := dimse.SubOps{Status: dimse.SubOpsWarning, Completed: new(uint16(1)), Failed: new(uint16(1)), Warning: new(uint16(1))}
	if !reflect.DeepEqual(ops, want) {
		t.Errorf("Get() = %+v, want %+v", ops, want)
	}
	for i, req := range got {
		want := dimse.StoreRequest{SOPClassUID: dimse.SecondaryCapture, SOPInstanceUID: fmt.Sprint("2.25.", 100+i),
			MessageID: uint16(10 + i), TransferSyntax: dicom.ImplicitVRLittleEndian}
		if req != want {
			t.Errorf("store %d: %+v, want %+v", i, req, want)
		}
		// (0008,0016) UI, Implicit VR: the data set starts with its SOP Class UID.
		if wantHead := []byte{0x08, 0, 0x16, 0, 26, 0, 0, 0}; !bytes.Equal(heads[i], wantHead) {
			t.Errorf("store %d starts % x, want % x", i, heads[i], wantHead)
		}
	}
	if len(got) != len(statuses) {
		t.Errorf("handler called %d times, want %d", len(got), len(statuses))
	}
	if err := a.Release(context.Background()); err != nil {
		t.Errorf("Release: %v", err)
	}
}

func TestGetStop(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name    string
		ret     error
		wantErr error
	}{
		{"stop", fmt.Errorf("one is enough: %w", dimse.ErrStop), dimse.ErrStopped},
		{"handler error", errBoom, errBoom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serve(t, dicom.ExplicitVRLittleEndian, func(s *scp) {
				if _, _, _, ok := s.expect(dimse.CGetRQ); !ok {
					return
				}
				s.send(s.contextOf(dimse.SecondaryCapture), dimse.Command{Field: dimse.CStoreRQ, AffectedSOPClassUID: dimse.SecondaryCapture,
					AffectedSOPInstanceUID: "2.25.1", MessageID: 1, HasDataset: true}, instance("2.25.1"))
				s.expectAbort()
			})
			a := dial(t, addr)
			calls := 0
			_, err := dimse.Get(context.Background(), a, dimse.StudyRootGet, studyQuery(), func(_ context.Context, _ dimse.StoreRequest, data io.Reader) (dimse.Status, error) {
				calls++
				// Read it all, or the SCP may still be sending it when the
				// client closes, and get a reset instead of the A-ABORT.
				io.Copy(io.Discard, data)
				return dimse.Success, tt.ret
			})
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Get() error = %v, want %v", err, tt.wantErr)
			}
			if calls != 1 {
				t.Errorf("handler called %d times, want 1", calls)
			}
		})
	}
}

func TestGetPeerErrors(t *testing.T) {
	tests := []struct {
		name    string
		script  func(s *scp, id byte)
		wantErr error
	}{
		{"C-STORE-RQ without data set", func(s *scp, id byte) {
			s.send(s.contextOf(dimse.SecondaryCapture), dimse.Command{Field: dimse.CStoreRQ, AffectedSOPClassUID: dimse.SecondaryCapture,
				AffectedSOPInstanceUID: "2.25.1", MessageID: 1}, dicom.Dataset{})
		}, dimse.ErrProtocol},
		{"data set where none is announced", func(s *scp, id byte) {
			s.sendRaw(id, rsp(dimse.CGetRSP, dimse.Pending, false).Encode(), []byte{0x08, 0, 0x52, 0, 0, 0, 0, 0})
		}, ul.ErrProtocol},
		{"C-FIND-RSP", func(s *scp, id byte) {
			s.send(id, rsp(dimse.CFindRSP, dimse.Success, false), dicom.Dataset{})
		}, dimse.ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serve(t, dicom.ExplicitVRLittleEndian, func(s *scp) {
				id, _, _, ok := s.expect(dimse.CGetRQ)
				if !ok {
					return
				}
				tt.script(s, id)
				s.expectAbort()
			})
			a := dial(t, addr)
			_, err := dimse.Get(context.Background(), a, dimse.StudyRootGet, studyQuery(), nil)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Get() error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestMove(t *testing.T) {
	tests := []struct {
		name      string
		responses []dimse.Command
		want      dimse.SubOps
	}{
		{"moved", []dimse.Command{
			{Field: dimse.CMoveRSP, MessageIDBeingRespondedTo: 1, Status: dimse.Pending, Remaining: new(uint16(1)), Completed: new(uint16(1)),
				Failed: new(uint16(0)), Warning: new(uint16(0))},
			{Field: dimse.CMoveRSP, MessageIDBeingRespondedTo: 1, Status: dimse.Success, Completed: new(uint16(2)),
				Failed: new(uint16(0)), Warning: new(uint16(0))},
		}, dimse.SubOps{Status: dimse.Success, Completed: new(uint16(2)), Failed: new(uint16(0)), Warning: new(uint16(0))}},
		{"unknown destination", []dimse.Command{
			{Field: dimse.CMoveRSP, MessageIDBeingRespondedTo: 1, Status: dimse.MoveDestinationUnknown, ErrorComment: "who?"},
		}, dimse.SubOps{Status: dimse.MoveDestinationUnknown}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serve(t, dicom.ExplicitVRLittleEndian, func(s *scp) {
				id, c, ident, ok := s.expect(dimse.CMoveRQ)
				if !ok {
					return
				}
				want := dimse.Command{Field: dimse.CMoveRQ, AffectedSOPClassUID: dimse.StudyRootMove, MessageID: 1,
					MoveDestination: "DEST", HasDataset: true}
				if !reflect.DeepEqual(c, want) || ident.Len() != 2 {
					t.Errorf("C-MOVE-RQ = %+v with %d keys, want %+v with 2", c, ident.Len(), want)
				}
				for _, r := range tt.responses {
					s.send(id, r, dicom.Dataset{})
				}
				s.expectRelease()
			})
			a := dial(t, addr)
			got, err := dimse.Move(context.Background(), a, dimse.StudyRootMove, "DEST", studyQuery())
			if err != nil {
				t.Fatalf("Move: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Move() = %+v, want %+v", got, tt.want)
			}
			if err := a.Release(context.Background()); err != nil {
				t.Errorf("Release: %v", err)
			}
		})
	}
}

func TestMoveDataWhereNoneAnnounced(t *testing.T) {
	addr := serve(t, dicom.ExplicitVRLittleEndian, func(s *scp) {
		id, _, _, ok := s.expect(dimse.CMoveRQ)
		if !ok {
			return
		}
		s.sendRaw(id, rsp(dimse.CMoveRSP, dimse.Pending, false).Encode(), []byte{0x08, 0, 0x52, 0, 0, 0, 0, 0})
		s.expectAbort()
	})
	a := dial(t, addr)
	if _, err := dimse.Move(context.Background(), a, dimse.StudyRootMove, "DEST", studyQuery()); !errors.Is(err, ul.ErrProtocol) {
		t.Errorf("Move() error = %v, want ul.ErrProtocol", err)
	}
}
