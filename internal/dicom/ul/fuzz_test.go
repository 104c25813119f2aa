package ul_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

// pduSeeds are valid and broken PDUs of every type.
func pduSeeds() [][]byte {
	full := &ul.AAssociateRQ{ProtocolVersion: 1, CalledAE: "A", CallingAE: "B", ApplicationContext: ul.ApplicationContext,
		PresentationContexts: []ul.PresentationContextRQ{{ID: 1, AbstractSyntax: verification, TransferSyntaxes: []string{implicitLE, explicitLE}}},
		UserInfo:             fullUserInfo()}
	return [][]byte{
		verificationRQ(),
		dcmtkAC(),
		full.Append(nil),
		threeAC(64),
		ul.AAssociateRJ{Result: 1, Source: 1, Reason: 7}.Append(nil),
		cat(pdata(1, cmdMore, []byte("abc")), pdata(1, dataLast, nil))[:15],
		(&ul.PDataTF{PDVs: []ul.PDV{{ContextID: 1, Command: true, Last: true, Data: []byte{1}}, {ContextID: 3, Data: []byte{2}}}}).Append(nil),
		ul.AReleaseRQ{}.Append(nil),
		ul.AReleaseRP{}.Append(nil),
		ul.AAbort{Source: 2, Reason: 6}.Append(nil),
		[]byte{0x04, 0x00, 0xFF, 0xFF, 0xFF, 0xF0},
		[]byte("HTTP/1.1 400 Bad Request\r\n"),
	}
}

func FuzzReadPDU(f *testing.F) {
	for _, s := range pduSeeds() {
		f.Add(s)
	}
	for _, s := range capturedSeeds(f) { // real PDUs from Orthanc and dcmqrscp
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 32<<10 {
			return // re-encoding adds a few bytes per item: stay clear of 16-bit item lengths
		}
		p, err := ul.ReadPDU(bytes.NewReader(b), 16<<10)
		if err != nil {
			if p != nil {
				t.Fatalf("ReadPDU returned %T with error %v", p, err)
			}
			return
		}
		enc := p.Append(nil)
		q, err := ul.ReadPDU(bytes.NewReader(enc), 1<<20)
		if err != nil {
			t.Fatalf("re-reading %x: %v", enc, err)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", q, p)
		}
		if enc2 := q.Append(nil); !bytes.Equal(enc2, enc) {
			t.Fatalf("encoding is not stable:\n%x\n%x", enc, enc2)
		}
	})
}

// userInfoValue returns the value of the user information item of an
// encoded A-ASSOCIATE-RQ or -AC.
func userInfoValue(pdu []byte) []byte {
	for b := pdu[6+68:]; len(b) >= 4; {
		n := int(binary.BigEndian.Uint16(b[2:]))
		if b[0] == 0x50 {
			return b[4 : 4+n]
		}
		b = b[4+n:]
	}
	return nil
}

// rqWithUserInfo is an A-ASSOCIATE-RQ body whose user information item holds v.
func rqWithUserInfo(v []byte) []byte {
	body := verificationRQ()[6:]
	body = body[:len(body)-len(userInfoValue(verificationRQ()))-4]
	body = append(body, 0x50, 0x00, 0, 0)
	binary.BigEndian.PutUint16(body[len(body)-2:], uint16(len(v)))
	return append(body, v...)
}

func userInfoSeeds() [][]byte {
	full := &ul.AAssociateAC{UserInfo: fullUserInfo()}
	return [][]byte{
		userInfoValue(verificationRQ()),
		userInfoValue(dcmtkAC()),
		userInfoValue(full.Append(nil)),
		{},
		{0x51, 0, 0, 4, 0, 0, 0x40, 0, 0x51, 0, 0, 4, 0, 0, 0, 1},
		{0x54, 0, 0, 7, 0, 3, '1', '.', '2', 1, 0},
		{0x58, 0, 0, 10, 2, 1, 0, 1, 'u', 0, 3, 'p', 'w', 'd'},
		{0x59, 0, 0, 2, 0, 0, 0x56, 0, 0, 1, 9},
	}
}

func FuzzUserInfo(f *testing.F) {
	for _, s := range userInfoSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		if len(v) > 60000 {
			return // the item length is 16 bits; re-encoding may add the maximum length sub-item
		}
		p, err := ul.Parse(ul.TypeAAssociateRQ, rqWithUserInfo(v))
		if err != nil {
			if !errors.Is(err, ul.ErrMalformed) {
				t.Fatalf("Parse: %v, want ErrMalformed", err)
			}
			return
		}
		want := p.(*ul.AAssociateRQ).UserInfo
		q, err := ul.ReadPDU(bytes.NewReader(p.Append(nil)), 1<<20)
		if err != nil {
			t.Fatalf("re-reading: %v", err)
		}
		if got := q.(*ul.AAssociateRQ).UserInfo; !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
		}
	})
}

