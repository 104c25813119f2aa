package targets

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
)

func TestZMapLists(t *testing.T) {
	tests := []struct {
		name       string
		specs      []string
		exclude    []string
		wantAllow  string
		wantBlock  []string // some of the blocklist
		notBlocked []string // addresses the blocklist must not hold
	}{
		{"test bed", []string{"198.18.64.0/18"}, nil, "[198.18.64.0/18]", []string{"10.0.0.0/8", "127.0.0.0/8", "198.18.0.0/18", "198.18.128.0/17", "192.168.0.0/16"}, []string{"198.18.64.1"}},
		{"range and address", []string{"192.0.2.3-192.0.2.10", "127.0.0.1"}, nil, "[127.0.0.1/32 192.0.2.3/32 192.0.2.4/30 192.0.2.8/31 192.0.2.10/32]", []string{"192.0.2.0/31", "192.0.2.11/32"}, []string{"192.0.2.5", "127.0.0.1"}},
		{"exclusion inside", []string{"198.18.64.0/24"}, []string{"198.18.64.128/25"}, "[198.18.64.0/25]", []string{"198.18.64.128/25"}, nil},
		{"the whole internet", []string{"0.0.0.0/0"}, []string{"1.2.3.0/24"}, "", []string{"1.2.3.0/24", "10.0.0.0/8", "224.0.0.0/3"}, []string{"8.8.8.8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, err := Parse(context.Background(), tt.specs, Options{Ports: []uint16{104}, Exclude: tt.exclude})
			if err != nil {
				t.Fatal(err)
			}
			x, err := ParseExclusions(tt.exclude)
			if err != nil {
				t.Fatal(err)
			}
			allow, block, err := sp.ZMapLists(x)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantAllow != "" && fmt.Sprint(allow) != tt.wantAllow {
				t.Errorf("allow = %v, want %s", allow, tt.wantAllow)
			}
			blocked := func(a netip.Addr) bool {
				for _, p := range block {
					if p.Contains(a) {
						return true
					}
				}
				return false
			}
			for _, w := range tt.wantBlock {
				p := netip.MustParsePrefix(w)
				if !blocked(p.Addr()) || !blocked(lastAddr(p)) {
					t.Errorf("block %v does not hold %s", block, w)
				}
			}
			for _, a := range tt.notBlocked {
				if blocked(netip.MustParseAddr(a)) {
					t.Errorf("block holds %s, a target", a)
				}
			}
			for _, p := range allow {
				if blocked(p.Addr()) {
					t.Errorf("allowed %v is blocked", p)
				}
			}
		})
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	u := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	u |= 1<<(32-p.Bits()) - 1
	return uint4Addr(u)
}

func TestZMapListsRefuses(t *testing.T) {
	for _, specs := range [][]string{{"2001:db8::/120"}, {"192.0.2.1:104"}, {"fe80::1%lo"}} {
		sp, err := Parse(context.Background(), specs, Options{Ports: []uint16{104}})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := sp.ZMapLists(nil); err != ErrNotZMap {
			t.Errorf("ZMapLists of %v = %v, want ErrNotZMap", specs, err)
		}
	}
}

func TestIvalPrefixes(t *testing.T) {
	for _, tt := range []struct{ lo, hi, want string }{
		{"0.0.0.0", "255.255.255.255", "[0.0.0.0/0]"},
		{"10.0.0.1", "10.0.0.6", "[10.0.0.1/32 10.0.0.2/31 10.0.0.4/31 10.0.0.6/32]"},
		{"255.255.255.255", "255.255.255.255", "[255.255.255.255/32]"},
		{"128.0.0.0", "255.255.255.255", "[128.0.0.0/1]"},
	} {
		got := ivalPrefixes(ival{netip.MustParseAddr(tt.lo), netip.MustParseAddr(tt.hi)})
		if fmt.Sprint(got) != tt.want {
			t.Errorf("ivalPrefixes(%s-%s) = %v, want %s", tt.lo, tt.hi, got, tt.want)
		}
	}
}
