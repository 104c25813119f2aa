//go:build linux

package discover

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The SYN stage's tests run in an empty network namespace of their own (loopback only, no
// route out), where nftables drops the SYNs to one port and rejects those to another with an
// ICMP host unreachable. The test binary re-runs itself there (synChildEnv names the test).

const (
	synChildEnv = "PACSWATCH_SYN_CHILD"  // the test the child runs
	synNSEnv    = "PACSWATCH_SYN_PARENT" // the parent's network namespace, which the child must not be in
)

// Ports of the test namespace.
const (
	portOpen     = 1001 // a listener
	portClosed   = 1002 // nothing listens
	portFiltered = 1003 // nftables drops SYNs
	portICMP     = 1004 // nftables answers ICMP host unreachable
)

const synRules = `add table inet syntest
add chain inet syntest in { type filter hook input priority 0; }
add rule inet syntest in tcp dport 1003 tcp flags & (syn|ack) == syn drop
add rule inet syntest in tcp dport 1004 tcp flags & (syn|ack) == syn reject with icmp type host-unreachable
`

// inEmptyNetns reports whether the test runs in its empty namespace (then it checks that it
// does, and fails otherwise); if not, it runs the test there and returns false.
func inEmptyNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(synChildEnv) == t.Name() {
		self, _ := os.Readlink("/proc/self/ns/net")
		out, err := exec.Command("ip", "route", "show", "default").CombinedOutput()
		if self == "" || self == os.Getenv(synNSEnv) || err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Fatalf("not in an empty network namespace of its own (ns %q, default route %q, %v): nothing is sent", self, out, err)
		}
		return true
	}
	_, errU := exec.LookPath("unshare")
	_, errN := exec.LookPath("nft")
	if os.Getuid() != 0 || errU != nil || errN != nil || SYNAvailable() != nil {
		need(t, "the SYN stage's tests need root, unshare, nft and raw sockets")
	}
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("unshare", "-n", "--", "sh", "-c",
		`ip link set lo up && printf '%s' "$0" | nft -f - && exec "$@"`, synRules,
		os.Args[0], "-test.run", "^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), synChildEnv+"="+t.Name(), synNSEnv+"="+self)
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatalf("in the empty namespace: %v\n%s", err, out)
	}
	t.Logf("in the empty namespace:\n%s", out)
	return false
}

