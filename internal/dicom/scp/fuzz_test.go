package scp

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

// FuzzQuery parses untrusted identifiers as the server does and answers
// them from a small tree. Property: no panic, and every response identifier
// decodes back with the query's level; what a C-GET would retrieve is what
// an IMAGE-level C-FIND with the same keys finds, at STUDY level and below.
func FuzzQuery(f *testing.F) {
	seed := func(explicit bool, keys ...dicom.Element) {
		var ds dicom.Dataset
		for _, e := range keys {
			ds.Set(e)
		}
		b, err := dicom.Encode(ds, explicit)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, explicit, true)
	}
	level := func(l string) dicom.Element { return dicom.NewString(dicom.QueryRetrieveLevel, l) }
	seed(true, level("STUDY"), dicom.NewString(dicom.StudyInstanceUID), dicom.NewString(dicom.StudyDate, "20180101-"))
	seed(false, level("SERIES"), dicom.NewString(dicom.Modality, "C*"), dicom.NewString(dicom.NumberOfSeriesRelatedInstances))
	seed(true, level("IMAGE"), dicom.NewString(dicom.SOPInstanceUID), dicom.NewString(dicom.PatientName, "FAKE^?ATIENT1*"))
	seed(false, level("PATIENT"), dicom.NewString(dicom.PatientID), dicom.NewString(dicom.NumberOfPatientRelatedStudies))
	seed(true, level("STUDY"), dicom.NewString(dicom.ModalitiesInStudy, "MR", "US"), dicom.NewString(dicom.StudyDate, "-20200101"))
	f.Add([]byte{}, false, false)

	tr := NewTree(5, 12)
	f.Fuzz(func(t *testing.T, b []byte, explicit, patientRoot bool) {
		ds, err := dicom.Decode(b, dicom.DecodeOptions{Explicit: explicit, MaxBytes: 64 << 10})
		if err != nil {
			return
		}
		q, err := parseQuery(&ds, patientRoot)
		if err != nil {
			return
		}
		id := identifier{aeTitle: "AE", computed: true, chatty: true, explicit: explicit}
		var buf []byte
		found := map[string]bool{}
		q.find(tr, true, func(m *match) bool {
			buf = id.append(buf[:0], &q, m)
			out, err := dicom.Decode(buf, dicom.DecodeOptions{Explicit: explicit})
			if err != nil {
				t.Fatalf("response identifier does not decode: %v", err)
			}
			if lv, _ := out.String(dicom.QueryRetrieveLevel); lv != q.level.String() {
				t.Fatalf("response level %q, want %v", lv, q.level)
			}
			if m.in != nil {
				found[m.in.SOPUID] = true
			}
			return true
		})
		if q.level != levelImage {
			return
		}
		n := 0
		q.instances(tr, func(_ *Study, _ *Series, in *Instance) bool {
			if !found[in.SOPUID] {
				t.Fatalf("retrieve takes %s, which C-FIND does not find", in.SOPUID)
			}
			n++
			return true
		})
		if n != len(found) {
			t.Fatalf("retrieve takes %d instances, C-FIND finds %d", n, len(found))
		}
	})
}

// sessionSeed is a whole association, as a client would send it: an
// A-ASSOCIATE-RQ, then each message on context 1 (Verification), 3 (Study
// Root FIND) or 5 (Study Root GET), then an A-RELEASE-RQ.
func sessionSeed(msgs ...[]byte) []byte {
	rq := &ul.AAssociateRQ{
		ProtocolVersion: 1, CalledAE: "DICOMTEST", CallingAE: "FUZZ", ApplicationContext: ul.ApplicationContext,
		PresentationContexts: []ul.PresentationContextRQ{
			{ID: 1, AbstractSyntax: dimse.Verification, TransferSyntaxes: []string{dicom.ImplicitVRLittleEndian}},
			{ID: 3, AbstractSyntax: dimse.StudyRootFind, TransferSyntaxes: []string{dicom.ExplicitVRLittleEndian}},
			{ID: 5, AbstractSyntax: dimse.StudyRootGet, TransferSyntaxes: []string{dicom.ExplicitVRLittleEndian}},
			{ID: 7, AbstractSyntax: "1.2.840.10008.5.1.4.1.1.2", TransferSyntaxes: []string{dicom.ExplicitVRLittleEndian}},
		},
		UserInfo: ul.UserInfo{MaxLength: 16384, ImplementationClassUID: "1.2.3",
			Roles: []ul.RoleSelection{{SOPClassUID: "1.2.840.10008.5.1.4.1.1.2", SCP: true}}},
	}
	b := rq.Append(nil)
	for _, m := range msgs {
		b = append(b, m...)
	}
	return ul.AReleaseRQ{}.Append(b)
}

