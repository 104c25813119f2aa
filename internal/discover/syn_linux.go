//go:build linux

package discover

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/pacswatch/pacswatch/internal/fifo"
)

// A SYNScanner finds whether IPv4 targets accept TCP connections without connecting (nmap -sS,
// ZMap): it sends a SYN built here from a raw socket and reads the answers from two more, TCP
// and ICMP. A SYN-ACK is open, a RST closed, an ICMP destination unreachable quoting our SYN
// unreachable (EHOSTUNREACH), no answer within the timeout filtered (ErrTimeout). The SYN is
// sent once more halfway through the timeout when no answer came, as the kernel's connect()
// retransmits its SYN after 1 s. Answers are validated statelessly: the source port and
// initial sequence number are a keyed hash of the target and our address (synCookie), so a
// forged or stray packet cannot mark a target open without knowing the key; the kernel answers
// a SYN-ACK with a RST itself (no socket owns the port), which closes the half-open connection
// at the target. An attempt in flight is a table entry and two deadlines: no descriptor, no
// goroutine. Needs CAP_NET_RAW. It is safe for concurrent use.
type SYNScanner struct {
	timeout   time.Duration
	send      int // raw IPPROTO_TCP socket the SYNs leave by; it also reads TCP answers
	icmp      int // raw IPPROTO_ICMP socket, for destination unreachable
	epfd      int
	seed      maphash.Seed
	base      time.Time // deadlines are nanoseconds since base
	stopped   chan struct{}
	routes    routeCache
	sendMu    sync.Mutex // one SYN at a time through the send buffer
	sendBuf   [synHeaderLen]byte
	recvBuf   []byte
	eventsBuf []syscall.EpollEvent
	drops     [2]uint32 // packets the receive buffers of send and icmp dropped so far; loop only
	rcvbuf    int       // receive buffer size; tests make it small
	stall     func()    // tests: called at each turn of the loop, to make it late

	mu      sync.Mutex              // protects the fields below
	pending map[uint64]synPend      // by synKey
	resend  fifo.Queue[synDeadline] // halfway through the timeout
	expire  fifo.Queue[synDeadline] // at the timeout
	gen     uint32                  // tells an attempt from an earlier one to the same target
	lossAt  int64                   // when a receive buffer was last seen to have dropped a packet, since base; 0: never
	closed  bool
}

// synPend is one attempt in flight.
type synPend struct {
	gen  uint32
	src  [4]byte
	done func(error)
}

// NewSYNScanner opens the raw sockets of a SYN stage whose attempts wait timeout for an answer
// (0: the default). The error wraps ErrSYNUnavailable when the system refuses raw sockets.
// Close it when done.
func NewSYNScanner(timeout time.Duration) (*SYNScanner, error) {
	return startSYNScanner(timeout, 32<<20, nil)
}

// startSYNScanner is NewSYNScanner with a receive buffer size and a stall hook, for tests.
func startSYNScanner(timeout time.Duration, rcvbuf int, stall func()) (*SYNScanner, error) {
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	s := &SYNScanner{timeout: timeout, send: -1, icmp: -1, epfd: -1, seed: maphash.MakeSeed(), base: time.Now(),
		stopped: make(chan struct{}), pending: make(map[uint64]synPend), recvBuf: make([]byte, 1600),
		eventsBuf: make([]syscall.EpollEvent, 4), rcvbuf: rcvbuf, stall: stall}
	if err := s.open(); err != nil {
		s.closeFDs()
		return nil, err
	}
	go s.loop()
	return s, nil
}

// SYNAvailable reports whether this process may open the raw sockets of a SYN stage: nil, or
// an error wrapping ErrSYNUnavailable.
func SYNAvailable() error {
	fd, err := rawSocket(syscall.IPPROTO_TCP)
	if err != nil {
		return err
	}
	syscall.Close(fd)
	return nil
}

// rawSocket opens a non-blocking raw IPv4 socket of protocol proto.
func rawSocket(proto int) (int, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, proto)
	switch {
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		return -1, fmt.Errorf("%w (the SYN stage needs CAP_NET_RAW: run as root, or use --syn off)", ErrSYNUnavailable)
	case err != nil:
		return -1, fmt.Errorf("%w: %w", ErrSYNUnavailable, err)
	}
	return fd, nil
}

