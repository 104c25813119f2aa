package guard

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
	"github.com/pacswatch/pacswatch/internal/guard/policy"
)

func TestInspectIdentifier(t *testing.T) {
	s := func(tag dicom.Tag, v ...string) dicom.Element { return dicom.NewString(tag, v...) }
	sq := func(tag dicom.Tag, item []byte, undefined bool) dicom.Element {
		hdr := []byte{0xfe, 0xff, 0x00, 0xe0, byte(len(item)), byte(len(item) >> 8), 0, 0}
		if undefined {
			hdr = []byte{0xfe, 0xff, 0x00, 0xe0, 0xff, 0xff, 0xff, 0xff}
			item = append(item, 0xfe, 0xff, 0x0d, 0xe0, 0, 0, 0, 0)
		}
		return dicom.Element{Tag: tag, VR: dicom.VRSQ, Value: append(hdr, item...)}
	}
	restrictiveItem := encodeQuery(true, s(0x00080100, "T-12345")) // Code Value
	emptyItem := encodeQuery(true, s(0x00080100, ""))
	const procCode = dicom.Tag(0x00081032) // Procedure Code Sequence
	tests := []struct {
		name      string
		elems     []dicom.Element
		level     policy.Level
		universal bool
	}{
		{"empty keys", []dicom.Element{s(dicom.QueryRetrieveLevel, "STUDY"), s(dicom.StudyInstanceUID, ""), s(dicom.PatientName, "")}, policy.Study, true},
		{"wildcards only", []dicom.Element{s(dicom.QueryRetrieveLevel, "study"), s(dicom.PatientName, "**"), s(dicom.PatientID, "*")}, policy.Study, true},
		{"charset is no key", []dicom.Element{s(dicom.QueryRetrieveLevel, "STUDY"), s(dicom.SpecificCharacterSet, "ISO_IR 100")}, policy.Study, true},
		{"date range", []dicom.Element{s(dicom.QueryRetrieveLevel, "STUDY"), s(dicom.StudyDate, "20200101-")}, policy.Study, false},
		{"name prefix", []dicom.Element{s(dicom.QueryRetrieveLevel, "PATIENT"), s(dicom.PatientName, "DOE*")}, policy.Patient, false},
		{"uid list", []dicom.Element{s(dicom.QueryRetrieveLevel, "SERIES"), s(dicom.StudyInstanceUID, "1.2", "3.4")}, policy.Series, false},
		{"private key ignored", []dicom.Element{s(dicom.QueryRetrieveLevel, "STUDY"), {Tag: 0x00091010, VR: dicom.VRLO, Value: []byte("ABCD")}}, policy.Study, true},
		{"sequence match", []dicom.Element{s(dicom.QueryRetrieveLevel, "STUDY"), sq(procCode, restrictiveItem, false)}, policy.Study, false},
		{"sequence of empty keys", []dicom.Element{s(dicom.QueryRetrieveLevel, "STUDY"), sq(procCode, emptyItem, false)}, policy.Study, true},
		{"unreadable item: doubt refuses", []dicom.Element{s(dicom.QueryRetrieveLevel, "STUDY"), sq(procCode, restrictiveItem, true)}, policy.Study, true},
		{"no level", []dicom.Element{s(dicom.PatientID, "X")}, "", false},
	}
	for _, tt := range tests {
		level, universal, err := inspectIdentifier(encodeQuery(true, tt.elems...), true)
		if err != nil || level != tt.level || universal != tt.universal {
			t.Errorf("%s: %q, universal %v, %v; want %q, %v", tt.name, level, universal, err, tt.level, tt.universal)
		}
	}
	if _, _, err := inspectIdentifier([]byte{1, 2, 3}, false); err == nil {
		t.Error("garbage identifier read")
	}
}

// TestStoreRefusedWithItsData: a C-STORE from a peer that may not store is answered by the
// guard once its data set has passed, and the association goes on.
func TestStoreRefusedWithItsData(t *testing.T) {
	up := upstream(t, 1, nil)
	g := startGuard(t, up.Addr(), basePolicy)
	ctx := context.Background()
	reader := mustDial(t, g.Addr, "READER") // may get, so storage contexts are accepted
	if st, err := storeOne(ctx, reader); err != nil || st != dimse.RefusedNotAuthorized {
		t.Fatalf("C-STORE by READER = %v, %v; want 0x0124 from the guard", st, err)
	}
	if st, err := dimse.Echo(ctx, reader); err != nil || st != dimse.Success {
		t.Fatalf("C-ECHO after the refused C-STORE = %v, %v", st, err)
	}
	reader.Release(ctx)
	admin := mustDial(t, g.Addr, "ADMIN")
	if st, err := storeOne(ctx, admin); err != nil || st != dimse.Success {
		t.Fatalf("C-STORE by ADMIN = %v, %v", st, err)
	}
	admin.Release(ctx)
	if up.Stats().Store != 1 {
		t.Errorf("upstream saw %d C-STOREs, want ADMIN's only", up.Stats().Store)
	}
}

