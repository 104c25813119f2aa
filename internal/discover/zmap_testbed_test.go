package discover

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestZMapTestbed: zmap, run as the scan runs it (one process per port, allowlist, blocklist,
// seed), finds every listening address:port of a fleet behind the veth and nothing else, and
// reports the rest as closed (the fleet answers RST for every other address of its block).
func TestZMapTestbed(t *testing.T) {
	fleet := []string{"198.18.64.7:104", "198.18.64.9:11112", "198.18.64.200:104"}
	if !isChild(t) {
		if _, err := exec.LookPath("zmap"); err != nil {
			need(t, "zmap is not installed (apt-get install zmap)")
		}
		inTestbed(t, t.Name(), "198.18.64.0/24", fleet)
		return
	}
	allow := []netip.Prefix{netip.MustParsePrefix("198.18.64.0/24")}
	requireSealed(t, allow...)
	z := &ZMap{
		Ports: []uint16{104, 11112}, Allow: allow,
		Block: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("198.18.64.128/30")},
		Seed:  7, Rate: 4000,
		Args: []string{"-i", os.Getenv("SCAN_IF"), "-S", os.Getenv("SCAN_SRC"), "-G", os.Getenv("FLEET_MAC"), "-c", "1"},
	}
	var open []string
	closed := 0
	if err := z.Run(context.Background(), func(h Hit) {
		if !benchmarking.Contains(h.Addr.Addr()) {
			t.Errorf("hit %v outside the test bed", h.Addr)
		}
		if h.Closed {
			closed++
			return
		}
		open = append(open, h.Addr.String())
	}); err != nil {
		t.Fatalf("zmap: %v", err)
	}
	slices.Sort(open)
	want := slices.Clone(fleet)
	slices.Sort(want)
	if !slices.Equal(open, want) {
		t.Errorf("zmap found %v open, want %v", open, want)
	}
	// 256 addresses × 2 ports, less the 4 blocked addresses on both ports, less the 3 open.
	if wantClosed := 256*2 - 4*2 - 3; closed != wantClosed {
		t.Errorf("zmap found %d closed, want %d", closed, wantClosed)
	}
	if strings.Contains(strings.Join(open, ","), "198.18.64.128") {
		t.Error("a blocked address was scanned")
	}
}
