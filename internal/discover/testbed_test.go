package discover

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Tests that send real packets (ZMap's raw SYNs) run in ../shared/tools/veth-testbed: two
// sealed network namespaces joined by a veth, the fleet's addresses in 198.18.0.0/15, no route
// out. The test binary is both sides: the fleet (TestMain, with fleetEnv set) and the scanner
// (the test itself, with childEnv set), which first checks that it is sealed in.

const (
	fleetEnv = "PACSWATCH_TESTBED_FLEET" // addr:port,... the fleet listens on
	childEnv = "PACSWATCH_TESTBED_CHILD" // the test the scanner side runs
)

// benchmarking is RFC 2544's block, where test-bed addresses live.
var benchmarking = netip.MustParsePrefix("198.18.0.0/15")

func TestMain(m *testing.M) {
	if fleet := os.Getenv(fleetEnv); fleet != "" {
		os.Exit(serveFleet(fleet))
	}
	os.Exit(m.Run())
}

// serveFleet listens on every addr:port of list (inside 198.18.0.0/15) and accepts until
// killed.
func serveFleet(list string) int {
	for s := range strings.SplitSeq(list, ",") {
		ap, err := netip.ParseAddrPort(s)
		if err != nil || !benchmarking.Contains(ap.Addr()) {
			fmt.Fprintf(os.Stderr, "fleet: %q is not an address:port in 198.18.0.0/15\n", s)
			return 2
		}
		l, err := net.Listen("tcp4", s)
		if err != nil {
			fmt.Fprintf(os.Stderr, "fleet: %v\n", err)
			return 2
		}
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
	select {}
}

// need skips the test for want of a peer, or fails it under PACSWATCH_REQUIRE_PEERS=1 (CI
// installs every peer).
func need(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("PACSWATCH_REQUIRE_PEERS") == "1" {
		t.Fatalf(format+" (PACSWATCH_REQUIRE_PEERS=1)", args...)
	}
	t.Skipf(format, args...)
}

// inTestbed runs test name on the scanner side of a veth test bed whose fleet listens on
// fleet, and fails with its output if it fails.
func inTestbed(t *testing.T, name, cidr string, fleet []string) {
	t.Helper()
	tool, err := filepath.Abs(filepath.Join("..", "..", "..", "shared", "tools", "veth-testbed"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tool); err != nil {
		need(t, "no test bed: %s is missing", tool)
	}
	if os.Getuid() != 0 {
		need(t, "the veth test bed needs root")
	}
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tool, "--fleet-cidr", cidr,
		"--fleet", fmt.Sprintf("%s=%s %q", fleetEnv, strings.Join(fleet, ","), bin),
		"--scan", fmt.Sprintf("%s=%s %q -test.run='^%s$' -test.v -test.count=1", childEnv, name, bin, name))
	out, err := cmd.CombinedOutput()
	t.Logf("test bed:\n%s", out)
	if err != nil {
		t.Fatalf("test bed: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: "+name) {
		t.Fatalf("the test bed did not run %s", name)
	}
}

// isChild reports whether this process is the scanner side of the test bed for the test.
func isChild(t *testing.T) bool { return os.Getenv(childEnv) == t.Name() }

// requireSealed fails the test unless this process runs in a network namespace of its own
// with no default route (IPv4 or IPv6), so that nothing it sends can leave the test bed, and
// every prefix it is about to scan lies in 198.18.0.0/15.
func requireSealed(t *testing.T, scan ...netip.Prefix) {
	t.Helper()
	self, err1 := os.Readlink("/proc/self/ns/net")
	if initNS, err2 := os.Readlink("/proc/1/ns/net"); err1 != nil || err2 == nil && self == initNS {
		t.Fatalf("in the machine's own network namespace (%s): refusing to send", self)
	}
	// Every interface but loopback must be a veth: the test bed's, linked to nothing else.
	out, err := exec.Command("ip", "-d", "-o", "link", "show").Output()
	if err != nil {
		t.Fatalf("ip link show: %v", err)
	}
	for line := range strings.Lines(string(out)) {
		if !strings.Contains(line, "link/loopback") && !strings.Contains(line, " veth ") {
			t.Fatalf("interface %s is neither loopback nor a veth: not in a sealed test bed, refusing to send", strings.Fields(line)[1])
		}
	}
	if hasDefaultRoute(t, "/proc/net/route", 1, "00000000") || hasDefaultRoute(t, "/proc/net/ipv6_route", 0, strings.Repeat("0", 32)) {
		t.Fatal("this namespace has a default route: refusing to send")
	}
	for _, p := range scan {
		if !benchmarking.Contains(p.Addr()) || p.Bits() < benchmarking.Bits() {
			t.Fatalf("%v lies outside 198.18.0.0/15: refusing to send", p)
		}
	}
}

// hasDefaultRoute reports whether a routing table of /proc lists a route to dest (its column
// col) with a prefix of length 0.
func hasDefaultRoute(t *testing.T, path string, col int, dest string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return false // no such family
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) <= col+1 {
			continue
		}
		if fields[col] != dest || fields[len(fields)-1] == "lo" || col == 1 && fields[0] == "lo" {
			continue // the kernel's reject route ::/0 on lo sends nothing out
		}
		switch {
		case col == 1 && len(fields) > 7 && fields[7] == "00000000": // IPv4: the mask column
			return true
		case col == 0 && fields[1] == "00": // IPv6: the prefix length column
			return true
		}
	}
	return false
}
