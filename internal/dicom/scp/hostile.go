package scp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

// Hostile is a way for a server to break the protocol, so that tests can
// prove a client survives it: no hang beyond its deadlines, no unbounded
// allocation, no panic, and the right error. A hostile server's connection
// still ends when the client closes it, when the client has been silent for
// Config.Timeout, or on Close.
type Hostile int

// Hostile personalities. Those before AbortAfterEcho act before any
// association exists; the others misbehave on an accepted one.
const (
	HostileNone Hostile = iota
	// SilentAfterConnect accepts the TCP connection and never sends a byte.
	SilentAfterConnect
	// CloseOnConnect closes the connection as soon as it is accepted.
	CloseOnConnect
	// NotDICOM answers the first bytes it reads with an HTTP error
	// response, then closes: something listens but does not speak DICOM.
	NotDICOM
	// SSHBanner sends an SSH version banner on connect, as SSH servers
	// speak first, then closes.
	SSHBanner
	// AbortOnConnect sends an A-ABORT as soon as the connection is accepted.
	AbortOnConnect
	// AbortAfterRQ reads the A-ASSOCIATE-RQ and answers with an A-ABORT
	// (source 2, service-provider).
	AbortAfterRQ
	// SilentMidPDU sends the first 3 bytes of an A-ASSOCIATE-AC, then
	// nothing.
	SilentMidPDU
	// HugeLength sends an A-ASSOCIATE-AC header whose length is 0xFFFFFFF0,
	// followed by a few bytes of garbage.
	HugeLength
	// ShortLength sends an A-ASSOCIATE-AC whose length field says 10 bytes,
	// shorter than its fixed fields.
	ShortLength
	// UnknownPDUType answers with a PDU of type 0x42.
	UnknownPDUType
	// EvenContextID sends an A-ASSOCIATE-AC that accepts presentation
	// context ID 2, which no requestor proposes (IDs are odd, PS3.8
	// §9.3.2.2).
	EvenContextID
	// InvalidResult sends an A-ASSOCIATE-AC whose presentation contexts all
	// have result 9, outside PS3.8 Table 9-18, then answers A-RELEASE-RQ.
	InvalidResult
	// InvalidReject sends an A-ASSOCIATE-RJ with result 7, source 9 and
	// reason 42, outside PS3.8 Table 9-21.
	InvalidReject
	// Trickle sends a valid A-ASSOCIATE-AC one byte per second, then
	// answers A-RELEASE-RQ.
	Trickle
	// AbortAfterEcho accepts the association and answers a C-ECHO-RQ with
	// an A-ABORT instead of the C-ECHO-RSP.
	AbortAfterEcho
	// AbortMidFind aborts a C-FIND after 3 pending responses.
	AbortMidFind
	// EndlessPending answers a C-FIND with pending responses, each a new
	// synthetic match, until the client goes away: a C-CANCEL-RQ is ignored.
	EndlessPending
	// HugePDataLength answers the first request with a P-DATA-TF whose
	// length is 0xFFFFFFF0.
	HugePDataLength
	// NoReleaseReply never answers A-RELEASE-RQ.
	NoReleaseReply
)

func (h Hostile) String() string {
	switch h {
	case HostileNone:
		return "none"
	case SilentAfterConnect:
		return "silent-after-connect"
	case CloseOnConnect:
		return "close-on-connect"
	case NotDICOM:
		return "not-dicom"
	case SSHBanner:
		return "ssh-banner"
	case AbortOnConnect:
		return "abort-on-connect"
	case AbortAfterRQ:
		return "abort-after-rq"
	case SilentMidPDU:
		return "silent-mid-pdu"
	case HugeLength:
		return "huge-length"
	case ShortLength:
		return "short-length"
	case UnknownPDUType:
		return "unknown-pdu-type"
	case EvenContextID:
		return "even-context-id"
	case InvalidResult:
		return "invalid-result"
	case InvalidReject:
		return "invalid-reject"
	case Trickle:
		return "trickle"
	case AbortAfterEcho:
		return "abort-after-echo"
	case AbortMidFind:
		return "abort-mid-find"
	case EndlessPending:
		return "endless-pending"
	case HugePDataLength:
		return "huge-pdata-length"
	case NoReleaseReply:
		return "no-release-reply"
	}
	return fmt.Sprintf("Hostile(%d)", int(h))
}

// beforeAssociation reports whether h acts before an association exists.
func (h Hostile) beforeAssociation() bool {
	return h > HostileNone && h < AbortAfterEcho
}

// maxRQ caps the A-ASSOCIATE-RQ a hostile server reads.
const maxRQ = 64 << 10

// sshBanner is what SSHBanner sends (RFC 4253 §4.2).
const sshBanner = "SSH-2.0-dicomtest\r\n"

