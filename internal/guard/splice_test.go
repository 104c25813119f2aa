package guard

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

const splicePolicy = `
peers:
  - name: mover
    calling_ae: [MOVER]
    source: 127.0.0.1
    services: [get, store]
    query_levels: [STUDY]
`

// randomBytes returns n bytes of noise (no patient data).
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// dataPDUs splits a data set into P-DATA-TFs as a sender might: large PDUs of one PDV, one PDU of
// two PDVs, and a small one, the last fragment marked.
func dataPDUs(ctxID byte, data []byte) [][]byte {
	cuts := []int{0, 20000, 40000, 41000, 42000, 42500, len(data)}
	var out [][]byte
	for i := 0; i+1 < len(cuts); i++ {
		last := i+2 == len(cuts)
		v := ul.PDV{ContextID: ctxID, Last: last, Data: data[cuts[i]:cuts[i+1]]}
		if i == 2 { // 41000..42000 and 42000..42500: two PDVs in one PDU
			w := ul.PDV{ContextID: ctxID, Data: data[cuts[i+1]:cuts[i+2]]}
			out = append(out, (&ul.PDataTF{PDVs: []ul.PDV{v, w}}).Append(nil))
			i++
			continue
		}
		out = append(out, (&ul.PDataTF{PDVs: []ul.PDV{v}}).Append(nil))
	}
	return out
}

// trickle writes b in pieces of odd sizes with pauses, so that a PDU arrives in parts: the first
// piece also ends in the middle of a PDU.
func trickle(t *testing.T, c net.Conn, b []byte) {
	t.Helper()
	for len(b) > 0 {
		k := min(len(b), 6999)
		if _, err := c.Write(b[:k]); err != nil {
			t.Errorf("write: %v", err)
			return
		}
		b = b[k:]
		time.Sleep(time.Millisecond)
	}
}

// TestSpliceForwardsByteExact runs a C-STORE (data set client to upstream) and a C-GET (its
// sub-operation's data set upstream to client) through the guard, reading headers and forwarding
// data sets unread (Config.Splice) and not: every byte arrives as it was sent, both ways, data
// PDVs arriving in parts, after a command in the same write, and next to PDUs the guard reads whole;
// the audit counts the same bytes; and with Splice, data went unread both ways.
func TestSpliceForwardsByteExact(t *testing.T) {
	var ends [2]Record
	for i, splice := range []bool{false, true} {
		t.Run(fmt.Sprintf("splice=%v", splice), func(t *testing.T) {
			ends[i] = runSpliceConversation(t, splice)
		})
	}
	if ends[0].BytesIn != ends[1].BytesIn || ends[0].BytesOut != ends[1].BytesOut {
		t.Errorf("audit bytes in/out: %d/%d reading, %d/%d splicing", ends[0].BytesIn, ends[0].BytesOut, ends[1].BytesIn, ends[1].BytesOut)
	}
}

