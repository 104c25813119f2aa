package targets

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// FuzzParse reads a target list, a port list and exclusions as the CLI would.
// Whatever it parses must hold: each pair lies inside some target, obeys the
// reserved rule and the exclusions, prints as a host:port that parses back to
// itself, and a small space is visited exactly once by Order.
func FuzzParse(f *testing.F) {
	f.Add("127.0.0.1", DefaultPorts, "")
	f.Add("127.0.0.0/30 [::1]:104 pacs.test", "104", "127.0.0.1")
	f.Add("# lab\n127.0.0.1-50\nfe80::1-fe80::ff # link\n", "104,4242", "127.0.0.0/30,fe80::7")
	f.Add("::ffff:127.0.0.1/127\n::ffff:127.0.0.9-::ffff:127.0.0.12", "1-3", "")
	f.Add("0.0.0.0/0 127.0.0.1", "104", "11.0.0.0/8")
	f.Add("dual.test:4242 mapped.test pacs.test. nosuch.test", "104", "::1")
	f.Add("2001:db8::/32", "104", "")
	f.Add("fe80::1%lo [fe80::2%eth0]:104 fe80::1%lo-fe80::2", "104", "")
	f.Add("240.0.0.0/4", "104", "")
	f.Add("\uFEFF127.0.0.1\r\n[::ffff:127.0.0.1]:11112", "11112", "127.0.0.2-3")
	f.Fuzz(func(t *testing.T, list, portList, exclude string) {
		specs, err := ReadList(strings.NewReader(list), "fuzz")
		if err != nil || len(specs) == 0 {
			return
		}
		ports, _ := ParsePorts(portList)
		var excl []string
		if exclude != "" {
			excl = strings.Split(exclude, ",")
		}
		s, err := Parse(context.Background(), specs, Options{Ports: ports, Exclude: excl, Resolve: fakeResolve})
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q spans lines", err)
			}
			return
		}
		var exIvs []ival
		for _, e := range excl {
			sp, err := parseSpec(e, true)
			if err != nil {
				t.Fatalf("Parse accepted exclusion %q: %v", e, err)
			}
			exIvs = append(exIvs, ival{sp.lo, sp.hi})
		}
		check := func(tg Target) {
			t.Helper()
			if !tg.Addr.IsValid() || tg.Port == 0 {
				t.Fatalf("invalid target %#v", tg)
			}
			a := tg.Addr.WithZone("")
			for _, e := range exIvs {
				if !a.Less(e.lo) && !e.hi.Less(a) {
					t.Fatalf("target %v is excluded by %v-%v", tg, e.lo, e.hi)
				}
			}
			if !fromInput(tg, specs, ports) {
				t.Fatalf("target %v (host %q) is in no target of %q that allows it", tg, tg.Host, specs)
			}
			back, err := parseSpec(tg.String(), false)
			if err != nil || back.lo != tg.Addr || back.port != tg.Port {
				t.Fatalf("%v does not parse back: %+v, %v", tg, back, err)
			}
		}
		n := s.Len()
		for _, i := range []uint64{0, n / 3, n / 2, n - 1} {
			if i < n {
				check(s.At(i))
			}
		}
		if n > 4096 {
			return
		}
		seen := make(map[Target]bool)
		it := s.Order(uint64(len(list)), 0, 1)
		for {
			tg, _, ok := it.Next()
			if !ok {
				break
			}
			if seen[tg] {
				t.Fatalf("target %v twice", tg)
			}
			seen[tg] = true
			check(tg)
		}
		if got := uint64(len(seen)); got != n {
			t.Fatalf("iterated %d targets, Len() = %d", got, n)
		}
	})
}

// fromInput reports whether some spec yields tg under the reserved rule.
func fromInput(tg Target, specs []string, ports []uint16) bool {
	reserved := reservedIvals()
	for _, str := range specs {
		sp, err := parseSpec(str, false)
		if err != nil {
			continue
		}
		if sp.port != 0 && tg.Port != sp.port {
			continue
		}
		if _, ok := slices.BinarySearch(ports, tg.Port); sp.port == 0 && !ok {
			continue
		}
		if sp.host != "" {
			addrs, _ := fakeResolve(context.Background(), sp.host)
			for _, a := range addrs {
				if unmap(a) == tg.Addr && (tg.Host == "" || tg.Host == sp.host) {
					return true
				}
			}
			continue
		}
		if tg.Host != "" {
			continue
		}
		if sp.lo.Zone() != "" {
			if sp.lo == tg.Addr {
				return true
			}
			continue
		}
		if tg.Addr.Less(sp.lo) || sp.hi.Less(tg.Addr) {
			continue
		}
		ok := true
		for _, r := range reserved {
			if !tg.Addr.Less(r.lo) && !r.hi.Less(tg.Addr) && !r.contains(ival{sp.lo, sp.hi}) {
				ok = false // a reserved block the spec does not lie inside
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// FuzzParsePorts checks that a parsed port list prints and parses back to
// itself.
func FuzzParsePorts(f *testing.F) {
	for _, s := range []string{DefaultPorts, "100-110,104", "1-65535", "0", "65536", "5-1", " 7 , 8-9 ", "1,,2", "-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ports, err := ParsePorts(s)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q spans lines", err)
			}
			return
		}
		if len(ports) == 0 || !slices.IsSorted(ports) || ports[0] == 0 || len(slices.Compact(slices.Clone(ports))) != len(ports) {
			t.Fatalf("ParsePorts(%q) = %v: want distinct ascending ports from 1", s, ports)
		}
		strs := make([]string, len(ports))
		for i, p := range ports {
			strs[i] = fmt.Sprint(p)
		}
		again, err := ParsePorts(strings.Join(strs, ","))
		if err != nil || !slices.Equal(again, ports) {
			t.Fatalf("round trip of %v: %v, %v", ports, again, err)
		}
	})
}

// FuzzParseShard checks that a parsed shard is in range and prints and parses
// back to itself.
func FuzzParseShard(f *testing.F) {
	for _, s := range []string{"0/1", "3/4", "3/2", "a/b", "0/0", "1/2/3", "18446744073709551615/18446744073709551615"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		i, n, err := ParseShard(s)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q spans lines", err)
			}
			return
		}
		if i >= n {
			t.Fatalf("ParseShard(%q) = %d/%d", s, i, n)
		}
		i2, n2, err := ParseShard(fmt.Sprintf("%d/%d", i, n))
		if err != nil || i2 != i || n2 != n {
			t.Fatalf("round trip of %d/%d: %d/%d, %v", i, n, i2, n2, err)
		}
	})
}