// listenOpen accepts connections to portOpen on every loopback address until the test ends.
func listenOpen(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", portOpen))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// synTargets returns n addresses of 127.40.0.0/16 × ports.
func synTargets(n int, ports ...uint16) []netip.AddrPort {
	var out []netip.AddrPort
	for i := range n {
		a := netip.AddrFrom4([4]byte{127, 40, byte(i >> 8), byte(i)})
		for _, p := range ports {
			out = append(out, netip.AddrPortFrom(a, p))
		}
	}
	return out
}

// want is the outcome each port of the test namespace gives.
var want = map[uint16]Outcome{portOpen: Open, portClosed: Closed, portFiltered: Filtered, portICMP: Unreachable}

func TestSYNClassifies(t *testing.T) {
	if !inEmptyNetns(t) {
		return
	}
	listenOpen(t)
	s, err := NewSYNScanner(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	aps := append(synTargets(1024, portOpen, portClosed, portFiltered), synTargets(64, portICMP)...)
	got := make(map[netip.AddrPort]Outcome, len(aps))
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for _, ap := range aps {
		wg.Add(1)
		err := s.Start(ap, func(err error) {
			mu.Lock()
			got[ap] = Classify(err)
			mu.Unlock()
			wg.Done()
		})
		if err != nil {
			t.Fatalf("start %s: %v", ap, err)
		}
	}
	wg.Wait()
	counts := map[Outcome]int{}
	for _, ap := range aps {
		counts[got[ap]]++
		if got[ap] != want[ap.Port()] {
			t.Errorf("%s: %v, want %v", ap, got[ap], want[ap.Port()])
		}
	}
	t.Logf("%d targets in %v: %v", len(aps), time.Since(start), counts)
	if n := s.Pending(); n != 0 {
		t.Errorf("%d attempts still pending", n)
	}

	// connect() says the same of every target.
	c, err := NewConnector(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, ap := range aps {
		if i%7 != 0 && ap.Port() == portFiltered {
			continue // a seventh of the filtered ones: each holds a descriptor for the timeout
		}
		wg.Go(func() {
			conn, err := c.Connect(context.Background(), ap)
			if conn != nil {
				conn.Close()
			}
			if o := Classify(err); o != got[ap] {
				t.Errorf("%s: connect() says %v (%v), the SYN stage %v", ap, o, err, got[ap])
			}
		})
	}
	wg.Wait()
}

func TestSYNNoRouteAtOnce(t *testing.T) {
	if !inEmptyNetns(t) {
		return
	}
	s, err := NewSYNScanner(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Start(netip.MustParseAddrPort("8.8.8.8:104"), func(error) { t.Error("done called for an attempt that was not made") })
	if !errors.Is(err, syscall.ENETUNREACH) || Classify(err) != Unreachable {
		t.Fatalf("start to 8.8.8.8 with no route: %v, want ENETUNREACH (unreachable)", err)
	}
	if err := s.Start(netip.MustParseAddrPort("[2001:db8::1]:104"), func(error) {}); err == nil {
		t.Fatal("an IPv6 target was accepted")
	}
}

// forgeSYNACK sends a SYN-ACK from target to us:sport with acknowledgment number ack, from a
// raw socket that writes its own IP header.
func forgeSYNACK(t *testing.T, target netip.AddrPort, us [4]byte, sport uint16, ack uint32) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	src := target.Addr().As4()
	pkt := make([]byte, 40)
	pkt[0], pkt[8], pkt[9] = 0x45, 64, 6
	binary.BigEndian.PutUint16(pkt[2:4], 40)
	copy(pkt[12:16], src[:])
	copy(pkt[16:20], us[:])
	tcp := pkt[20:]
	binary.BigEndian.PutUint16(tcp[0:2], target.Port())
	binary.BigEndian.PutUint16(tcp[2:4], sport)
	binary.BigEndian.PutUint32(tcp[4:8], 12345)
	binary.BigEndian.PutUint32(tcp[8:12], ack)
	tcp[12], tcp[13] = 5<<4, tcpSYN|tcpACK
	binary.BigEndian.PutUint16(tcp[14:16], 65535)
	binary.BigEndian.PutUint16(tcp[16:18], tcpChecksum(src, us, tcp))
	if err := syscall.Sendto(fd, pkt, 0, &syscall.SockaddrInet4{Addr: us}); err != nil {
		t.Fatal(err)
	}
}

func TestSYNForgedAnswer(t *testing.T) {
	if !inEmptyNetns(t) {
		return
	}
	s, err := NewSYNScanner(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	us := [4]byte{127, 0, 0, 1}
	// Two filtered targets: one gets a SYN-ACK with a wrong acknowledgment number, the other
	// the right one (which shows that the forgeries reach the scanner).
	forged := netip.MustParseAddrPort(fmt.Sprintf("127.41.0.1:%d", portFiltered))
	right := netip.MustParseAddrPort(fmt.Sprintf("127.41.0.2:%d", portFiltered))
	type answer struct {
		ap netip.AddrPort
		o  Outcome
	}
	results := make(chan answer, 2)
	for _, ap := range []netip.AddrPort{forged, right} {
		go func() { results <- answer{ap, Classify(s.Connect(context.Background(), ap))} }()
	}
	time.Sleep(100 * time.Millisecond) // both SYNs sent
	sport, isn := synCookie(s.seed, us, forged.Addr().As4(), forged.Port())
	forgeSYNACK(t, forged, us, sport, isn+2)
	forgeSYNACK(t, forged, us, sport+1, isn+1)
	sport, isn = synCookie(s.seed, us, right.Addr().As4(), right.Port())
	forgeSYNACK(t, right, us, sport, isn+1)
	got := map[netip.AddrPort]Outcome{}
	for range 2 {
		a := <-results
		got[a.ap] = a.o
	}
	if o := got[forged]; o != Filtered {
		t.Errorf("a SYN-ACK with a wrong acknowledgment number or port: %v, want filtered", o)
	}
	if o := got[right]; o != Open {
		t.Errorf("a SYN-ACK with the right acknowledgment number: %v, want open", o)
	}
}

// TestSYNLostAnswers: when the stage's receive buffer overflows (made tiny here, the loop made
// slow), an attempt whose answer may have been dropped ends with ErrLost, never as filtered:
// the scanner's own limit is never a target's result.
func TestSYNLostAnswers(t *testing.T) {
	if !inEmptyNetns(t) {
		return
	}
	listenOpen(t)
	s, err := startSYNScanner(500*time.Millisecond, 1, func() { time.Sleep(20 * time.Millisecond) })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	aps := synTargets(2048, portOpen)
	var mu sync.Mutex
	var wg sync.WaitGroup
	counts := map[string]int{}
	for _, ap := range aps {
		wg.Add(1)
		err := s.Start(ap, func(err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrLost):
				counts["lost"]++
			case Classify(err) == Open:
				counts["open"]++
			default:
				counts["other"]++
				t.Errorf("%s, open: %v (%v)", ap, Classify(err), err)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	t.Logf("%v; drops %v", counts, s.drops)
	if counts["lost"] == 0 {
		t.Errorf("no attempt lost its answer (%v): the test did not overflow the buffer", counts)
	}
}
