package discover

import (
	"encoding/binary"
	"errors"
	"hash/maphash"
	"net/netip"
	"os"
	"syscall"
)

// The SYN stage (SYNScanner) sends its own SYNs from one raw socket and reads the answers from
// raw sockets, as nmap -sS and ZMap do: an attempt in flight holds no descriptor and no
// goroutine, only an entry of a table, so that its count is bounded by memory, not by the file
// descriptor limit (issue 12). This file holds what does not depend on the system.

// Source ports of the SYN stage: 61000–65535, above Linux's default ephemeral range
// (net.ipv4.ip_local_port_range, 32768–60999), so that the kernel never picks one of them for
// a connect() of its own. A listener of this machine on one of them would answer a SYN-ACK
// meant for us with a RST, which does no harm: the raw socket reads the SYN-ACK all the same.
const (
	synPortBase = 61000
	synPorts    = 65536 - synPortBase
)

// ErrSYNUnavailable is wrapped by the error of NewSYNScanner when the system refuses raw
// sockets (no CAP_NET_RAW) or has none (not Linux).
var ErrSYNUnavailable = errors.New("raw sockets are refused")

// Errors of answers, as connect() has them, for Classify.
var (
	errRefused         = os.NewSyscallError("syn", syscall.ECONNREFUSED)
	errHostUnreachable = os.NewSyscallError("syn", syscall.EHOSTUNREACH)
)

// ErrLost is the error of a SYN stage's attempt that had no answer before the timeout while
// a receive buffer of the stage overflowed: the answer may have been dropped, so the timeout
// says nothing true about the target (the scanner's own limit). Send it again.
var ErrLost = errors.New("discover: no answer, but the syn stage's receive buffer dropped packets meanwhile")

// synKey identifies an attempt: the target's IPv4 address and port.
func synKey(dst [4]byte, port uint16) uint64 {
	return uint64(binary.BigEndian.Uint32(dst[:]))<<16 | uint64(port)
}

// synCookie returns the source port and initial sequence number of the SYN from src to
// dst:port, a keyed hash of the three (ZMap's validation): an answer whose acknowledgment
// number is not isn+1, or that comes to another port, was not provoked by us.
func synCookie(seed maphash.Seed, src, dst [4]byte, port uint16) (sport uint16, isn uint32) {
	var b [10]byte
	copy(b[0:4], dst[:])
	binary.BigEndian.PutUint16(b[4:6], port)
	copy(b[6:10], src[:])
	h := maphash.Bytes(seed, b[:])
	return uint16(synPortBase + (h>>32)%synPorts), uint32(h)
}

// synHeaderLen is the length of the SYN's TCP header: 20 bytes and the MSS option.
const synHeaderLen = 24

// buildSYN writes into b (synHeaderLen bytes) the TCP header of a SYN from src:sport to
// dst:dport with sequence number isn, its checksum over the IPv4 pseudo header.
func buildSYN(b []byte, src, dst [4]byte, sport, dport uint16, isn uint32) {
	binary.BigEndian.PutUint16(b[0:2], sport)
	binary.BigEndian.PutUint16(b[2:4], dport)
	binary.BigEndian.PutUint32(b[4:8], isn)
	binary.BigEndian.PutUint32(b[8:12], 0)
	b[12] = (synHeaderLen / 4) << 4
	b[13] = tcpSYN
	binary.BigEndian.PutUint16(b[14:16], 65535) // window
	binary.BigEndian.PutUint16(b[16:18], 0)     // checksum, below
	binary.BigEndian.PutUint16(b[18:20], 0)     // urgent pointer
	b[20], b[21] = 2, 4                         // MSS option
	binary.BigEndian.PutUint16(b[22:24], 1460)
	binary.BigEndian.PutUint16(b[16:18], tcpChecksum(src, dst, b[:synHeaderLen]))
}