func TestOversizedIdentifierRefused(t *testing.T) {
	up := upstream(t, 1, nil)
	g := startGuard(t, up.Addr(), basePolicy)
	a := mustDial(t, g.Addr, "ADMIN")
	var keys []dicom.Element
	for i := range 1200 { // private keys of 60 bytes: over maxIdentifier together
		keys = append(keys, dicom.Element{Tag: dicom.Tag(0x00091000 + i), VR: dicom.VRLO, Value: []byte(strings.Repeat("X", 60))})
	}
	st, _ := find(t, a, studyQuery(keys...))
	if st != dimse.OutOfResources {
		t.Errorf("C-FIND with an identifier over %d bytes = %v, want 0xA700", maxIdentifier, st)
	}
	if st, _ := find(t, a, studyQuery(dicom.NewString(dicom.StudyDate, "20200101"))); st != dimse.Success {
		t.Errorf("next C-FIND = %v", st)
	}
	if up.Stats().Find != 1 {
		t.Errorf("upstream saw %d C-FINDs, want 1", up.Stats().Find)
	}
}

func TestClientProtocolErrorAborts(t *testing.T) {
	up := upstream(t, 1, nil)
	g := startGuard(t, up.Addr(), basePolicy)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := net.Dial("tcp", g.Addr)
	if err != nil {
		t.Fatal(err)
	}
	a, err := ul.NewClient(ctx, conn, ul.Config{CalledAE: "ARCHIVE", CallingAE: "ADMIN", Contexts: dimse.ProposeQR()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// A command on a presentation context that was never proposed.
	rq := dimse.Command{Field: dimse.CEchoRQ, MessageID: 1, AffectedSOPClassUID: dimse.Verification}
	pdu := (&ul.PDataTF{PDVs: []ul.PDV{{ContextID: 255, Command: true, Last: true, Data: rq.Encode()}}}).Append(nil)
	if _, err := conn.Write(pdu); err != nil {
		t.Fatal(err)
	}
	_, _, err = a.ReadCommand(ctx)
	var ab *ul.AbortedError
	if !errors.As(err, &ab) || ab.Abort.Source != 2 || ab.Abort.Reason != 6 {
		t.Errorf("after a PDV on context 255: %v, want A-ABORT source 2 reason 6", err)
	}
	end := g.Audit.wait(t, func(r Record) bool { return r.Event == EventAssociationEnd })
	if end.End != endClientError {
		t.Errorf("end = %q, want %q", end.End, endClientError)
	}
}

func TestIdleTimeout(t *testing.T) {
	up := upstream(t, 1, nil)
	g := startGuard(t, up.Addr(), basePolicy, func(c *Config) { c.IdleTimeout = 150 * time.Millisecond })
	a := mustDial(t, g.Addr, "ADMIN")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err := a.ReadCommand(ctx)
	var ab *ul.AbortedError
	if !errors.As(err, &ab) || ab.Abort.Source != 2 {
		t.Errorf("idle association: %v, want an A-ABORT from the guard", err)
	}
	end := g.Audit.wait(t, func(r Record) bool { return r.Event == EventAssociationEnd })
	if end.End != endIdle {
		t.Errorf("end = %q, want %q", end.End, endIdle)
	}
}

func TestUpstreamDown(t *testing.T) {
	g := startGuard(t, "127.0.0.1:1", basePolicy)
	_, err := dial(t, g.Addr, "ADMIN")
	if rj, ok := rejected(err); !ok || rj != (ul.AAssociateRJ{Result: 2, Source: 3, Reason: 1}) {
		t.Errorf("with the upstream down: %v, want A-ASSOCIATE-RJ 2/3/1", err)
	}
	g.Audit.wait(t, func(r Record) bool { return r.Refusal == "upstream-unreachable" })
}
