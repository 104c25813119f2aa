package store

import "net/netip"

// IPKey encodes ip as the SQL backends key results by it, so that keys sort byte by byte as
// netip.Addr.Compare orders addresses: IPv4 as 0x04 and 4 bytes, before IPv6 as 0x06, 16 bytes,
// then the zone.
func IPKey(ip netip.Addr) []byte {
	if ip.Is4() {
		a := ip.As4()
		return append([]byte{4}, a[:]...)
	}
	a := ip.As16()
	return append(append([]byte{6}, a[:]...), ip.Zone()...)
}

// ParseIPKey decodes IPKey's encoding; false for bytes it cannot have made.
func ParseIPKey(b []byte) (netip.Addr, bool) {
	switch {
	case len(b) == 5 && b[0] == 4:
		return netip.AddrFrom4([4]byte(b[1:])), true
	case len(b) >= 17 && b[0] == 6:
		return netip.AddrFrom16([16]byte(b[1:17])).WithZone(string(b[17:])), true
	}
	return netip.Addr{}, false
}
