package guard

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

// readRaw reads one PDU and returns its bytes.
func readRaw(t *testing.T, c net.Conn) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := ul.ReadPDU(io.TeeReader(c, &buf), 1<<20); err != nil {
		t.Fatalf("read PDU: %v", err)
	}
	return buf.Bytes()
}

// TestForwardsBytesUnchanged: what an admitted client sends reaches the upstream byte for byte,
// and what the upstream answers reaches the client byte for byte: the A-ASSOCIATE-RQ and -AC,
// a command and its data set split over PDUs as the client split them, the responses, and the
// release.
func TestForwardsBytesUnchanged(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	g := startGuard(t, l.Addr().String(), basePolicy)

	rq := (&ul.AAssociateRQ{ProtocolVersion: 1, CalledAE: "ARCHIVE", CallingAE: "ADMIN", ApplicationContext: ul.ApplicationContext,
		PresentationContexts: []ul.PresentationContextRQ{{ID: 1, AbstractSyntax: dimse.StudyRootFind, TransferSyntaxes: []string{dicom.ImplicitVRLittleEndian}}},
		UserInfo:             ul.UserInfo{MaxLength: 16384, ImplementationClassUID: "1.2.3.4", ImplementationVersionName: "CLIENT_1"}}).Append(nil)
	ac := (&ul.AAssociateAC{ProtocolVersion: 1, CalledAE: "ARCHIVE", CallingAE: "ADMIN", ApplicationContext: ul.ApplicationContext,
		PresentationContexts: []ul.PresentationContextAC{{ID: 1, Result: ul.PCAcceptance, TransferSyntax: dicom.ImplicitVRLittleEndian}},
		UserInfo:             ul.UserInfo{MaxLength: 16384, ImplementationClassUID: "5.6.7.8", ImplementationVersionName: "ARCHIVE_9"}}).Append(nil)
	cmd := dimse.Command{Field: dimse.CFindRQ, MessageID: 9, AffectedSOPClassUID: dimse.StudyRootFind, HasDataset: true}.Encode()
	ident := encodeQuery(false, dicom.NewString(dicom.QueryRetrieveLevel, "STUDY"), dicom.NewString(dicom.StudyDate, "20240101"))
	clientPDUs := [][]byte{
		pdata(1, true, false, cmd[:20]), // the command in two PDUs, then the identifier in two PDVs of one
		append(pdata(1, true, true, cmd[20:]), pdata(1, false, false, ident[:10])...),
		pdata(1, false, true, ident[10:]),
	}
	// pdata appends whole PDUs; the second element above is two PDUs back to back.
	pending := dimse.Command{Field: dimse.CFindRSP, MessageIDBeingRespondedTo: 9, AffectedSOPClassUID: dimse.StudyRootFind, Status: dimse.Pending, HasDataset: true}.Encode()
	final := dimse.Command{Field: dimse.CFindRSP, MessageIDBeingRespondedTo: 9, AffectedSOPClassUID: dimse.StudyRootFind, Status: dimse.Success}.Encode()
	upPDUs := [][]byte{pdata(1, true, true, pending), pdata(1, false, true, ident), pdata(1, true, true, final)}

	got := make(chan []byte, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		var in bytes.Buffer
		in.Write(readRaw(t, c))
		c.Write(ac)
		for range 4 { // the client's four P-DATA-TFs
			in.Write(readRaw(t, c))
		}
		for _, p := range upPDUs {
			c.Write(p)
		}
		in.Write(readRaw(t, c)) // A-RELEASE-RQ
		c.Write(ul.AReleaseRP{}.Append(nil))
		got <- in.Bytes()
	}()

	c, err := net.Dial("tcp", g.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var sent, recv bytes.Buffer
	write := func(b []byte) {
		sent.Write(b)
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	write(rq)
	recv.Write(readRaw(t, c))
	for _, p := range clientPDUs {
		write(p)
	}
	for range upPDUs {
		recv.Write(readRaw(t, c))
	}
	write(ul.AReleaseRQ{}.Append(nil))
	recv.Write(readRaw(t, c))

	if in := <-got; !bytes.Equal(in, sent.Bytes()) {
		t.Errorf("the upstream received %d bytes that differ from the client's %d:\n% x\n% x", len(in), sent.Len(), in, sent.Bytes())
	}
	want := append(append([]byte{}, ac...), bytes.Join(upPDUs, nil)...)
	want = append(want, ul.AReleaseRP{}.Append(nil)...)
	if !bytes.Equal(recv.Bytes(), want) {
		t.Errorf("the client received bytes that differ from the upstream's:\n% x\n% x", recv.Bytes(), want)
	}
	rec := g.Audit.wait(t, func(r Record) bool { return r.Event == EventRequest })
	if rec.Results == nil || *rec.Results != 1 || rec.Universal == nil || *rec.Universal || rec.Status != "0x0000" {
		t.Errorf("request record = %+v", rec)
	}
}