// open opens the sockets and the epoll instance that watches them.
func (s *SYNScanner) open() error {
	var err error
	if s.send, err = rawSocket(syscall.IPPROTO_TCP); err != nil {
		return err
	}
	if s.icmp, err = rawSocket(syscall.IPPROTO_ICMP); err != nil {
		return err
	}
	// Only what can answer a SYN of ours reaches the TCP socket: a RST or a SYN-ACK to one of
	// our source ports. The rest of the machine's TCP traffic (the probes') is not copied to us.
	prog, err := synFilter()
	if err == nil {
		err = attachFilter(s.send, prog)
	}
	if err != nil {
		return fmt.Errorf("syn stage: socket filter: %w", err)
	}
	for _, fd := range []int{s.send, s.icmp} {
		// Big receive buffers, so that a burst of answers is not dropped while the loop is late
		// (a dropped answer would be a false "filtered"; see ErrLost): beyond rmem_max as root.
		if syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, s.rcvbuf) != nil {
			_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, s.rcvbuf)
		}
	}
	_ = syscall.SetsockoptInt(s.send, syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4<<20)
	if s.epfd, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC); err != nil {
		return os.NewSyscallError("epoll_create1", err)
	}
	for _, fd := range []int{s.send, s.icmp} {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}
		if err := syscall.EpollCtl(s.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return os.NewSyscallError("epoll_ctl", err)
		}
	}
	return nil
}

// synFilter is a classic BPF program that accepts the IPv4 TCP packets to a port of ours
// (synPortBase on) with RST, or SYN and ACK, set.
func synFilter() ([]bpf.RawInstruction, error) {
	return bpf.Assemble([]bpf.Instruction{
		bpf.LoadMemShift{Off: 0},          // 0: X = IP header length
		bpf.LoadIndirect{Off: 2, Size: 2}, // 1: A = destination port
		bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: synPortBase, SkipFalse: 5}, // 2: ours, or drop
		bpf.LoadIndirect{Off: 13, Size: 1},                                       // 3: A = flags
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: tcpRST, SkipTrue: 2},              // 4: RST: accept
		bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: tcpSYN | tcpACK},                // 5
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: tcpSYN | tcpACK, SkipFalse: 1},      // 6: SYN-ACK: accept
		bpf.RetConstant{Val: 0xffff},                                             // 7: accept
		bpf.RetConstant{Val: 0},                                                  // 8: drop
	})
}

// attachFilter attaches the classic BPF program prog to socket fd.
func attachFilter(fd int, prog []bpf.RawInstruction) error {
	fs := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		fs[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(fs)), Filter: &fs[0]})
}

// Pending returns how many attempts are in flight.
func (s *SYNScanner) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// Start sends a SYN to ap (IPv4) and returns; done is called once with the answer, from the
// scanner's own goroutine, and must not block: nil (open), or an error Classify tells closed
// (ECONNREFUSED), unreachable (EHOSTUNREACH) or filtered (ErrTimeout), or ErrLost (no answer
// while our receive buffer dropped packets: try again), or ErrClosed when the scanner is
// closed first. When Start returns an error, the attempt was not made (nothing was
// sent, or the system refused the SYN at once: ENETUNREACH for no route, as connect() has it)
// and done is not called. One attempt per target at a time.
func (s *SYNScanner) Start(ap netip.AddrPort, done func(error)) error {
	_, err := s.start(ap, done)
	return err
}

// start is Start; it returns the attempt's generation.
func (s *SYNScanner) start(ap netip.AddrPort, done func(error)) (uint32, error) {
	dst, ok := addr4(ap)
	if !ok {
		return 0, fmt.Errorf("syn stage: %s is not an IPv4 address", ap.Addr())
	}
	src, err := s.routes.source(dst)
	if err != nil {
		return 0, err
	}
	k := synKey(dst, ap.Port())
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, ErrClosed
	}
	if _, busy := s.pending[k]; busy {
		s.mu.Unlock()
		return 0, fmt.Errorf("syn stage: an attempt to %s is in flight already", ap)
	}
	s.gen++
	gen := s.gen
	s.pending[k] = synPend{gen: gen, src: src, done: done} // before the SYN leaves: its answer may be quick
	s.mu.Unlock()
	err = s.sendSYN(src, dst, ap.Port())
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pending[k]
	switch {
	case !ok || p.gen != gen:
		return gen, nil // answered already, or ended by Close: done has its answer
	case err != nil:
		delete(s.pending, k)
		return 0, err
	}
	// The timeout counts from when the SYN left, not from a wait for the send buffer.
	now := int64(time.Since(s.base))
	s.resend.Push(synDeadline{key: k, gen: gen, at: now + int64(s.timeout/2)})
	s.expire.Push(synDeadline{key: k, gen: gen, at: now + int64(s.timeout)})
	return gen, nil
}