// message encodes a command, and its data set if any, as P-DATA-TFs.
func message(ctxID byte, cmd dimse.Command, data []byte) []byte {
	cmd.HasDataset = data != nil
	b := (&ul.PDataTF{PDVs: []ul.PDV{{ContextID: ctxID, Command: true, Last: true, Data: cmd.Encode()}}}).Append(nil)
	if data != nil {
		b = (&ul.PDataTF{PDVs: []ul.PDV{{ContextID: ctxID, Last: true, Data: data}}}).Append(b)
	}
	return b
}

// FuzzServe feeds untrusted bytes to a server as a client's side of a
// connection. Property: no panic, and the server's handler ends once the
// client has gone.
func FuzzServe(f *testing.F) {
	var q dicom.Dataset
	q.Set(dicom.NewString(dicom.QueryRetrieveLevel, "STUDY"))
	q.Set(dicom.NewString(dicom.StudyInstanceUID))
	ident, err := dicom.Encode(q, true)
	if err != nil {
		f.Fatal(err)
	}
	echo := message(1, dimse.Command{Field: dimse.CEchoRQ, AffectedSOPClassUID: dimse.Verification, MessageID: 1}, nil)
	findRQ := message(3, dimse.Command{Field: dimse.CFindRQ, AffectedSOPClassUID: dimse.StudyRootFind, MessageID: 2}, ident)
	getRQ := message(5, dimse.Command{Field: dimse.CGetRQ, AffectedSOPClassUID: dimse.StudyRootGet, MessageID: 3}, ident)
	storeRSP := message(7, dimse.Command{Field: dimse.CStoreRSP, AffectedSOPClassUID: "1.2.840.10008.5.1.4.1.1.2", MessageIDBeingRespondedTo: 1}, nil)
	cancel := message(3, dimse.Command{Field: dimse.CCancelRQ, MessageIDBeingRespondedTo: 2}, nil)
	f.Add(sessionSeed(echo), uint8(0))
	f.Add(sessionSeed(echo, findRQ, echo), uint8(1))
	f.Add(sessionSeed(findRQ, cancel), uint8(2))
	f.Add(sessionSeed(getRQ, storeRSP, storeRSP), uint8(0))
	f.Add(sessionSeed(message(7, dimse.Command{Field: dimse.CStoreRQ, AffectedSOPClassUID: "1.2.840.10008.5.1.4.1.1.2", MessageID: 4,
		AffectedSOPInstanceUID: "1.2"}, []byte{8, 0, 0x18, 0, 'U', 'I', 2, 0, '1', 0})), uint8(3))
	f.Add(ul.AAbort{}.Append(nil), uint8(0))
	f.Add([]byte("GET / HTTP/1.0\r\n\r\n"), uint8(0))

	tr := NewTree(1, 3)
	f.Fuzz(func(t *testing.T, b []byte, personality uint8) {
		cfg := Config{Tree: tr, Timeout: 5 * time.Second}
		switch personality % 4 {
		case 1:
			cfg.CheckCalled, cfg.AllowedCalling = true, []string{"FUZZ"}
		case 2:
			cfg.Refused, cfg.Refusal = Services{Find: true, Get: true}, RefuseStatus
		case 3:
			cfg.ComputedCounts, cfg.Chatty, cfg.LimitFind = true, true, 1
		}
		runSession(t, cfg, b)
	})
}

// runSession serves one connection over net.Pipe, writes b as its client
// and closes, then returns the server's stats once its handler has ended:
// the handler runs in the calling goroutine, and a handler that does not end
// when its client has gone hangs the test.
func runSession(t *testing.T, cfg Config, b []byte) Stats {
	t.Helper()
	s := New(cfg)
	client, server := net.Pipe()
	if !s.track(server, true) {
		t.Fatal("new server closed")
	}
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		go io.Copy(io.Discard, client) // ends when client is closed
		client.Write(b)                // fails once the handler has closed its end
		client.Close()
	}()
	s.handle(server)
	<-sent
	s.Close()
	return s.Stats()
}