func runSpliceConversation(t *testing.T, splice bool) Record {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	g := startGuard(t, l.Addr().String(), splicePolicy, func(c *Config) { c.Splice = splice })

	ct := dimse.StorageClasses[0]
	rq := (&ul.AAssociateRQ{ProtocolVersion: 1, CalledAE: "ARCHIVE", CallingAE: "MOVER", ApplicationContext: ul.ApplicationContext,
		PresentationContexts: []ul.PresentationContextRQ{
			{ID: 1, AbstractSyntax: ct, TransferSyntaxes: []string{dicom.ExplicitVRLittleEndian}},
			{ID: 3, AbstractSyntax: dimse.StudyRootGet, TransferSyntaxes: []string{dicom.ImplicitVRLittleEndian}}},
		UserInfo: ul.UserInfo{MaxLength: 16384, ImplementationClassUID: "1.2.3.4"}}).Append(nil)
	ac := (&ul.AAssociateAC{ProtocolVersion: 1, CalledAE: "ARCHIVE", CallingAE: "MOVER", ApplicationContext: ul.ApplicationContext,
		PresentationContexts: []ul.PresentationContextAC{
			{ID: 1, Result: ul.PCAcceptance, TransferSyntax: dicom.ExplicitVRLittleEndian},
			{ID: 3, Result: ul.PCAcceptance, TransferSyntax: dicom.ImplicitVRLittleEndian}},
		UserInfo: ul.UserInfo{MaxLength: 16384, ImplementationClassUID: "5.6.7.8"}}).Append(nil)

	store := pdata(1, true, true, dimse.Command{Field: dimse.CStoreRQ, MessageID: 1, AffectedSOPClassUID: ct, AffectedSOPInstanceUID: "2.25.1", HasDataset: true}.Encode())
	storeData := bytes.Join(dataPDUs(1, randomBytes(1, 50000)), nil)
	storeRSP := pdata(1, true, true, dimse.Command{Field: dimse.CStoreRSP, MessageIDBeingRespondedTo: 1, AffectedSOPClassUID: ct, AffectedSOPInstanceUID: "2.25.1"}.Encode())
	get := append(pdata(3, true, true, dimse.Command{Field: dimse.CGetRQ, MessageID: 2, AffectedSOPClassUID: dimse.StudyRootGet, HasDataset: true}.Encode()),
		pdata(3, false, true, encodeQuery(false, dicom.NewString(dicom.QueryRetrieveLevel, "STUDY"), dicom.NewString(dicom.StudyInstanceUID, "2.25.9")))...)
	sub := pdata(1, true, true, dimse.Command{Field: dimse.CStoreRQ, MessageID: 7, AffectedSOPClassUID: ct, AffectedSOPInstanceUID: "2.25.2", HasDataset: true}.Encode())
	subData := bytes.Join(dataPDUs(1, randomBytes(2, 60000)), nil)
	subRSP := pdata(1, true, true, dimse.Command{Field: dimse.CStoreRSP, MessageIDBeingRespondedTo: 7, AffectedSOPClassUID: ct, AffectedSOPInstanceUID: "2.25.2"}.Encode())
	zero, one := uint16(0), uint16(1)
	getRSP := pdata(3, true, true, dimse.Command{Field: dimse.CGetRSP, MessageIDBeingRespondedTo: 2, AffectedSOPClassUID: dimse.StudyRootGet,
		Remaining: &zero, Completed: &one, Failed: &zero, Warning: &zero}.Encode())
	release := ul.AReleaseRQ{}.Append(nil)
	releaseRP := ul.AReleaseRP{}.Append(nil)

	clientSent := bytes.Join([][]byte{rq, store, storeData, get, subRSP, release}, nil)
	upSent := bytes.Join([][]byte{ac, storeRSP, sub, subData, getRSP, releaseRP}, nil)

	got := make(chan []byte, 1)
	go func() { // the upstream: reads what it expects, answers
		var in bytes.Buffer
		defer func() { got <- in.Bytes() }()
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		read := func(n int) bool {
			_, err := io.CopyN(&in, c, int64(n))
			return err == nil
		}
		if !read(len(rq)) {
			return
		}
		c.Write(ac)
		if !read(len(store) + len(storeData)) {
			return
		}
		c.Write(storeRSP)
		if !read(len(get)) {
			return
		}
		c.Write(sub[:len(sub)-3]) // the sub-operation's command and its data set, in parts
		trickle(t, c, append(sub[len(sub)-3:], subData...))
		if !read(len(subRSP)) {
			return
		}
		c.Write(getRSP)
		if read(len(release)) {
			c.Write(releaseRP)
		}
	}()

	c, err := net.Dial("tcp", g.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var recv bytes.Buffer
	read := func(n int) {
		if _, err := io.CopyN(&recv, c, int64(n)); err != nil {
			t.Fatalf("client read: %v (after %d bytes)", err, recv.Len())
		}
	}
	c.Write(rq)
	read(len(ac))
	before := splicedPDUs.Load()
	c.Write(append(append([]byte{}, store...), storeData[:100]...)) // a command and a data PDU's start, at once
	trickle(t, c, storeData[100:])
	read(len(storeRSP))
	up := splicedPDUs.Load() - before
	c.Write(get)
	read(len(sub) + len(subData))
	c.Write(subRSP)
	read(len(getRSP))
	down := splicedPDUs.Load() - before - up
	c.Write(release)
	read(len(releaseRP))

	if in := <-got; !bytes.Equal(in, clientSent) {
		t.Errorf("the upstream received %d bytes that differ from the client's %d", len(in), len(clientSent))
	}
	if !bytes.Equal(recv.Bytes(), upSent) {
		t.Errorf("the client received %d bytes that differ from the upstream's %d", recv.Len(), len(upSent))
	}
	if splice && (up < 2 || down < 2) {
		t.Errorf("with Splice, %d PDUs went to the upstream unread and %d to the client, want at least 2 each way", up, down)
	}
	if !splice && up+down != 0 {
		t.Errorf("without Splice, %d PDUs went unread", up+down)
	}
	stored := g.Audit.wait(t, func(r Record) bool { return r.Event == EventRequest && r.Service == "store" })
	if want := int64(len(store) + len(storeData)); stored.BytesIn != want || stored.Decision != "forwarded" {
		t.Errorf("store record: %d bytes in, decision %q; want %d, forwarded", stored.BytesIn, stored.Decision, want)
	}
	end := g.Audit.wait(t, func(r Record) bool { return r.Event == EventAssociationEnd })
	if end.BytesIn != int64(len(clientSent)) || end.BytesOut != int64(len(upSent)) || end.End != endReleased {
		t.Errorf("association-end: %d bytes in, %d out, %s; want %d, %d, %s", end.BytesIn, end.BytesOut, end.End, len(clientSent), len(upSent), endReleased)
	}
	return end
}

// TestSpliceCutShort: a client that stops in the middle of a data PDU the guard forwards unread
// leaves the upstream with what it sent and the end of the stream, not an A-ABORT inside the PDU.
func TestSpliceCutShort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	g := startGuard(t, l.Addr().String(), splicePolicy, func(c *Config) { c.Splice = true })
	ct := dimse.StorageClasses[0]
	rq := (&ul.AAssociateRQ{ProtocolVersion: 1, CalledAE: "ARCHIVE", CallingAE: "MOVER", ApplicationContext: ul.ApplicationContext,
		PresentationContexts: []ul.PresentationContextRQ{{ID: 1, AbstractSyntax: ct, TransferSyntaxes: []string{dicom.ExplicitVRLittleEndian}}},
		UserInfo:             ul.UserInfo{MaxLength: 16384, ImplementationClassUID: "1.2.3.4"}}).Append(nil)
	ac := (&ul.AAssociateAC{ProtocolVersion: 1, CalledAE: "ARCHIVE", CallingAE: "MOVER", ApplicationContext: ul.ApplicationContext,
		PresentationContexts: []ul.PresentationContextAC{{ID: 1, Result: ul.PCAcceptance, TransferSyntax: dicom.ExplicitVRLittleEndian}},
		UserInfo:             ul.UserInfo{MaxLength: 16384, ImplementationClassUID: "5.6.7.8"}}).Append(nil)
	store := pdata(1, true, true, dimse.Command{Field: dimse.CStoreRQ, MessageID: 1, AffectedSOPClassUID: ct, AffectedSOPInstanceUID: "2.25.1", HasDataset: true}.Encode())
	data := pdata(1, false, true, randomBytes(3, 20000))

	got := make(chan []byte, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		b := make([]byte, len(rq))
		io.ReadFull(c, b)
		c.Write(ac)
		rest, _ := io.ReadAll(c)
		got <- rest
	}()
	c, err := net.Dial("tcp", g.Addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write(rq)
	if _, err := io.ReadFull(c, make([]byte, len(ac))); err != nil {
		t.Fatal(err)
	}
	sent := append(append([]byte{}, store...), data[:10000]...)
	c.Write(sent[:len(store)+100])
	time.Sleep(20 * time.Millisecond) // the guard is splicing the data PDU
	c.Write(sent[len(store)+100:])
	time.Sleep(20 * time.Millisecond)
	c.Close()
	if in := <-got; !bytes.Equal(in, sent) {
		t.Errorf("the upstream received %d bytes, want the client's %d and the end of the stream: % x", len(in), len(sent), in[min(len(in), len(sent)):])
	}
	end := g.Audit.wait(t, func(r Record) bool { return r.Event == EventAssociationEnd })
	if end.End != endClientClosed {
		t.Errorf("association end %q, want %q", end.End, endClientClosed)
	}
}

// TestNewDirectPlainTCPOnly: data go unread only between two plain TCP connections; TLS (or any
// other net.Conn) keeps the reading path.
func TestNewDirectPlainTCPOnly(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p, q := net.Pipe()
	defer p.Close()
	defer q.Close()
	tc := tls.Client(a, &tls.Config{InsecureSkipVerify: true})
	admit := func(ul.PDV, int) (bool, error) { return true, nil }
	for _, tt := range []struct {
		name     string
		src, dst net.Conn
		want     bool
	}{
		{"tcp to tcp", a, b, true},
		{"tls to tcp", tc, b, false},
		{"tcp to tls", b, tc, false},
		{"pipe to tcp", p, b, false},
	} {
		d := newDirect(tt.src, &syncWriter{conn: tt.dst}, admit, func() bool { return false })
		if got := d != nil; got != tt.want {
			t.Errorf("%s: direct = %v, want %v", tt.name, got, tt.want)
		}
	}
}