// TCP flags.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// tcpChecksum returns the checksum of TCP segment seg from src to dst, with the pseudo header.
func tcpChecksum(src, dst [4]byte, seg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src[:])
	add(dst[:])
	sum += 6 + uint32(len(seg)) // zero, protocol TCP, TCP length
	add(seg)
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// synAnswer is what a packet read from a raw socket says about an attempt.
type synAnswer struct {
	key uint64
	src [4]byte // our address, to which the target answered
	err error   // nil: SYN-ACK (open); otherwise Classify's error
}

// parseTCP reads an IPv4 packet carrying TCP from target to us and returns the answer it
// gives, if it is a SYN-ACK or RST that validates against our cookie.
func parseTCP(seed maphash.Seed, pkt []byte) (synAnswer, bool) {
	if len(pkt) < 20 || pkt[0]>>4 != 4 || pkt[9] != 6 {
		return synAnswer{}, false
	}
	ihl := int(pkt[0]&0x0f) * 4
	if ihl < 20 || len(pkt) < ihl+20 {
		return synAnswer{}, false
	}
	var target, us [4]byte
	copy(target[:], pkt[12:16])
	copy(us[:], pkt[16:20])
	tcp := pkt[ihl:]
	tport, dport := binary.BigEndian.Uint16(tcp[0:2]), binary.BigEndian.Uint16(tcp[2:4])
	ack, flags := binary.BigEndian.Uint32(tcp[8:12]), tcp[13]
	sport, isn := synCookie(seed, us, target, tport)
	if dport != sport || flags&tcpACK == 0 || ack != isn+1 {
		return synAnswer{}, false
	}
	a := synAnswer{key: synKey(target, tport), src: us}
	switch {
	case flags&tcpRST != 0:
		a.err = errRefused
	case flags&tcpSYN != 0:
	default:
		return synAnswer{}, false
	}
	return a, true
}

// parseICMP reads an IPv4 packet carrying an ICMP destination unreachable that quotes one of
// our SYNs, and returns the answer it gives: unreachable (EHOSTUNREACH), or closed for a
// protocol or port unreachable, as connect() has them.
func parseICMP(seed maphash.Seed, pkt []byte) (synAnswer, bool) {
	if len(pkt) < 20 || pkt[0]>>4 != 4 || pkt[9] != 1 {
		return synAnswer{}, false
	}
	ihl := int(pkt[0]&0x0f) * 4
	icmp := pkt[min(ihl, len(pkt)):]
	if len(icmp) < 8+20 || icmp[0] != 3 {
		return synAnswer{}, false
	}
	code, inner := icmp[1], icmp[8:]
	iihl := int(inner[0]&0x0f) * 4
	if inner[0]>>4 != 4 || inner[9] != 6 || iihl < 20 || len(inner) < iihl+8 {
		return synAnswer{}, false
	}
	var us, target [4]byte
	copy(us[:], inner[12:16])
	copy(target[:], inner[16:20])
	tcp := inner[iihl:]
	sport, tport := binary.BigEndian.Uint16(tcp[0:2]), binary.BigEndian.Uint16(tcp[2:4])
	wantPort, isn := synCookie(seed, us, target, tport)
	if sport != wantPort || binary.BigEndian.Uint32(tcp[4:8]) != isn {
		return synAnswer{}, false
	}
	a := synAnswer{key: synKey(target, tport), src: us}
	switch code {
	case 2, 3: // protocol, port unreachable
		a.err = errRefused
	case 4: // fragmentation needed: not an answer about the port
		return synAnswer{}, false
	default:
		// An ICMP answer is a remote one, whatever its code: the network works (see
		// scan.ErrNetworkUnreachable, which counts only the routing table's "no route").
		a.err = errHostUnreachable
	}
	return a, true
}

// addr4 returns ap's IPv4 address, or false.
func addr4(ap netip.AddrPort) ([4]byte, bool) {
	a := ap.Addr().Unmap()
	if !a.Is4() {
		return [4]byte{}, false
	}
	return a.As4(), true
}

// synDeadline is an attempt's entry in a fifo: no pointer, 24 bytes.
type synDeadline struct {
	key uint64
	gen uint32
	at  int64 // nanoseconds since the scanner's base
}