// Connect sends a SYN to ap and waits for the answer, as Start has it (nil: open); when ctx
// ends first, the attempt is abandoned and Connect returns ctx.Err().
func (s *SYNScanner) Connect(ctx context.Context, ap netip.AddrPort) error {
	ch := make(chan error, 1)
	gen, err := s.start(ap, func(err error) { ch <- err })
	if err != nil {
		return err
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		dst, _ := addr4(ap)
		k := synKey(dst, ap.Port())
		s.mu.Lock()
		if p, ok := s.pending[k]; ok && p.gen == gen {
			delete(s.pending, k)
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}

// sendSYN sends the SYN of an attempt (again, when its answer is late), waiting while the
// send buffer is full: the scanner's own limit, never a target's result.
func (s *SYNScanner) sendSYN(src, dst [4]byte, port uint16) error {
	sport, isn := synCookie(s.seed, src, dst, port)
	sa := &syscall.SockaddrInet4{Addr: dst}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	buildSYN(s.sendBuf[:], src, dst, sport, port, isn)
	for backoff := 50 * time.Microsecond; ; backoff = min(2*backoff, 10*time.Millisecond) {
		err := syscall.Sendto(s.send, s.sendBuf[:], 0, sa)
		switch {
		case err == nil:
			return nil
		case err == syscall.EINTR:
		case err == syscall.EAGAIN, err == syscall.ENOBUFS:
			time.Sleep(backoff)
		default:
			return os.NewSyscallError("sendto", err)
		}
	}
}

// loop reads answers and keeps the deadlines until Close.
func (s *SYNScanner) loop() {
	defer close(s.stopped)
	for {
		if s.stall != nil {
			s.stall()
		}
		_, err := syscall.EpollWait(s.epfd, s.eventsBuf, s.nextWait())
		if err != nil && err != syscall.EINTR {
			s.fail(os.NewSyscallError("epoll_wait", err))
			return
		}
		// Every answer already in is taken before any deadline is looked at, whether epoll
		// woke for one or for a deadline: an answer the loop is slow to read is never taken
		// for a timeout.
		s.drain()
		s.checkDrops()
		s.deadlines()
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			s.fail(ErrClosed)
			return
		}
	}
}

// drain reads every packet waiting on both sockets and answers their attempts.
func (s *SYNScanner) drain() {
	for _, fd := range []int{s.send, s.icmp} {
		for {
			n, _, err := syscall.Recvfrom(fd, s.recvBuf, syscall.MSG_DONTWAIT)
			if err == syscall.EINTR {
				continue
			}
			if err != nil || n <= 0 {
				break
			}
			var a synAnswer
			var ok bool
			if fd == s.send {
				a, ok = parseTCP(s.seed, s.recvBuf[:n])
			} else {
				a, ok = parseICMP(s.seed, s.recvBuf[:n])
			}
			if ok {
				s.answer(a)
			}
		}
	}
}

// soMeminfo is SO_MEMINFO (asm-generic/socket.h), which syscall does not name.
const soMeminfo = 0x37

// skMeminfoDrops is the index of the drop count in SO_MEMINFO's array.
const skMeminfoDrops = 8

// checkDrops notes when a receive buffer has dropped packets since the last look.
func (s *SYNScanner) checkDrops() {
	lost := false
	for i, fd := range []int{s.send, s.icmp} {
		var info [9]uint32
		size := uint32(len(info) * 4)
		_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, uintptr(fd), syscall.SOL_SOCKET, soMeminfo,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&size)), 0)
		if errno == 0 && size >= 4*(skMeminfoDrops+1) && info[skMeminfoDrops] != s.drops[i] {
			s.drops[i], lost = info[skMeminfoDrops], true
		}
	}
	if lost {
		s.mu.Lock()
		s.lossAt = int64(time.Since(s.base))
		s.mu.Unlock()
	}
}

// answer ends the attempt a answers, if it is in flight and its SYN left from a's address.
func (s *SYNScanner) answer(a synAnswer) {
	s.mu.Lock()
	p, ok := s.pending[a.key]
	if !ok || p.src != a.src {
		s.mu.Unlock()
		return // answered already (the retransmission's answer), abandoned, or not ours
	}
	delete(s.pending, a.key)
	s.mu.Unlock()
	p.done(a.err)
}

