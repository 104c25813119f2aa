package targets

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// fakeResolve stands in for DNS: tests never leave the process.
func fakeResolve(_ context.Context, host string) ([]netip.Addr, error) {
	switch strings.TrimSuffix(host, ".") {
	case "pacs.test":
		return []netip.Addr{netip.MustParseAddr("127.0.0.10")}, nil
	case "dual.test":
		return []netip.Addr{netip.MustParseAddr("::1"), netip.MustParseAddr("127.0.0.20"), netip.MustParseAddr("127.0.0.20")}, nil
	case "mapped.test":
		return []netip.Addr{netip.MustParseAddr("::ffff:127.0.0.30")}, nil
	case "empty.test":
		return nil, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func mustParse(t testing.TB, specs []string, opt Options) *Space {
	t.Helper()
	if opt.Resolve == nil {
		opt.Resolve = fakeResolve
	}
	s, err := Parse(context.Background(), specs, opt)
	if err != nil {
		t.Fatalf("Parse(%q): %v", specs, err)
	}
	return s
}

// list returns every pair of s in index order, with the hostname in
// parentheses when there is one.
func list(s *Space) []string {
	var out []string
	for i := range s.Len() {
		t := s.At(i)
		str := t.String()
		if t.Host != "" {
			str += " (" + t.Host + ")"
		}
		out = append(out, str)
	}
	return out
}

// has reports whether t (address and port; Host ignored) is in s.
func has(s *Space, t Target) bool {
	for _, u := range s.pairs {
		if u.Addr == t.Addr && u.Port == t.Port {
			return true
		}
	}
	if _, ok := slices.BinarySearch(s.ports, t.Port); !ok {
		return false
	}
	for _, u := range s.extra {
		if u.Addr == t.Addr {
			return true
		}
	}
	for k, sp := range s.spans {
		end := s.naddr
		if k+1 < len(s.spans) {
			end = s.spans[k+1].cum
		}
		if t.Addr.BitLen() != sp.lo.BitLen() || t.Addr.Less(sp.lo) {
			continue
		}
		off := toU128(t.Addr).sub(toU128(sp.lo))
		if off.hi == 0 && off.lo < end-sp.cum {
			return true
		}
	}
	return false
}

func TestParse(t *testing.T) {
	p104 := []uint16{104}
	tests := []struct {
		name    string
		specs   []string
		ports   []uint16
		exclude []string
		want    []string
	}{
		{"address", []string{"127.0.0.1"}, p104, nil, []string{"127.0.0.1:104"}},
		{"octet range", []string{"127.0.0.1-3"}, p104, nil, []string{"127.0.0.1:104", "127.0.0.2:104", "127.0.0.3:104"}},
		{"unmasked CIDR", []string{"127.0.0.5/31"}, p104, nil, []string{"127.0.0.4:104", "127.0.0.5:104"}},
		{"overlap merged", []string{"127.0.0.0/31", "127.0.0.1-127.0.0.2"}, []uint16{4242, 104, 104}, nil, []string{
			"127.0.0.0:104", "127.0.0.0:4242", "127.0.0.1:104", "127.0.0.1:4242", "127.0.0.2:104", "127.0.0.2:4242"}},
		{"host:port only", []string{"[::1]:104", "127.0.0.1:11112"}, nil, nil, []string{"127.0.0.1:11112", "[::1]:104"}},
		{"IPv4-mapped", []string{"::ffff:127.0.0.1", "[::ffff:127.0.0.2]:4242"}, p104, nil, []string{"127.0.0.1:104", "127.0.0.2:4242"}},
		{"IPv4-mapped CIDR", []string{"::ffff:127.0.0.0/127"}, p104, nil, []string{"127.0.0.0:104", "127.0.0.1:104"}},
		{"IPv4-mapped range", []string{"::ffff:127.0.0.0-::ffff:127.0.0.1"}, p104, nil, []string{"127.0.0.0:104", "127.0.0.1:104"}},
		{"IPv6 range", []string{"fe80::fe-fe80::101"}, p104, nil, []string{"[fe80::fe]:104", "[fe80::ff]:104", "[fe80::100]:104", "[fe80::101]:104"}},
		{"IPv4 before IPv6", []string{"::1", "127.0.0.1"}, p104, nil, []string{"127.0.0.1:104", "[::1]:104"}},
		{"zone", []string{"fe80::1%lo", "[fe80::1%br-lan]:4242"}, p104, nil, []string{"[fe80::1%lo]:104", "[fe80::1%br-lan]:4242"}},
		{"zone twice", []string{"[fe80::1%lo]:104", "fe80::1%lo", "fe80::1%lo"}, p104, nil, []string{"[fe80::1%lo]:104"}},
		{"hostname twice", []string{"pacs.test:104", "pacs.test", "127.0.0.10:104"}, p104, nil, []string{"127.0.0.10:104 (pacs.test)"}},
		{"hostname and zone", []string{"pacs.test", "fe80::1%lo", "127.0.0.0/30"}, []uint16{104, 4242}, nil, []string{
			"127.0.0.0:104", "127.0.0.0:4242", "127.0.0.1:104", "127.0.0.1:4242", "127.0.0.2:104", "127.0.0.2:4242", "127.0.0.3:104", "127.0.0.3:4242",
			"127.0.0.10:104 (pacs.test)", "127.0.0.10:4242 (pacs.test)", "[fe80::1%lo]:104", "[fe80::1%lo]:4242"}},
		{"hostname", []string{"pacs.test"}, []uint16{104, 4242}, nil, []string{"127.0.0.10:104 (pacs.test)", "127.0.0.10:4242 (pacs.test)"}},
		{"hostname two families", []string{"dual.test"}, p104, nil, []string{"127.0.0.20:104 (dual.test)", "[::1]:104 (dual.test)"}},
		{"hostname mapped", []string{"mapped.test:104"}, nil, nil, []string{"127.0.0.30:104 (mapped.test)"}},
		{"hostname in range keeps host", []string{"127.0.0.9-127.0.0.11", "pacs.test"}, p104, nil, []string{
			"127.0.0.9:104", "127.0.0.11:104", "127.0.0.10:104 (pacs.test)"}},
		{"host:port inside range", []string{"pacs.test:104", "127.0.0.10"}, p104, nil, []string{"127.0.0.10:104"}},
		{"host:port other port", []string{"pacs.test:4242", "127.0.0.10"}, p104, nil, []string{"127.0.0.10:104", "127.0.0.10:4242 (pacs.test)"}},
		{"first hostname wins", []string{"pacs.test.", "pacs.test"}, p104, nil, []string{"127.0.0.10:104 (pacs.test.)"}},
		{"duplicates", []string{"127.0.0.1", "127.0.0.1", "127.0.0.1:104", "[::ffff:127.0.0.1]:104"}, p104, nil, []string{"127.0.0.1:104"}},
		{"exclude", []string{"127.0.0.0/29"}, p104, []string{"127.0.0.2", "127.0.0.4-127.0.0.5", "::ffff:127.0.0.7"}, []string{
			"127.0.0.0:104", "127.0.0.1:104", "127.0.0.3:104", "127.0.0.6:104"}},
		{"exclude beats explicit", []string{"127.0.0.1:104", "pacs.test", "fe80::1%lo"}, p104, []string{"127.0.0.0/8", "fe80::1"}, nil},
		{"exclude all", []string{"127.0.0.0/24"}, p104, []string{"127.0.0.0-127.0.0.255"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, tt.specs, Options{Ports: tt.ports, Exclude: tt.exclude})
			if got := list(s); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if got, want := s.Len(), uint64(len(tt.want)); got != want {
				t.Errorf("Len() = %d, want %d", got, want)
			}
			if got := s.At(s.Len()); got != (Target{}) {
				t.Errorf("At(Len()) = %v, want zero", got)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	p104 := []uint16{104}
	everything := []string{"::/0", "0.0.0.0/0"} // and every reserved block: 2^128 addresses
	for _, p := range reservedPrefixes() {
		everything = append(everything, p.String())
	}
	tests := []struct {
		specs   []string
		ports   []uint16
		exclude []string
		want    string
	}{
		{nil, p104, nil, "targets: no targets"},
		{[]string{""}, p104, nil, `targets: bad target "": empty`},
		{[]string{"10.0.0.300"}, p104, nil, `targets: bad target "10.0.0.300": `},
		{[]string{"10.0.0.0/33"}, p104, nil, `targets: bad target "10.0.0.0/33": `},
		{[]string{"10.0.0/8"}, p104, nil, `targets: bad target "10.0.0/8": `},
		{[]string{"10.0.0.50-10.0.0.1"}, p104, nil, `targets: bad target "10.0.0.50-10.0.0.1": range ends before it starts`},
		{[]string{"10.0.0.50-1"}, p104, nil, `targets: bad target "10.0.0.50-1": range ends before it starts`},
		{[]string{"10.0.0.1-10.0.0.256"}, p104, nil, `targets: bad target "10.0.0.1-10.0.0.256": `},
		{[]string{"10.0.0.1-::1"}, p104, nil, `targets: bad target "10.0.0.1-::1": range mixes IPv4 and IPv6`},
		{[]string{"::1-10.0.0.1"}, p104, nil, `range mixes IPv4 and IPv6`},
		{[]string{"fe80::1%lo-fe80::2"}, p104, nil, `a range has no zone`},
		{[]string{"::%:"}, p104, nil, `targets: bad target "::%:": bad zone ":"`},
		{[]string{"fe80::1%a]"}, p104, nil, `targets: bad target "fe80::1%a]": bad zone "a]"`},
		{[]string{"[fe80::1%a/b]:104"}, p104, nil, `targets: bad target "[fe80::1%a/b]:104": bad zone "a/b"`},
		{[]string{"127.0.0.1:0"}, nil, nil, `targets: bad target "127.0.0.1:0": port 0 out of range 1-65535`},
		{[]string{"127.0.0.1:65536"}, nil, nil, `targets: bad target "127.0.0.1:65536": port 65536 out of range 1-65535`},
		{[]string{"127.0.0.1:dicom"}, nil, nil, `port "dicom" is not a number`},
		{[]string{"[::1]"}, nil, nil, `targets: bad target "[::1]": address [::1]: missing port in address`},
		{[]string{"127.0.0.0/24:104"}, nil, nil, `targets: bad target "127.0.0.0/24:104": want an address or hostname before the port`},
		{[]string{"127.0.0.300:104"}, nil, nil, `targets: bad target "127.0.0.300:104": `},
		{[]string{"pacs..test"}, p104, nil, `targets: bad target "pacs..test": not an address, CIDR, range, hostname or host:port`},
		{[]string{"-pacs.test"}, p104, nil, `not an address`},
		{[]string{"pacs test"}, p104, nil, `not an address`},
		{[]string{"nosuch.test"}, p104, nil, `targets: resolve "nosuch.test": lookup nosuch.test: no such host`},
		{[]string{"empty.test"}, p104, nil, `targets: resolve "empty.test": no addresses`},
		{[]string{"127.0.0.1"}, nil, nil, `targets: empty port list for target "127.0.0.1"`},
		{[]string{"127.0.0.1"}, []uint16{0, 104}, nil, `targets: port 0 in port list`},
		{[]string{"127.0.0.1"}, p104, []string{"pacs.test"}, `targets: bad exclusion "pacs.test": want an address, CIDR or range`},
		{[]string{"127.0.0.1"}, p104, []string{"127.0.0.1:104"}, `targets: bad exclusion "127.0.0.1:104": an exclusion has no port`},
		{[]string{"127.0.0.1"}, p104, []string{"127.0.0.9-127.0.0.1"}, `targets: bad exclusion "127.0.0.9-127.0.0.1": range ends`},
		{[]string{"2001:db8::/32"}, p104, nil, `targets: target space too large: 79228162514264337593543950336 addresses × 1 ports is more than 2^48 pairs; split it`},
		{[]string{"::/0"}, p104, nil, `targets: target space too large: `},
		{everything, p104, nil, `targets: target space too large: 2^128 or more addresses`},
		{[]string{"10.0.0.0/8"}, []uint16{1, 2, 3}, []string{}, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.specs, ","), func(t *testing.T) {
			_, err := Parse(context.Background(), tt.specs, Options{Ports: tt.ports, Exclude: tt.exclude, Resolve: fakeResolve})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got error %v, want none", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			if got := err.Error(); !strings.HasPrefix(got, tt.want) && !strings.Contains(got, tt.want) {
				t.Errorf("got %q, want it to contain %q", got, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans lines", err)
			}
			if got, want := errors.Is(err, ErrTooLarge), strings.Contains(tt.want, "too large"); got != want {
				t.Errorf("errors.Is(err, ErrTooLarge) = %v, want %v", got, want)
			}
		})
	}
}

// TestParseCompact checks that memory follows the targets, not the pairs.
func TestParseCompact(t *testing.T) {
	all, err := ParsePorts("1-65535")
	if err != nil {
		t.Fatal(err)
	}
	s := mustParse(t, []string{"pacs.test", "dual.test", "fe80::1%lo", "0.0.0.0/0"}, Options{Ports: all})
	if got, want := len(s.extra)+len(s.pairs), 4; got != want {
		t.Errorf("got %d addresses and pairs kept apart, want %d", got, want)
	}
	if got, want := len(s.spans), 13; got != want { // the gaps between IPv4 reserved blocks
		t.Errorf("got %d spans, want %d", got, want)
	}
	if got, want := s.Len(), uint64(3_702_258_432+4)*65535; got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
	if got, want := s.At(s.Len()-1).String(), "[fe80::1%lo]:65535"; got != want {
		t.Errorf("last target %s, want %s", got, want)
	}
}

func TestParseCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Parse(ctx, []string{"pacs.test"}, Options{Ports: []uint16{104}, Resolve: fakeResolve})
	if got, want := err, context.Canceled; !errors.Is(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestReservedRule(t *testing.T) {
	tests := []struct {
		specs  []string
		target string
		want   bool
	}{
		{[]string{"0.0.0.0/0"}, "10.1.2.3:104", false},
		{[]string{"0.0.0.0/0"}, "127.0.0.1:104", false},
		{[]string{"0.0.0.0/0"}, "0.0.0.0:104", false},
		{[]string{"0.0.0.0/0"}, "100.64.0.1:104", false},
		{[]string{"0.0.0.0/0"}, "169.254.1.1:104", false},
		{[]string{"0.0.0.0/0"}, "172.31.255.255:104", false},
		{[]string{"0.0.0.0/0"}, "192.168.1.5:104", false},
		{[]string{"0.0.0.0/0"}, "198.19.0.1:104", false},
		{[]string{"0.0.0.0/0"}, "224.0.0.1:104", false},
		{[]string{"0.0.0.0/0"}, "255.255.255.255:104", false},
		{[]string{"0.0.0.0/0"}, "9.255.255.255:104", true},
		{[]string{"0.0.0.0/0"}, "11.0.0.0:104", true},
		{[]string{"0.0.0.0/0"}, "172.32.0.0:104", true},
		{[]string{"0.0.0.0/0"}, "223.255.255.255:104", true},
		{[]string{"127.0.0.1"}, "127.0.0.1:104", true},
		{[]string{"127.1.0.0/16"}, "127.1.2.3:104", true},
		{[]string{"10.0.0.0/8"}, "10.1.2.3:104", true},
		{[]string{"192.168.1.5:4242"}, "192.168.1.5:4242", true},
		{[]string{"0.0.0.0/0", "127.0.0.1"}, "127.0.0.1:104", true},
		{[]string{"0.0.0.0/0", "127.0.0.1"}, "127.0.0.2:104", false},
		{[]string{"127.0.0.0/7"}, "127.0.0.1:104", false},
		{[]string{"127.0.0.0/7"}, "126.0.0.1:104", true},
		{[]string{"9.0.0.0-11.255.255.255"}, "10.0.0.1:104", false},
		{[]string{"9.0.0.0-11.255.255.255"}, "9.1.1.1:104", true},
		{[]string{"240.0.0.0/4"}, "240.0.0.1:104", true},
		{[]string{"240.0.0.0/4"}, "255.255.255.255:104", false}, // a nested block
		{[]string{"255.255.255.255"}, "255.255.255.255:104", true},
		{[]string{"::ffff:0:0/96"}, "127.0.0.1:104", false},
		{[]string{"::ffff:0:0/96"}, "8.8.8.8:104", true},
		{[]string{"::/127"}, "[::1]:104", false},
		{[]string{"::1"}, "[::1]:104", true},
		{[]string{"64:ff9b::/120"}, "[64:ff9b::1]:104", true},
		{[]string{"2001:db8::/120"}, "[2001:db8::1]:104", true},
		{[]string{"2001:db8::/120", "dual.test"}, "[::1]:104", true},
		{[]string{"fd00::/120"}, "[fd00::1]:104", true},
		{[]string{"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ff00-fc00::ff"}, "[fc00::1]:104", false},
		{[]string{"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ff00-fc00::ff"}, "[fbff:ffff:ffff:ffff:ffff:ffff:ffff:ff01]:104", true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.specs, ",")+"/"+tt.target, func(t *testing.T) {
			s := mustParse(t, tt.specs, Options{Ports: []uint16{104}})
			ap := netip.MustParseAddrPort(tt.target)
			if got := has(s, Target{Addr: ap.Addr(), Port: ap.Port()}); got != tt.want {
				t.Errorf("%s in space: got %v, want %v", tt.target, got, tt.want)
			}
		})
	}
}

func TestReservedTable(t *testing.T) {
	ps := reservedPrefixes()
	for _, p := range ps {
		if !p.IsValid() || p != p.Masked() || p.Addr().Zone() != "" {
			t.Errorf("reserved prefix %v is not a valid masked prefix", p)
		}
	}
	ivs := reservedIvals()
	if got, want := len(ivs), len(ps); got != want {
		t.Fatalf("got %d intervals, want %d", got, want)
	}
	for i := 1; i < len(ivs); i++ {
		if ivs[i].lo.Less(ivs[i-1].lo) {
			t.Errorf("reserved intervals unsorted at %d: %v before %v", i, ivs[i-1].lo, ivs[i].lo)
		}
	}
	// 0.0.0.0/0 minus the IPv4 blocks: 2^32 minus their union.
	s := mustParse(t, []string{"0.0.0.0/0"}, Options{Ports: []uint16{104}})
	if got, want := s.Len(), uint64(3_702_258_432); got != want {
		t.Errorf("0.0.0.0/0 without reserved blocks: got %d addresses, want %d", got, want)
	}
}

func TestPrefixIval(t *testing.T) {
	tests := []struct{ prefix, lo, hi string }{
		{"0.0.0.0/0", "0.0.0.0", "255.255.255.255"},
		{"127.0.0.1/32", "127.0.0.1", "127.0.0.1"},
		{"10.1.2.3/8", "10.0.0.0", "10.255.255.255"},
		{"::/0", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"2001:db8::/64", "2001:db8::", "2001:db8::ffff:ffff:ffff:ffff"},
		{"2001:db8::/63", "2001:db8::", "2001:db8:0:1:ffff:ffff:ffff:ffff"},
		{"2001:db8::/65", "2001:db8::", "2001:db8::7fff:ffff:ffff:ffff"},
		{"::1/128", "::1", "::1"},
	}
	for _, tt := range tests {
		got := prefixIval(netip.MustParsePrefix(tt.prefix))
		if want := (ival{netip.MustParseAddr(tt.lo), netip.MustParseAddr(tt.hi)}); got != want {
			t.Errorf("prefixIval(%s) = %v-%v, want %v-%v", tt.prefix, got.lo, got.hi, want.lo, want.hi)
		}
	}
}

func TestSubtract(t *testing.T) {
	iv := func(lo, hi string) ival { return ival{netip.MustParseAddr(lo), netip.MustParseAddr(hi)} }
	tests := []struct {
		name            string
		ivs, cuts, want []ival
	}{
		{"none", []ival{iv("127.0.0.0", "127.0.0.9")}, nil, []ival{iv("127.0.0.0", "127.0.0.9")}},
		{"middle", []ival{iv("127.0.0.0", "127.0.0.9")}, []ival{iv("127.0.0.3", "127.0.0.4")}, []ival{iv("127.0.0.0", "127.0.0.2"), iv("127.0.0.5", "127.0.0.9")}},
		{"ends", []ival{iv("127.0.0.0", "127.0.0.9")}, []ival{iv("126.0.0.0", "127.0.0.0"), iv("127.0.0.9", "128.0.0.0")}, []ival{iv("127.0.0.1", "127.0.0.8")}},
		{"all", []ival{iv("127.0.0.0", "127.0.0.9"), iv("127.0.0.20", "127.0.0.29")}, []ival{iv("127.0.0.0", "127.0.0.255")}, nil},
		{"spanning cut", []ival{iv("127.0.0.0", "127.0.0.9"), iv("127.0.0.20", "127.0.0.29")}, []ival{iv("127.0.0.5", "127.0.0.25")}, []ival{iv("127.0.0.0", "127.0.0.4"), iv("127.0.0.26", "127.0.0.29")}},
		{"families apart", []ival{iv("0.0.0.0", "255.255.255.255"), iv("::", "::ff")}, []ival{iv("::", "::1")}, []ival{iv("0.0.0.0", "255.255.255.255"), iv("::2", "::ff")}},
		{"top of space", []ival{iv("255.255.255.0", "255.255.255.255")}, []ival{iv("255.255.255.255", "255.255.255.255")}, []ival{iv("255.255.255.0", "255.255.255.254")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := subtract(tt.ivs, tt.cuts); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	// Nested cuts, as among the reserved blocks.
	got := appendMinus(nil, iv("240.0.0.0", "255.255.255.255"), []ival{iv("240.0.0.0", "255.255.255.254"), iv("255.255.255.255", "255.255.255.255")})
	if len(got) != 0 {
		t.Errorf("nested cuts: got %v, want nothing", got)
	}
	got = appendMinus(nil, iv("127.0.0.0", "127.0.0.9"), []ival{iv("127.0.0.1", "127.0.0.5"), iv("127.0.0.2", "127.0.0.3"), iv("127.0.0.7", "127.0.0.7")})
	if want := []ival{iv("127.0.0.0", "127.0.0.0"), iv("127.0.0.6", "127.0.0.6"), iv("127.0.0.8", "127.0.0.9")}; !slices.Equal(got, want) {
		t.Errorf("nested cuts: got %v, want %v", got, want)
	}
}

func TestTargetString(t *testing.T) {
	tests := []struct {
		t    Target
		want string
	}{
		{Target{Addr: netip.MustParseAddr("127.0.0.1"), Port: 104}, "127.0.0.1:104"},
		{Target{Addr: netip.MustParseAddr("::1"), Port: 104}, "[::1]:104"},
		{Target{Addr: netip.MustParseAddr("fe80::1%lo"), Port: 11112, Host: "pacs.test"}, "[fe80::1%lo]:11112"},
	}
	for _, tt := range tests {
		if got := tt.t.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.t, got, tt.want)
		}
	}
}

func TestParsePorts(t *testing.T) {
	tests := []struct {
		in      string
		want    []uint16
		wantErr string
	}{
		{DefaultPorts, []uint16{104, 2761, 2762, 4242, 11112}, ""},
		{"100-103, 102,1", []uint16{1, 100, 101, 102, 103}, ""},
		{"65535", []uint16{65535}, ""},
		{"65534-65535", []uint16{65534, 65535}, ""},
		{"7-7", []uint16{7}, ""},
		{"", nil, "targets: empty port list"},
		{"  ", nil, "targets: empty port list"},
		{"0", nil, `targets: bad port list "0": port 0 out of range 1-65535`},
		{"104,65536", nil, `targets: bad port list "104,65536": port 65536 out of range 1-65535`},
		{"99999999999999999999", nil, `port 99999999999999999999 out of range`},
		{"110-100", nil, `targets: bad port list "110-100": range "110-100" ends before it starts`},
		{"104,,4242", nil, `targets: bad port list "104,,4242": port "" is not a number`},
		{"104,", nil, `port "" is not a number`},
		{"-5", nil, `port "" is not a number`},
		{"1-2-3", nil, `port "2-3" is not a number`},
		{"dicom", nil, `port "dicom" is not a number`},
		{"+104", nil, `port "+104" is not a number`},
	}
	for _, tt := range tests {
		got, err := ParsePorts(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParsePorts(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParsePorts(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	all, err := ParsePorts("1-65535")
	if err != nil || len(all) != 65535 || all[0] != 1 || all[65534] != 65535 {
		t.Errorf("ParsePorts(1-65535) = %d ports, %v", len(all), err)
	}
}

func TestParseShard(t *testing.T) {
	tests := []struct {
		in      string
		i, n    uint64
		wantErr string
	}{
		{"0/1", 0, 1, ""},
		{"2/3", 2, 3, ""},
		{"18446744073709551614/18446744073709551615", 1<<64 - 2, 1<<64 - 1, ""},
		{"3/2", 0, 0, `targets: bad shard "3/2": shards of 2 are numbered 0 to 1`},
		{"2/2", 0, 0, `shards of 2 are numbered 0 to 1`},
		{"0/0", 0, 0, `targets: bad shard "0/0": no shards`},
		{"a/b", 0, 0, `targets: bad shard "a/b": want I/N, such as 0/4`},
		{"1", 0, 0, `targets: bad shard "1": want I/N`},
		{"", 0, 0, `targets: bad shard "": want I/N`},
		{"-1/2", 0, 0, `want I/N`},
		{"1/2/3", 0, 0, `want I/N`},
		{" 1/2", 0, 0, `want I/N`},
	}
	for _, tt := range tests {
		i, n, err := ParseShard(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseShard(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || i != tt.i || n != tt.n {
			t.Errorf("ParseShard(%q) = %d, %d, %v; want %d, %d", tt.in, i, n, err, tt.i, tt.n)
		}
	}
}

func TestReadList(t *testing.T) {
	long := strings.Repeat("a", maxLine+1)
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr string
	}{
		{"comments", "# PACS of the lab\n127.0.0.1\n\n   \n  127.0.0.2  # inline\n127.0.0.3 \t127.0.0.4\r\n#127.0.0.5\n[::1]:104", []string{
			"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "[::1]:104"}, ""},
		{"byte order mark", "\uFEFF127.0.0.1\r\npacs.test:4242\r\n", []string{"127.0.0.1", "pacs.test:4242"}, ""},
		{"no final newline", "127.0.0.0/8", []string{"127.0.0.0/8"}, ""},
		{"empty", "# nothing\n\n", nil, ""},
		{"bad line", "127.0.0.1\n# comment\n10.0.0.300\n127.0.0.2\n", nil, `targets.txt:3: bad target "10.0.0.300": `},
		{"bad second entry", "127.0.0.1 127.0.0.9-127.0.0.1\n", nil, `targets.txt:1: bad target "127.0.0.9-127.0.0.1": range ends before it starts`},
		{"long line", "127.0.0.1\n" + long + "\n", nil, `targets.txt:2: line longer than 65536 bytes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadList(strings.NewReader(tt.in), "targets.txt")
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want prefix %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	_, err := ReadList(iotest.ErrReader(errors.New("disk on fire")), "stdin")
	if got, want := err.Error(), "read stdin: disk on fire"; got != want {
		t.Errorf("read error: got %q, want %q", got, want)
	}
}
