package ul

import (
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Type is a PDU type (PS3.8 §9.3.1, Table 9-11).
type Type byte

// PDU types.
const (
	TypeAAssociateRQ Type = 0x01
	TypeAAssociateAC Type = 0x02
	TypeAAssociateRJ Type = 0x03
	TypePDataTF      Type = 0x04
	TypeAReleaseRQ   Type = 0x05
	TypeAReleaseRP   Type = 0x06
	TypeAAbort       Type = 0x07
)

func (t Type) String() string {
	switch t {
	case TypeAAssociateRQ:
		return "A-ASSOCIATE-RQ"
	case TypeAAssociateAC:
		return "A-ASSOCIATE-AC"
	case TypeAAssociateRJ:
		return "A-ASSOCIATE-RJ"
	case TypePDataTF:
		return "P-DATA-TF"
	case TypeAReleaseRQ:
		return "A-RELEASE-RQ"
	case TypeAReleaseRP:
		return "A-RELEASE-RP"
	case TypeAAbort:
		return "A-ABORT"
	}
	return fmt.Sprintf("unknown(0x%02x)", byte(t))
}

// PDU is one of the seven protocol data units of PS3.8 §9.3. Parse and
// ReadPDU return a pointer to one of *AAssociateRQ, *AAssociateAC,
// *AAssociateRJ, *PDataTF, *AReleaseRQ, *AReleaseRP and *AAbort.
type PDU interface {
	Type() Type
	// Append appends the whole PDU, 6-byte header included, to b.
	// It does not validate: see AAssociateRQ.Validate.
	Append(b []byte) []byte
}

var (
	_ PDU = (*AAssociateRQ)(nil)
	_ PDU = (*AAssociateAC)(nil)
	_ PDU = AAssociateRJ{}
	_ PDU = (*PDataTF)(nil)
	_ PDU = AReleaseRQ{}
	_ PDU = AReleaseRP{}
	_ PDU = AAbort{}
)

// HeaderLen is the length of a PDU header: type, reserved, 32-bit length.
const HeaderLen = 6

// Parsing bounds, beyond the byte caps given by callers.
const (
	maxItems = 512 // items in one variable field or sub-item list
	// What a parsed UserInfo keeps, so that re-encoding it (which may add the
	// maximum length sub-item) stays far below maxItems.
	maxRoles        = 128 // role selections: one per presentation context at most
	maxUnknownItems = 64
	maxContexts     = 128 // presentation contexts: odd IDs 1..255
	aeLen           = 16
	fixedLen        = 68 // fixed fields of A-ASSOCIATE-RQ/AC before the variable items
	bodyChunk       = 64 << 10
)

// Item types inside A-ASSOCIATE-RQ/AC (PS3.8 §9.3.2.1 to §9.3.3.3).
const (
	itemApplicationContext = 0x10
	itemPresentationRQ     = 0x20
	itemPresentationAC     = 0x21
	itemAbstractSyntax     = 0x30
	itemTransferSyntax     = 0x40
	itemUserInfo           = 0x50
)

// AAssociateRQ is an A-ASSOCIATE-RQ PDU. PS3.8 §9.3.2
type AAssociateRQ struct {
	ProtocolVersion      uint16 // bit 0 set: version 1
	CalledAE, CallingAE  string // at most 16 bytes; trimmed of spaces on parse
	ApplicationContext   string
	PresentationContexts []PresentationContextRQ
	UserInfo             UserInfo
}

// PresentationContextRQ is a presentation context item of an
// A-ASSOCIATE-RQ. PS3.8 §9.3.2.2
type PresentationContextRQ struct {
	ID               byte // odd, 1 to 255
	AbstractSyntax   string
	TransferSyntaxes []string
}

// AAssociateAC is an A-ASSOCIATE-AC PDU. PS3.8 §9.3.3
type AAssociateAC struct {
	ProtocolVersion      uint16
	CalledAE, CallingAE  string // echo of the request's; not significant
	ApplicationContext   string
	PresentationContexts []PresentationContextAC
	UserInfo             UserInfo
}

// PresentationContextAC is a presentation context item of an
// A-ASSOCIATE-AC. TransferSyntax is significant only when Result is
// PCAcceptance. PS3.8 §9.3.3.2
type PresentationContextAC struct {
	ID             byte
	Result         PCResult
	TransferSyntax string
}

// AAssociateRJ is an A-ASSOCIATE-RJ PDU; see Meaning. PS3.8 §9.3.4
type AAssociateRJ struct {
	Result, Source, Reason byte
}

// PDataTF is a P-DATA-TF PDU. PS3.8 §9.3.5
type PDataTF struct {
	PDVs []PDV
}

// PDV is a presentation data value item (PS3.8 §9.3.5.1) with its message
// control header (PS3.8 Annex E.2) decoded: bit 0 Command, bit 1 Last.
type PDV struct {
	ContextID     byte
	Command, Last bool
	Data          []byte // a fragment of a command set or data set
}

// AReleaseRQ is an A-RELEASE-RQ PDU. PS3.8 §9.3.6
type AReleaseRQ struct{}

// AReleaseRP is an A-RELEASE-RP PDU. PS3.8 §9.3.7
type AReleaseRP struct{}

// AAbort is an A-ABORT PDU; see Meaning. PS3.8 §9.3.8
type AAbort struct {
	Source, Reason byte
}

func (*AAssociateRQ) Type() Type { return TypeAAssociateRQ }
func (*AAssociateAC) Type() Type { return TypeAAssociateAC }
func (AAssociateRJ) Type() Type  { return TypeAAssociateRJ }
func (*PDataTF) Type() Type      { return TypePDataTF }
func (AReleaseRQ) Type() Type    { return TypeAReleaseRQ }
func (AReleaseRP) Type() Type    { return TypeAReleaseRP }
func (AAbort) Type() Type        { return TypeAAbort }

// ReadPDU reads one PDU from r. It reads the 6-byte header, rejects an
// unknown type (ErrUnknownPDUType) and a length above maxLen (ErrPDUTooLarge)
// before allocating anything, then reads the body, growing its buffer only as
// bytes arrive, and parses it. An EOF inside the PDU is io.ErrUnexpectedEOF.
func ReadPDU(r io.Reader, maxLen uint32) (PDU, error) {
	var h [HeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("read pdu header: %w", err)
	}
	t := Type(h[0])
	if !t.known() {
		return nil, fmt.Errorf("%w: 0x%02x", ErrUnknownPDUType, h[0])
	}
	n := binary.BigEndian.Uint32(h[2:])
	if n > maxLen {
		return nil, fmt.Errorf("%w: %s of %d bytes, cap %d", ErrPDUTooLarge, t, n, maxLen)
	}
	body, err := readBody(nil, r, int(n))
	if err != nil {
		return nil, bodyError(t, err)
	}
	return Parse(t, body)
}

func bodyError(t Type, err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read %s body: %w", t, err)
}

func (t Type) known() bool { return t >= TypeAAssociateRQ && t <= TypeAAbort }

// readBody reads exactly n bytes into dst's array when they fit, else into a
// new one; above bodyChunk the buffer grows with the bytes actually received,
// so a peer that announces a large PDU and sends little costs little.
func readBody(dst []byte, r io.Reader, n int) ([]byte, error) {
	if n <= cap(dst) {
		b := dst[:n]
		_, err := io.ReadFull(r, b)
		return b, err
	}
	if n <= bodyChunk {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return b, err
	}
	b := make([]byte, 0, bodyChunk)
	for len(b) < n {
		if len(b) == cap(b) {
			b = slices.Grow(b, min(cap(b), n-len(b)))
		}
		k, err := io.ReadFull(r, b[len(b):min(cap(b), n)])
		b = b[:len(b)+k]
		if err != nil {
			return nil, err
		}
	}
	return b, nil
}

// Parse parses the body (the bytes after the 6-byte header) of a PDU of type
// t. The PDVs of a P-DATA-TF alias body.
func Parse(t Type, body []byte) (PDU, error) {
	var (
		p   PDU
		err error
	)
	switch t {
	case TypeAAssociateRQ:
		p, err = parseRQ(body)
	case TypeAAssociateAC:
		p, err = parseAC(body)
	case TypeAAssociateRJ:
		if err = fixed4(body); err == nil {
			p = &AAssociateRJ{Result: body[1], Source: body[2], Reason: body[3]}
		}
	case TypePDataTF:
		p, err = parsePDataTF(body)
	case TypeAReleaseRQ:
		if err = fixed4(body); err == nil {
			p = &AReleaseRQ{}
		}
	case TypeAReleaseRP:
		if err = fixed4(body); err == nil {
			p = &AReleaseRP{}
		}
	case TypeAAbort:
		if err = fixed4(body); err == nil {
			p = &AAbort{Source: body[2], Reason: body[3]}
		}
	default:
		return nil, fmt.Errorf("%w: 0x%02x", ErrUnknownPDUType, byte(t))
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", t, err)
	}
	return p, nil
}

// fixed4 checks the body of a PDU whose variable part is 4 bytes. Bytes
// beyond those 4 are ignored, so that an odd A-ABORT is still recognised.
func fixed4(body []byte) error {
	if len(body) < 4 {
		return fmt.Errorf("%w: body of %d bytes, want 4", ErrMalformed, len(body))
	}
	return nil
}

// eachItem calls f with the type and value of each item (type, reserved,
// 16-bit length, value) in b, at most maxItems of them.
func eachItem(b []byte, f func(typ byte, v []byte) error) error {
	for n := 0; len(b) > 0; n++ {
		if n == maxItems {
			return fmt.Errorf("%w: more than %d items", ErrMalformed, maxItems)
		}
		if len(b) < 4 {
			return fmt.Errorf("%w: truncated item header (%d bytes)", ErrMalformed, len(b))
		}
		l := int(binary.BigEndian.Uint16(b[2:]))
		if l > len(b)-4 {
			return fmt.Errorf("%w: item 0x%02x of %d bytes, %d remain", ErrMalformed, b[0], l, len(b)-4)
		}
		if err := f(b[0], b[4:4+l]); err != nil {
			return err
		}
		b = b[4+l:]
	}
	return nil
}

// assocFields are the fields that A-ASSOCIATE-RQ and -AC share.
type assocFields struct {
	version            uint16
	called, calling    string
	applicationContext string
	userInfo           UserInfo
}

// parseAssoc parses the body of an A-ASSOCIATE-RQ or -AC, passing each
// presentation context item of type pcType to pc. Unknown items are skipped;
// of repeated application context or user information items the first counts.
func parseAssoc(body []byte, pcType byte, pc func(v []byte) error) (assocFields, error) {
	var a assocFields
	if len(body) < fixedLen {
		return a, fmt.Errorf("%w: body of %d bytes, fixed fields need %d", ErrMalformed, len(body), fixedLen)
	}
	a.version = binary.BigEndian.Uint16(body)
	a.called = trimAE(body[4:20])
	a.calling = trimAE(body[20:36])
	var seenAC, seenUI bool
	err := eachItem(body[fixedLen:], func(typ byte, v []byte) error {
		switch typ {
		case itemApplicationContext:
			if !seenAC {
				seenAC = true
				a.applicationContext = trimPadding(v)
			}
		case pcType:
			return pc(v)
		case itemUserInfo:
			if !seenUI {
				seenUI = true
				ui, err := parseUserInfo(v)
				if err != nil {
					return err
				}
				a.userInfo = ui
			}
		}
		return nil
	})
	return a, err
}

func parseRQ(body []byte) (*AAssociateRQ, error) {
	rq := &AAssociateRQ{}
	a, err := parseAssoc(body, itemPresentationRQ, func(v []byte) error {
		if len(rq.PresentationContexts) == maxContexts {
			return fmt.Errorf("%w: more than %d presentation contexts", ErrMalformed, maxContexts)
		}
		if len(v) < 4 {
			return fmt.Errorf("%w: presentation context item of %d bytes", ErrMalformed, len(v))
		}
		pc := PresentationContextRQ{ID: v[0]}
		var seenAS bool
		err := eachItem(v[4:], func(typ byte, v []byte) error {
			switch typ {
			case itemAbstractSyntax:
				if !seenAS {
					seenAS = true
					pc.AbstractSyntax = trimPadding(v)
				}
			case itemTransferSyntax:
				pc.TransferSyntaxes = append(pc.TransferSyntaxes, trimPadding(v))
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("presentation context %d: %w", pc.ID, err)
		}
		rq.PresentationContexts = append(rq.PresentationContexts, pc)
		return nil
	})
	if err != nil {
		return nil, err
	}
	rq.ProtocolVersion, rq.CalledAE, rq.CallingAE = a.version, a.called, a.calling
	rq.ApplicationContext, rq.UserInfo = a.applicationContext, a.userInfo
	return rq, nil
}

func parseAC(body []byte) (*AAssociateAC, error) {
	ac := &AAssociateAC{}
	a, err := parseAssoc(body, itemPresentationAC, func(v []byte) error {
		if len(ac.PresentationContexts) == maxContexts {
			return fmt.Errorf("%w: more than %d presentation contexts", ErrMalformed, maxContexts)
		}
		if len(v) < 4 {
			return fmt.Errorf("%w: presentation context item of %d bytes", ErrMalformed, len(v))
		}
		pc := PresentationContextAC{ID: v[0], Result: PCResult(v[2])}
		var seenTS bool
		err := eachItem(v[4:], func(typ byte, v []byte) error {
			if typ == itemTransferSyntax && !seenTS {
				seenTS = true
				pc.TransferSyntax = trimPadding(v)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("presentation context %d: %w", pc.ID, err)
		}
		ac.PresentationContexts = append(ac.PresentationContexts, pc)
		return nil
	})
	if err != nil {
		return nil, err
	}
	ac.ProtocolVersion, ac.CalledAE, ac.CallingAE = a.version, a.called, a.calling
	ac.ApplicationContext, ac.UserInfo = a.applicationContext, a.userInfo
	return ac, nil
}

func parsePDataTF(body []byte) (*PDataTF, error) {
	pdvs, err := appendPDVs(nil, body)
	if err != nil {
		return nil, err
	}
	return &PDataTF{PDVs: pdvs}, nil
}

// appendPDVs appends the PDVs of a P-DATA-TF body to dst; they alias body.
func appendPDVs(dst []PDV, body []byte) ([]PDV, error) {
	if len(body) == 0 {
		return nil, fmt.Errorf("%w: no presentation data value", ErrMalformed)
	}
	// Each PDV takes at least 6 bytes: count first, allocate once.
	n := 0
	for b := body; len(b) > 0; n++ {
		if len(b) < 6 {
			return nil, fmt.Errorf("%w: truncated pdv header (%d bytes)", ErrMalformed, len(b))
		}
		l := binary.BigEndian.Uint32(b)
		if l < 2 || l > uint32(len(b)-4) {
			return nil, fmt.Errorf("%w: pdv of %d bytes, %d remain", ErrMalformed, l, len(b)-4)
		}
		b = b[4+l:]
	}
	dst = slices.Grow(dst, n)
	for b := body; len(b) > 0; {
		l := binary.BigEndian.Uint32(b)
		dst = append(dst, PDV{
			ContextID: b[4],
			Command:   b[5]&1 != 0,
			Last:      b[5]&2 != 0,
			Data:      b[6 : 4+l : 4+l],
		})
		b = b[4+l:]
	}
	return dst, nil
}

// trimAE trims an AE title field: leading and trailing spaces are not
// significant (PS3.8 §9.3.2); trailing NULs are a common defect.
func trimAE(b []byte) string {
	return strings.TrimLeft(strings.TrimRight(string(b), " \x00"), " ")
}

// trimPadding trims the trailing NULs or spaces some implementations pad UIDs
// and names with: UIDs in Upper Layer items are not padded (PS3.8 Annex F).
func trimPadding(b []byte) string {
	return strings.TrimRight(string(b), "\x00 ")
}

// Append appends the A-ASSOCIATE-RQ PDU to b.
func (rq *AAssociateRQ) Append(b []byte) []byte {
	start := len(b)
	b = appendAssocHeader(b, TypeAAssociateRQ, rq.ProtocolVersion, rq.CalledAE, rq.CallingAE, rq.ApplicationContext)
	for _, pc := range rq.PresentationContexts {
		i := len(b)
		b = append(b, itemPresentationRQ, 0, 0, 0, pc.ID, 0, 0, 0)
		b = appendItem(b, itemAbstractSyntax, pc.AbstractSyntax)
		for _, ts := range pc.TransferSyntaxes {
			b = appendItem(b, itemTransferSyntax, ts)
		}
		setItemLen(b, i)
	}
	b = rq.UserInfo.append(b)
	return setPDULen(b, start)
}

// Append appends the A-ASSOCIATE-AC PDU to b.
func (ac *AAssociateAC) Append(b []byte) []byte {
	start := len(b)
	b = appendAssocHeader(b, TypeAAssociateAC, ac.ProtocolVersion, ac.CalledAE, ac.CallingAE, ac.ApplicationContext)
	for _, pc := range ac.PresentationContexts {
		i := len(b)
		b = append(b, itemPresentationAC, 0, 0, 0, pc.ID, 0, byte(pc.Result), 0)
		b = appendItem(b, itemTransferSyntax, pc.TransferSyntax)
		setItemLen(b, i)
	}
	b = ac.UserInfo.append(b)
	return setPDULen(b, start)
}

// Append appends the A-ASSOCIATE-RJ PDU to b.
func (rj AAssociateRJ) Append(b []byte) []byte {
	return append(b, byte(TypeAAssociateRJ), 0, 0, 0, 0, 4, 0, rj.Result, rj.Source, rj.Reason)
}

// Append appends the P-DATA-TF PDU to b.
func (p *PDataTF) Append(b []byte) []byte {
	start := len(b)
	b = append(b, byte(TypePDataTF), 0, 0, 0, 0, 0)
	for _, v := range p.PDVs {
		b = binary.BigEndian.AppendUint32(b, uint32(len(v.Data)+2))
		b = append(b, v.ContextID, v.controlHeader())
		b = append(b, v.Data...)
	}
	return setPDULen(b, start)
}

// controlHeader is the message control header (PS3.8 Annex E.2).
func (v PDV) controlHeader() byte {
	var h byte
	if v.Command {
		h |= 1
	}
	if v.Last {
		h |= 2
	}
	return h
}

// Append appends the A-RELEASE-RQ PDU to b.
func (AReleaseRQ) Append(b []byte) []byte {
	return append(b, byte(TypeAReleaseRQ), 0, 0, 0, 0, 4, 0, 0, 0, 0)
}

// Append appends the A-RELEASE-RP PDU to b.
func (AReleaseRP) Append(b []byte) []byte {
	return append(b, byte(TypeAReleaseRP), 0, 0, 0, 0, 4, 0, 0, 0, 0)
}

// Append appends the A-ABORT PDU to b.
func (a AAbort) Append(b []byte) []byte {
	return append(b, byte(TypeAAbort), 0, 0, 0, 0, 4, 0, 0, a.Source, a.Reason)
}

func appendAssocHeader(b []byte, t Type, version uint16, called, calling, appCtx string) []byte {
	b = append(b, byte(t), 0, 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, version)
	b = append(b, 0, 0)
	b = appendAE(b, called)
	b = appendAE(b, calling)
	b = append(b, make([]byte, 32)...)
	return appendItem(b, itemApplicationContext, appCtx)
}

// appendAE appends a 16-byte space-padded AE title field; Validate reports
// titles that do not fit, which are cut here.
func appendAE(b []byte, s string) []byte {
	if len(s) > aeLen {
		s = s[:aeLen]
	}
	b = append(b, s...)
	for range aeLen - len(s) {
		b = append(b, ' ')
	}
	return b
}

// appendItem appends an item holding s, unpadded; Validate reports values
// over 65535 bytes, which are cut here.
func appendItem[T string | []byte](b []byte, typ byte, s T) []byte {
	if len(s) > 0xFFFF {
		s = s[:0xFFFF]
	}
	b = append(b, typ, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// setItemLen fills in the length of the item that starts at b[i:].
func setItemLen(b []byte, i int) {
	binary.BigEndian.PutUint16(b[i+2:], uint16(len(b)-i-4))
}

func setPDULen(b []byte, start int) []byte {
	binary.BigEndian.PutUint32(b[start+2:], uint32(len(b)-start-HeaderLen))
	return b
}