// nextWait returns how many milliseconds epoll may wait: until the next deadline, at most 50
// ms, so that Close is seen soon.
func (s *SYNScanner) nextWait() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := int64(-1)
	for _, f := range []*fifo.Queue[synDeadline]{&s.resend, &s.expire} {
		for f.Len() > 0 && !s.live(f.First()) {
			f.Pop()
		}
		if f.Len() > 0 && (next < 0 || f.First().at < next) {
			next = f.First().at
		}
	}
	if next < 0 {
		return 50
	}
	d := time.Duration(next) - time.Since(s.base)
	return int(min(max((d+time.Millisecond-1)/time.Millisecond, 0), 50))
}

// live reports whether d's attempt is still in flight. s.mu must be held.
func (s *SYNScanner) live(d synDeadline) bool {
	p, ok := s.pending[d.key]
	return ok && p.gen == d.gen
}

// deadlines sends the SYNs due again and ends the attempts whose timeout has passed.
func (s *SYNScanner) deadlines() {
	now := int64(time.Since(s.base))
	type again struct {
		src, dst [4]byte
		port     uint16
	}
	var resend []again
	type expired struct {
		done func(error)
		err  error
	}
	var late []expired
	s.mu.Lock()
	for s.resend.Len() > 0 && s.resend.First().at <= now {
		if d := s.resend.First(); s.live(d) {
			var dst [4]byte
			k := d.key >> 16
			dst[0], dst[1], dst[2], dst[3] = byte(k>>24), byte(k>>16), byte(k>>8), byte(k)
			resend = append(resend, again{src: s.pending[d.key].src, dst: dst, port: uint16(d.key)})
		}
		s.resend.Pop()
	}
	for s.expire.Len() > 0 && s.expire.First().at <= now {
		if d := s.expire.First(); s.live(d) {
			// No answer came; but if a receive buffer dropped packets since the SYN left, the
			// answer may have been among them: the scanner's limit, not the target's.
			err := ErrTimeout
			if d.at-int64(s.timeout) < s.lossAt {
				err = ErrLost
			}
			late = append(late, expired{s.pending[d.key].done, err})
			delete(s.pending, d.key)
		}
		s.expire.Pop()
	}
	s.mu.Unlock()
	for _, l := range late {
		l.done(l.err)
	}
	for _, r := range resend {
		_ = s.sendSYN(r.src, r.dst, r.port) // refused now: the timeout tells
	}
}

// fail ends every attempt in flight with err.
func (s *SYNScanner) fail(err error) {
	s.mu.Lock()
	s.closed = true
	dones := make([]func(error), 0, len(s.pending))
	for _, p := range s.pending {
		dones = append(dones, p.done)
	}
	clear(s.pending)
	s.resend, s.expire = fifo.Queue[synDeadline]{}, fifo.Queue[synDeadline]{}
	s.mu.Unlock()
	for _, done := range dones {
		done(err)
	}
}

// Close ends the attempts in flight (their done gets ErrClosed) and releases the sockets.
func (s *SYNScanner) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	<-s.stopped
	s.closeFDs()
	return nil
}

func (s *SYNScanner) closeFDs() {
	for _, fd := range []int{s.send, s.icmp, s.epfd} {
		if fd >= 0 {
			syscall.Close(fd)
		}
	}
}

// routeCache keeps the source address the kernel's routing picks for a destination, per /24.
type routeCache struct {
	mu  sync.Mutex
	src map[[3]byte][4]byte
}

// source returns the address the routing table gives SYNs to dst, as a connect() would
// (a UDP socket's connect, which sends nothing). No route: an error wrapping ENETUNREACH or
// EHOSTUNREACH, as connect() reports it.
func (r *routeCache) source(dst [4]byte) ([4]byte, error) {
	net24 := [3]byte{dst[0], dst[1], dst[2]}
	r.mu.Lock()
	src, ok := r.src[net24]
	r.mu.Unlock()
	if ok {
		return src, nil
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return src, os.NewSyscallError("socket", err)
	}
	defer syscall.Close(fd)
	if err := syscall.Connect(fd, &syscall.SockaddrInet4{Port: 9, Addr: dst}); err != nil {
		return src, os.NewSyscallError("connect", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return src, os.NewSyscallError("getsockname", err)
	}
	src = sa.(*syscall.SockaddrInet4).Addr
	r.mu.Lock()
	if r.src == nil || len(r.src) >= 1<<16 {
		r.src = make(map[[3]byte][4]byte)
	}
	r.src[net24] = src
	r.mu.Unlock()
	return src, nil
}
