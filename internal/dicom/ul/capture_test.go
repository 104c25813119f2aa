package ul_test

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
	"github.com/pacswatch/pacswatch/internal/peertest"
)

var capture = flag.Bool("capture", false, "capture PDUs from the real peers into testdata/captured")

// capturedDir holds PDUs captured byte for byte from real peers on loopback (no patient data:
// association PDUs only). They seed FuzzReadPDU and are checked by TestCapturedPDUs.
const capturedDir = "testdata/captured"

// capturedSeeds returns the captured PDUs, for the fuzzers' seed corpus.
func capturedSeeds(t testing.TB) [][]byte {
	files, _ := filepath.Glob(filepath.Join(capturedDir, "*.bin"))
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// TestCapturedPDUs parses every captured PDU and checks what its name says it is.
func TestCapturedPDUs(t *testing.T) {
	if *capture {
		captureAll(t)
	}
	files, _ := filepath.Glob(filepath.Join(capturedDir, "*.bin"))
	if len(files) < 5 {
		t.Fatalf("want at least 5 captured PDUs in %s, found %d (run with -capture)", capturedDir, len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p, err := ul.ReadPDU(bytes.NewReader(b), 1<<20)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		name := filepath.Base(f)
		switch {
		case strings.Contains(name, "-ac"):
			ac, ok := p.(*ul.AAssociateAC)
			if !ok || ac.UserInfo.ImplementationClassUID != "1.2.276.0.7230010.3.0.3.6.7" || ac.UserInfo.ImplementationVersionName != "OFFIS_DCMTK_367" || ac.UserInfo.MaxLength != 16384 {
				t.Errorf("%s: %T %+v, want DCMTK 3.6.7's A-ASSOCIATE-AC", name, p, p)
			}
		case strings.Contains(name, "-rj-called"), strings.Contains(name, "-rj-calling"):
			rj, ok := p.(*ul.AAssociateRJ)
			want := byte(7)
			if strings.Contains(name, "-rj-calling") {
				want = 3
			}
			if !ok || rj.Result != 1 || rj.Source != 1 || rj.Reason != want {
				t.Errorf("%s: %+v, want A-ASSOCIATE-RJ 1/1/%d", name, p, want)
			}
		case strings.Contains(name, "-abort"):
			if ab, ok := p.(*ul.AAbort); !ok || ab.Source != 0 {
				t.Errorf("%s: %+v, want an A-ABORT from the service user", name, p)
			}
		case strings.Contains(name, "-pdata"):
			if _, ok := p.(*ul.PDataTF); !ok {
				t.Errorf("%s: %T, want P-DATA-TF", name, p)
			}
		default:
			t.Errorf("%s: name says nothing about the PDU", name)
		}
		if got := p.Append(nil); !bytes.Equal(got, b) {
			t.Logf("%s: re-encoding differs from the capture (%d vs %d bytes): fine for padding, noted", name, len(got), len(b))
		}
	}
}

// captureAll records PDUs from real peers: run `go test -run TestCapturedPDUs -capture ./internal/dicom/ul`.
func captureAll(t *testing.T) {
	if err := os.MkdirAll(capturedDir, 0o755); err != nil {
		t.Fatal(err)
	}
	open := peertest.StartOrthanc(t, peertest.OrthancConfig{})
	called := peertest.StartOrthanc(t, peertest.OrthancConfig{CheckCalledAET: true})
	strict := peertest.StartOrthanc(t, peertest.OrthancConfig{Strict: true})
	qr := peertest.StartDcmqrscp(t, []peertest.QRAE{{Title: "ARCHIVE"}}, nil)
	save := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(capturedDir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	save("orthanc-1.10-ac.bin", exchange(t, open.DICOMPort, "ORTHANC", nil)[0])
	save("orthanc-1.10-rj-called.bin", exchange(t, called.DICOMPort, "WRONG", nil)[0])
	save("orthanc-1.10-rj-calling.bin", exchange(t, strict.DICOMPort, "ORTHANC", nil)[0])
	save("dcmqrscp-3.6.7-ac.bin", exchange(t, qr.Port, "ARCHIVE", nil)[0])
	save("dcmqrscp-3.6.7-rj-called.bin", exchange(t, qr.Port, "NOSUCHAE", nil)[0])
	// After the AC: a C-ECHO-RQ answered by a P-DATA-TF, and a C-FIND Orthanc refuses with an A-ABORT.
	echo := dimse.Command{Field: dimse.CEchoRQ, AffectedSOPClassUID: dimse.Verification, MessageID: 1}.Encode()
	save("dcmqrscp-3.6.7-pdata-echo-rsp.bin", exchange(t, qr.Port, "ARCHIVE", [][]byte{pdata(1, cmdLast, echo)})[1])
	find := dimse.Command{Field: dimse.CFindRQ, AffectedSOPClassUID: dimse.StudyRootFind, MessageID: 1, HasDataset: true}.Encode()
	var id dicom.Dataset
	id.Set(dicom.NewString(dicom.QueryRetrieveLevel, "STUDY"))
	idb, err := dicom.Encode(id, false)
	if err != nil {
		t.Fatal(err)
	}
	save("orthanc-1.10-abort-find.bin", exchange(t, open.DICOMPort, "ORTHANC", [][]byte{pdata(3, cmdLast, find), pdata(3, dataLast, idb)})[1])
}

// exchange sends our A-ASSOCIATE-RQ (Verification on context 1, Study Root FIND on 3, Implicit VR
// LE only), then each of then, and returns the raw PDUs received: the association answer first.
func exchange(t *testing.T, port int, called string, then [][]byte) [][]byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	rq := &ul.AAssociateRQ{
		ProtocolVersion: 1, CalledAE: called, CallingAE: "PACSWATCH", ApplicationContext: ul.ApplicationContext,
		PresentationContexts: []ul.PresentationContextRQ{
			{ID: 1, AbstractSyntax: dimse.Verification, TransferSyntaxes: []string{dicom.ImplicitVRLittleEndian}},
			{ID: 3, AbstractSyntax: dimse.StudyRootFind, TransferSyntaxes: []string{dicom.ImplicitVRLittleEndian}},
		},
		UserInfo: ul.UserInfo{MaxLength: 16384, ImplementationClassUID: ul.ImplementationClassUID, ImplementationVersionName: ul.ImplementationVersionName},
	}
	if _, err := c.Write(rq.Append(nil)); err != nil {
		t.Fatal(err)
	}
	first, err := readRaw(c)
	if err != nil {
		t.Fatal(err)
	}
	out := [][]byte{first}
	for _, b := range then {
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if len(then) > 0 {
		next, err := readRaw(c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, next)
	}
	return out
}