// httpReply is what NotDICOM answers.
const httpReply = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

// hostile plays a personality that acts before any association. After its
// misdeed it drains what the peer sends until the peer closes, so that the
// peer reads what was sent rather than a connection reset.
func (c *assoc) hostile() {
	h := c.cfg.Hostile
	switch h {
	case CloseOnConnect:
		return
	case SilentAfterConnect:
		c.drain()
		return
	case SSHBanner:
		c.write([]byte(sshBanner))
		c.drain()
		return
	case NotDICOM:
		var buf [1024]byte
		c.conn.SetReadDeadline(deadline(c.cfg.Timeout))
		if _, err := c.conn.Read(buf[:]); err == nil {
			c.write([]byte(httpReply))
		}
		c.drain()
		return
	case AbortOnConnect:
		c.s.st.aborted.Add(1)
		c.write(ul.AAbort{Source: 2}.Append(nil))
		c.drain()
		return
	}

	c.conn.SetReadDeadline(deadline(c.cfg.Timeout))
	p, err := ul.ReadPDU(c.conn, maxRQ)
	if err != nil {
		return
	}
	rq, ok := p.(*ul.AAssociateRQ)
	if !ok {
		return
	}
	ac := c.answer(rq)
	ac.ProtocolVersion, ac.ApplicationContext = 1, ul.ApplicationContext
	ac.CalledAE, ac.CallingAE = rq.CalledAE, rq.CallingAE
	ac.UserInfo.MaxLength = c.cfg.MaxPDU
	var b []byte
	switch h {
	case AbortAfterRQ:
		c.s.st.aborted.Add(1)
		b = ul.AAbort{Source: 2}.Append(nil)
	case SilentMidPDU:
		b = ac.Append(nil)[:3]
	case HugeLength:
		b = []byte{byte(ul.TypeAAssociateAC), 0, 0xFF, 0xFF, 0xFF, 0xF0, 0, 1, 0, 0, 'g', 'a', 'r', 'b', 'a', 'g', 'e'}
	case ShortLength:
		b = ac.Append(nil)
		binary.BigEndian.PutUint32(b[2:], 10)
	case UnknownPDUType:
		b = []byte{0x42, 0, 0, 0, 0, 4, 0, 0, 0, 0}
	case EvenContextID:
		ts := ""
		if len(rq.PresentationContexts) > 0 && len(rq.PresentationContexts[0].TransferSyntaxes) > 0 {
			ts = rq.PresentationContexts[0].TransferSyntaxes[0]
		}
		ac.PresentationContexts = append(ac.PresentationContexts, ul.PresentationContextAC{ID: 2, Result: ul.PCAcceptance, TransferSyntax: ts})
		b = ac.Append(nil)
	case InvalidResult:
		for i := range ac.PresentationContexts {
			ac.PresentationContexts[i].Result = 9
		}
		b = ac.Append(nil)
	case InvalidReject:
		c.s.st.rejected.Add(1)
		b = ul.AAssociateRJ{Result: 7, Source: 9, Reason: 42}.Append(nil)
	case Trickle:
		b = ac.Append(nil)
		for i := range b[:len(b)-1] {
			if !c.write(b[i:i+1]) || !c.pause(time.Second) {
				return
			}
		}
		b = b[len(b)-1:]
	}
	if !c.write(b) {
		return
	}
	if h == InvalidResult || h == Trickle {
		c.s.st.associations.Add(1)
		c.releaseOnly()
		return
	}
	c.drain()
}

// write writes b, and reports whether it could.
func (c *assoc) write(b []byte) bool {
	c.conn.SetWriteDeadline(deadline(c.cfg.Timeout))
	_, err := c.conn.Write(b)
	return err == nil
}

// releaseOnly serves an association on which nothing can be done: it answers
// an A-RELEASE-RQ and ends on anything else.
func (c *assoc) releaseOnly() {
	c.conn.SetReadDeadline(deadline(c.cfg.Timeout))
	p, err := ul.ReadPDU(c.conn, ul.DefaultMaxReadPDU)
	if err != nil {
		return
	}
	switch p.(type) {
	case *ul.AReleaseRQ:
		c.write(ul.AReleaseRP{}.Append(nil))
	case *ul.AAbort:
		c.s.st.aborted.Add(1)
	default:
		c.s.st.aborted.Add(1)
		c.write(ul.AAbort{Source: 2}.Append(nil))
	}
}

// pause waits for d while discarding what the peer sends, and reports false
// as soon as the peer closes the connection or the server is closed.
func (c *assoc) pause(d time.Duration) bool {
	end := deadline(d)
	var buf [512]byte
	c.conn.SetReadDeadline(end)
	for {
		_, err := c.conn.Read(buf[:])
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			return true
		case err != nil:
			return false
		}
	}
}