func reassemblySeeds() []struct {
	stream []byte
	ops    uint16
} {
	big := message(400, 0)
	return []struct {
		stream []byte
		ops    uint16
	}{
		{pdata(1, cmdLast, []byte("C")), 0},
		{cat(pdata(3, cmdMore, []byte("C1")), pdata(3, cmdLast, []byte("C2")), pdata(3, dataMore, []byte("D1")), pdata(3, dataLast, []byte("D2"))), 0x5555},
		{cat(pdata(1, cmdLast, []byte("C")), pdata(1, dataMore, []byte("D1")), pdata(1, dataLast, []byte("D2")), pdata(1, cmdLast, []byte("E"))), 0xFFFF},
		{cat(pdata(1, cmdLast, nil), pdata(1, dataMore, big), pdata(1, dataMore, big), pdata(1, dataLast, big)), 0xAAAA},
		{cat(pdata(1, cmdMore, []byte("C")), pdata(3, cmdLast, []byte("C"))), 0},
		{cat(pdata(1, cmdLast, nil), pdata(1, dataMore, nil), ul.AAbort{}.Append(nil)), 0x5555},
		{cat(pdata(1, cmdLast, nil), ul.AReleaseRQ{}.Append(nil)), 0},
		{pduOf(ul.TypePDataTF, (&ul.PDataTF{PDVs: []ul.PDV{
			{ContextID: 1, Command: true, Last: true, Data: []byte("C")},
			{ContextID: 1, Last: true, Data: []byte("D")},
			{ContextID: 3, Command: true, Last: true, Data: []byte("E")},
		}}).Append(nil)[6:]), 0x0001},
	}
}

// FuzzReassembly feeds a stream of PDUs, after an A-ASSOCIATE-AC, to a
// requestor and reads messages from it as ops says (two bits per message:
// command only, ReadData, DataReader to the end, or one byte of DataReader).
// Results must stay within MaxMessage and every error must be one a caller
// can classify.
func FuzzReassembly(f *testing.F) {
	for _, s := range reassemblySeeds() {
		f.Add(s.stream, s.ops)
	}
	const maxMessage = 1024
	f.Fuzz(func(t *testing.T, stream []byte, ops uint16) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cfg := threeConfig()
		cfg.MaxMessage, cfg.MaxReadPDU, cfg.MaxPDU = maxMessage, 4096, 4096
		a, err := ul.NewClient(ctx, newMemConn(cat(threeAC(0), stream)), cfg)
		if err != nil {
			t.Fatalf("NewClient: %v", err)
		}
		for i := 0; err == nil; i++ {
			if i > len(stream) {
				t.Fatalf("%d messages from %d bytes", i, len(stream))
			}
			var cmd, data []byte
			if _, cmd, err = a.ReadCommand(ctx); err != nil {
				break
			}
			if len(cmd) > maxMessage {
				t.Fatalf("command of %d bytes, MaxMessage %d", len(cmd), maxMessage)
			}
			switch (ops >> (2 * (i % 8))) & 3 {
			case 1:
				data, err = a.ReadData(ctx)
				if len(data) > maxMessage {
					t.Fatalf("data set of %d bytes, MaxMessage %d", len(data), maxMessage)
				}
			case 2:
				var n int64
				n, err = io.Copy(io.Discard, a.DataReader(ctx))
				if n > int64(len(stream)) {
					t.Fatalf("data set of %d bytes from a %d-byte stream", n, len(stream))
				}
			case 3:
				_, err = a.DataReader(ctx).Read(make([]byte, 1))
			}
		}
		var ab *ul.AbortedError
		for _, known := range []error{ul.ErrProtocol, ul.ErrMessageTooLarge, ul.ErrMalformed, ul.ErrUnknownPDUType,
			ul.ErrUnexpectedPDU, ul.ErrPDUTooLarge, ul.ErrReleaseRequested, io.EOF, io.ErrUnexpectedEOF} {
			if errors.Is(err, known) {
				return
			}
		}
		if !errors.As(err, &ab) {
			t.Fatalf("unclassified error %v", err)
		}
	})
}

// TestWriteFuzzSeeds writes the seeds above under testdata/fuzz with -update,
// and checks that they are there otherwise.
func TestWriteFuzzSeeds(t *testing.T) {
	corpus := map[string][]string{}
	for _, s := range pduSeeds() {
		corpus["FuzzReadPDU"] = append(corpus["FuzzReadPDU"], fmt.Sprintf("[]byte(%q)\n", s))
	}
	for _, s := range userInfoSeeds() {
		corpus["FuzzUserInfo"] = append(corpus["FuzzUserInfo"], fmt.Sprintf("[]byte(%q)\n", s))
	}
	for _, s := range reassemblySeeds() {
		corpus["FuzzReassembly"] = append(corpus["FuzzReassembly"], fmt.Sprintf("[]byte(%q)\nuint16(%d)\n", s.stream, s.ops))
	}
	for name, entries := range corpus {
		dir := filepath.Join("testdata", "fuzz", name)
		for i, e := range entries {
			path := filepath.Join(dir, fmt.Sprintf("seed-%02d", i))
			want := "go test fuzz v1\n" + e
			if *update {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got, err := os.ReadFile(path); err != nil || string(got) != want {
				t.Errorf("%s is missing or stale (%v): run go test -run TestWriteFuzzSeeds -update", path, err)
			}
		}
	}
}
