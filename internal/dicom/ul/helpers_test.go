package ul_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

const (
	verification = "1.2.840.10008.1.1"
	studyFind    = "1.2.840.10008.5.1.4.1.2.2.1"
	studyGet     = "1.2.840.10008.5.1.4.1.2.2.3"
	implicitLE   = "1.2.840.10008.1.2"
	explicitLE   = "1.2.840.10008.1.2.1"
)

// dcmtkAC is the A-ASSOCIATE-AC that DCMTK 3.6.7 (dcmqrscp, and Debian's
// Orthanc 1.10, which links it) sends to a Verification request proposing
// Implicit and Explicit VR Little Endian (shared/notes/peers.md): PDU length
// 186 (192 bytes with the header), max PDU 16384, Explicit VR LE chosen,
// assembled by hand from PS3.8 §9.3.3 until captured bytes replace it.
func dcmtkAC() []byte {
	var b []byte
	b = append(b, 0x02, 0x00, 0x00, 0x00, 0x00, 0xBA) // A-ASSOCIATE-AC, length 186
	b = append(b, 0x00, 0x01, 0x00, 0x00)             // protocol version 1, reserved
	b = append(b, "ANY-SCP         "...)              // called AE, echoed
	b = append(b, "PACSWATCH       "...)              // calling AE, echoed
	b = append(b, make([]byte, 32)...)                // reserved
	b = append(b, 0x10, 0x00, 0x00, 0x15)             // application context, 21
	b = append(b, "1.2.840.10008.3.1.1.1"...)
	b = append(b, 0x21, 0x00, 0x00, 0x1B) // presentation context AC, 27
	b = append(b, 0x01, 0x00, 0x00, 0x00) // ID 1, reserved, acceptance, reserved
	b = append(b, 0x40, 0x00, 0x00, 0x13) // transfer syntax, 19
	b = append(b, "1.2.840.10008.1.2.1"...)
	b = append(b, 0x50, 0x00, 0x00, 0x3A)                         // user information, 58
	b = append(b, 0x51, 0x00, 0x00, 0x04, 0x00, 0x00, 0x40, 0x00) // max length 16384
	b = append(b, 0x52, 0x00, 0x00, 0x1B)                         // implementation class UID, 27
	b = append(b, "1.2.276.0.7230010.3.0.3.6.7"...)
	b = append(b, 0x55, 0x00, 0x00, 0x0F) // implementation version name, 15
	b = append(b, "OFFIS_DCMTK_367"...)
	return b
}

// verificationRQ is the A-ASSOCIATE-RQ that NewClient sends for
// verificationConfig, assembled by hand from PS3.8 §9.3.2.
func verificationRQ() []byte {
	var b []byte
	b = append(b, 0x01, 0x00, 0x00, 0x00, 0x00, 0xF5) // A-ASSOCIATE-RQ, length 245
	b = append(b, 0x00, 0x01, 0x00, 0x00)             // protocol version 1, reserved
	b = append(b, "ANY-SCP         "...)              // called AE
	b = append(b, "PACSWATCH       "...)              // calling AE
	b = append(b, make([]byte, 32)...)                // reserved
	b = append(b, 0x10, 0x00, 0x00, 0x15)             // application context, 21
	b = append(b, "1.2.840.10008.3.1.1.1"...)
	b = append(b, 0x20, 0x00, 0x00, 0x45) // presentation context RQ, 69
	b = append(b, 0x01, 0x00, 0x00, 0x00) // ID 1, reserved x3
	b = append(b, 0x30, 0x00, 0x00, 0x11) // abstract syntax, 17
	b = append(b, "1.2.840.10008.1.1"...)
	b = append(b, 0x40, 0x00, 0x00, 0x11) // transfer syntax, 17
	b = append(b, "1.2.840.10008.1.2"...)
	b = append(b, 0x40, 0x00, 0x00, 0x13) // transfer syntax, 19
	b = append(b, "1.2.840.10008.1.2.1"...)
	b = append(b, 0x50, 0x00, 0x00, 0x4B)                         // user information, 75
	b = append(b, 0x51, 0x00, 0x00, 0x04, 0x00, 0x00, 0x40, 0x00) // max length 16384
	b = append(b, 0x52, 0x00, 0x00, 0x2C)                         // implementation class UID, 44
	b = append(b, "2.25.100136836083436646986395485767375892871"...)
	b = append(b, 0x55, 0x00, 0x00, 0x0F) // implementation version name, 15
	b = append(b, "PACSWATCH_0.1.0"...)
	return b
}

func verificationConfig() ul.Config {
	return ul.Config{
		CalledAE:  "ANY-SCP",
		CallingAE: "PACSWATCH",
		Contexts:  []ul.ContextProposal{{AbstractSyntax: verification, TransferSyntaxes: []string{implicitLE, explicitLE}}},
	}
}

// threeConfig proposes Verification (1), Study Root FIND (3) and Study Root
// GET (5); threeAC accepts the first two and refuses the third.
func threeConfig() ul.Config {
	return ul.Config{
		CalledAE:   "ANY-SCP",
		MaxMessage: 1024,
		Contexts: []ul.ContextProposal{
			{AbstractSyntax: verification, TransferSyntaxes: []string{implicitLE}},
			{AbstractSyntax: studyFind, TransferSyntaxes: []string{implicitLE}},
			{AbstractSyntax: studyGet, TransferSyntaxes: []string{implicitLE}},
		},
	}
}

func threeAC(maxPDU uint32) []byte {
	ac := &ul.AAssociateAC{
		ProtocolVersion:    1,
		CalledAE:           "ANY-SCP",
		CallingAE:          "PACSWATCH",
		ApplicationContext: ul.ApplicationContext,
		PresentationContexts: []ul.PresentationContextAC{
			{ID: 1, Result: ul.PCAcceptance, TransferSyntax: implicitLE},
			{ID: 3, Result: ul.PCAcceptance, TransferSyntax: implicitLE},
			{ID: 5, Result: ul.PCAbstractSyntaxNotSupported, TransferSyntax: implicitLE},
		},
		UserInfo: ul.UserInfo{MaxLength: maxPDU, ImplementationClassUID: "1.2.3", ImplementationVersionName: "TEST"},
	}
	return ac.Append(nil)
}

// pdata builds a P-DATA-TF with one PDV; flags is the message control header.
func pdata(contextID, flags byte, data []byte) []byte {
	b := []byte{0x04, 0x00, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[2:], uint32(len(data)+6))
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)+2))
	b = append(b, contextID, flags)
	return append(b, data...)
}

// Message control headers (PS3.8 Annex E.2).
const (
	dataMore = 0x00
	cmdMore  = 0x01
	dataLast = 0x02
	cmdLast  = 0x03
)

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// memConn is a net.Conn that reads a fixed byte stream and records writes.
type memConn struct {
	r io.Reader
	w bytes.Buffer
}

func newMemConn(b []byte) *memConn { return &memConn{r: bytes.NewReader(b)} }

func (c *memConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *memConn) Write(p []byte) (int, error)      { return c.w.Write(p) }
func (c *memConn) Close() error                     { return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 104} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }
