package guard

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dicomtest"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

func encodeQuery(explicit bool, elems ...dicom.Element) []byte {
	var ds dicom.Dataset
	for _, e := range elems {
		ds.Set(e)
	}
	b, err := dicom.Encode(ds, explicit)
	if err != nil {
		panic(err)
	}
	return b
}

// FuzzIdentifier: any identifier bytes are read without panic, and what is read does not
// change when the decoded identifier is encoded again.
func FuzzIdentifier(f *testing.F) {
	for _, explicit := range []bool{false, true} {
		f.Add(encodeQuery(explicit, dicom.NewString(dicom.QueryRetrieveLevel, "STUDY"), dicom.NewString(dicom.StudyInstanceUID, "")), explicit)
		f.Add(encodeQuery(explicit, dicom.NewString(dicom.QueryRetrieveLevel, "study "), dicom.NewString(dicom.PatientName, "**")), explicit)
		f.Add(encodeQuery(explicit, dicom.NewString(dicom.QueryRetrieveLevel, "SERIES"), dicom.NewString(dicom.StudyDate, "2020-")), explicit)
		f.Add(encodeQuery(explicit, dicom.NewString(dicom.QueryRetrieveLevel, "IMAGE"), dicom.NewString(dicom.StudyInstanceUID, `1.2\3.4`)), explicit)
	}
	f.Add([]byte{0x08, 0x00, 0x52, 0x00, 'S', 'Q', 0, 0, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xff, 0x00, 0xe0, 0xff, 0xff, 0xff, 0xff}, true)
	f.Add([]byte{0x08, 0x00, 0x32, 0x10, 'S', 'Q', 0, 0, 16, 0, 0, 0, 0xfe, 0xff, 0x00, 0xe0, 8, 0, 0, 0, 0x08, 0x00, 0x00, 0x01, 'S', 'H', 2, 0, 'X', ' '}, true)
	f.Fuzz(func(t *testing.T, b []byte, explicit bool) {
		level, universal, err := inspectIdentifier(b, explicit)
		if err != nil {
			return
		}
		ds, err := dicom.Decode(b, dicom.DecodeOptions{Explicit: explicit, MaxBytes: maxIdentifier})
		if err != nil {
			t.Fatalf("inspectIdentifier read what Decode refuses: %v", err)
		}
		again, err := dicom.Encode(ds, explicit)
		if err != nil {
			return
		}
		level2, universal2, err := inspectIdentifier(again, explicit)
		if err != nil || level2 != level || universal2 != universal {
			t.Fatalf("re-encoded identifier reads %q %v %v, first %q %v", level2, universal2, err, level, universal)
		}
	})
}

// fuzzPolicy lets READER echo, store and query at study level, but not universally.
const fuzzPolicy = `
peers:
  - name: reader
    calling_ae: [READER]
    source: 127.0.0.1
    services: [echo, find, store]
    query_levels: [STUDY]
`

func pdata(ctxID byte, command, last bool, data []byte) []byte {
	return (&ul.PDataTF{PDVs: []ul.PDV{{ContextID: ctxID, Command: command, Last: last, Data: data}}}).Append(nil)
}

// FuzzClientStream sends an admitted A-ASSOCIATE-RQ and then any bytes as the client: the guard
// never panics, and ends the connection once the client has stopped sending.
func FuzzClientStream(f *testing.F) {
	up := dicomtest.Start(f, dicomtest.Config{AETitle: "ARCHIVE", Tree: dicomtest.NewTree(1, 3)})
	g := startGuard(f, up.Addr(), fuzzPolicy, func(c *Config) { c.IdleTimeout = 2 * time.Second })
	gs := startGuard(f, up.Addr(), fuzzPolicy, func(c *Config) { c.IdleTimeout, c.Splice = 2*time.Second, true })
	contexts := append(dimse.ProposeQR(), ul.ContextProposal{AbstractSyntax: dimse.StorageClasses[0], TransferSyntaxes: []string{dicom.ExplicitVRLittleEndian}})
	rq := (&ul.AAssociateRQ{ProtocolVersion: 1, CalledAE: "ARCHIVE", CallingAE: "READER", ApplicationContext: ul.ApplicationContext,
		UserInfo: ul.UserInfo{MaxLength: 16384, ImplementationClassUID: ul.ImplementationClassUID}})
	for i, c := range contexts {
		rq.PresentationContexts = append(rq.PresentationContexts, ul.PresentationContextRQ{ID: byte(2*i + 1), AbstractSyntax: c.AbstractSyntax, TransferSyntaxes: c.TransferSyntaxes})
	}
	rqBytes := rq.Append(nil)

	echo := dimse.Command{Field: dimse.CEchoRQ, MessageID: 1, AffectedSOPClassUID: dimse.Verification}.Encode()
	find := dimse.Command{Field: dimse.CFindRQ, MessageID: 2, AffectedSOPClassUID: dimse.StudyRootFind, HasDataset: true}.Encode()
	universal := encodeQuery(false, dicom.NewString(dicom.QueryRetrieveLevel, "STUDY"), dicom.NewString(dicom.StudyInstanceUID, ""))
	cancel := dimse.Command{Field: dimse.CCancelRQ, MessageIDBeingRespondedTo: 2}.Encode()
	f.Add(pdata(1, true, true, echo))
	f.Add(append(pdata(3, true, true, find), pdata(3, false, true, universal)...))
	f.Add(append(append(pdata(3, true, false, find[:10]), pdata(3, true, true, find[10:])...), pdata(3, false, true, universal)...))
	f.Add(append(pdata(3, true, true, find), pdata(3, true, true, cancel)...))
	f.Add(append(pdata(1, true, true, echo), ul.AReleaseRQ{}.Append(nil)...))
	f.Add(pdata(2, true, true, echo))
	f.Add(pdata(1, false, true, []byte{1, 2}))
	f.Add([]byte{0x04, 0, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x09, 0, 0, 0, 0, 0})
	storeCtx := byte(2*len(contexts) - 1)
	store := dimse.Command{Field: dimse.CStoreRQ, MessageID: 3, AffectedSOPClassUID: dimse.StorageClasses[0], AffectedSOPInstanceUID: "2.25.1", HasDataset: true}.Encode()
	big := make([]byte, 3*spliceMin)
	f.Add(append(pdata(storeCtx, true, true, store), pdata(storeCtx, false, true, big)...))
	f.Add(append(append(pdata(storeCtx, true, true, store), pdata(storeCtx, false, false, big)...), pdata(storeCtx, true, true, echo)...))
	f.Add(append(pdata(storeCtx, true, true, store), pdata(storeCtx, false, true, big)[:spliceMin]...))
	f.Add(append(pdata(1, true, true, echo), pdata(1, false, true, big)...))
	f.Fuzz(func(t *testing.T, stream []byte) {
		clientStream(t, g.Addr, rqBytes, stream)
		clientStream(t, gs.Addr, rqBytes, stream) // data forwarded unread
	})
}

// clientStream associates with the guard at addr, sends stream and closes its side: the guard
// must end the connection.
func clientStream(t *testing.T, addr string, rqBytes, stream []byte) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(rqBytes); err != nil {
		t.Fatal(err)
	}
	if p, err := ul.ReadPDU(c, 1<<20); err != nil || p.Type() != ul.TypeAAssociateAC {
		t.Fatalf("association: %v %v", p, err)
	}
	c.Write(stream)
	c.(*net.TCPConn).CloseWrite()
	if _, err := io.Copy(io.Discard, c); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the guard kept the connection open after the client stopped: %v", err)
	}
}
