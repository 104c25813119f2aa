package sqlite

import (
	"bytes"
	"net/netip"
	"testing"
)

// FuzzParseIPKey reads the ip column as a damaged database could hold it.
func FuzzParseIPKey(f *testing.F) {
	f.Add([]byte{4, 127, 0, 0, 1})
	f.Add(ipKey(netip.MustParseAddr("::1")))
	f.Add(append(ipKey(netip.MustParseAddr("::1")), "lo"...))
	f.Add([]byte{6, 1, 2})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, ok := parseIPKey(b)
		if !ok {
			return
		}
		if got := ipKey(a); !bytes.Equal(got, b) {
			t.Fatalf("ipKey(parseIPKey(%x)) = %x", b, got)
		}
	})
}
