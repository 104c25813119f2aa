package targets

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxLine caps one line of a list file, in bytes.
const maxLine = 64 << 10

// spec is one parsed target or exclusion: the address interval [lo, hi]
// (lo == hi for one address, which alone may carry a zone), or a hostname.
type spec struct {
	lo, hi netip.Addr
	host   string
	port   uint16 // explicit port of a host:port, else 0
}

// parseSpec parses one target (see Parse) or, when exclusion is set, one
// exclusion: an address, CIDR prefix or range.
func parseSpec(s string, exclusion bool) (spec, error) {
	sp, err := parseSpec1(s, exclusion)
	if err != nil {
		what := "target"
		if exclusion {
			what = "exclusion"
		}
		if errors.Is(err, ErrLooksLikeFile) {
			return spec{}, fmt.Errorf("%s %w; to read targets from a file use -iL %s", quote(s), err, quote(s))
		}
		return spec{}, fmt.Errorf("bad %s %s: %w", what, quote(s), cleanNetip(err))
	}
	return sp, nil
}

// maxQuoted caps the bytes of a user's input that an error message repeats.
const maxQuoted = 100

// quote returns s quoted for an error message, cut to maxQuoted bytes.
func quote(s string) string {
	if len(s) > maxQuoted {
		cut := maxQuoted
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return fmt.Sprintf("%q… (%d bytes)", s[:cut], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// cleanNetip drops the Go function call that net/netip puts in front of its
// parse errors (`netip.ParsePrefix("x/40"): `), which says nothing to a user
// and repeats the input.
func cleanNetip(err error) error {
	msg := err.Error()
	for _, fn := range []string{"netip.ParsePrefix(", "ParseAddr(", "netip.ParseAddrPort("} {
		if strings.HasPrefix(msg, fn) {
			if i := strings.Index(msg, "): "); i >= 0 {
				return errors.New(msg[i+3:])
			}
		}
	}
	return err
}

func parseSpec1(s string, exclusion bool) (spec, error) {
	if s == "" {
		return spec{}, errors.New("empty")
	}
	// A zone may hold any byte; one with a colon is rather the end of a range
	// or of a host:port.
	a, aerr := netip.ParseAddr(s)
	if aerr == nil && !strings.Contains(a.Zone(), ":") {
		if !validZone(a.Zone()) {
			return spec{}, fmt.Errorf("bad zone %q", a.Zone())
		}
		a = unmap(a)
		if exclusion {
			a = a.WithZone("")
		}
		return spec{lo: a, hi: a}, nil
	}
	if strings.HasPrefix(s, "[") || strings.Count(s, ":") == 1 {
		if exclusion {
			return spec{}, errors.New("an exclusion has no port")
		}
		return parseHostPort(s)
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return spec{}, err
		}
		p = p.Masked()
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		v := prefixIval(p)
		return spec{lo: v.lo, hi: v.hi}, nil
	}
	if l, r, ok := strings.Cut(s, "-"); ok && looksIP(l) {
		return parseRange(l, r)
	}
	if looksIP(s) {
		if aerr == nil {
			return spec{}, fmt.Errorf("bad zone %q", a.Zone())
		}
		return spec{}, aerr
	}
	if exclusion {
		return spec{}, errors.New("want an address, CIDR or range")
	}
	if !validHostname(s) {
		return spec{}, errors.New("not an address, CIDR, range, hostname or host:port")
	}
	if err := checkNotFile(s); err != nil {
		return spec{}, err
	}
	return spec{host: s}, nil
}

// parseRange parses "first-last", where last may be a whole address or, for
// IPv4, the last octet alone (192.0.2.1-50, as in nmap).
func parseRange(l, r string) (spec, error) {
	lo, err := netip.ParseAddr(l)
	if err != nil {
		return spec{}, err
	}
	hi, err := netip.ParseAddr(r)
	if err != nil {
		n, nerr := strconv.ParseUint(r, 10, 8)
		if nerr != nil || !lo.Is4() {
			return spec{}, err
		}
		b := lo.As4()
		b[3] = byte(n)
		hi = netip.AddrFrom4(b)
	}
	if lo.Zone() != "" || hi.Zone() != "" {
		return spec{}, errors.New("a range has no zone")
	}
	if lo.Is4In6() && hi.Is4In6() {
		lo, hi = lo.Unmap(), hi.Unmap()
	}
	if lo.Is4() != hi.Is4() {
		return spec{}, errors.New("range mixes IPv4 and IPv6")
	}
	if hi.Less(lo) {
		return spec{}, errors.New("range ends before it starts")
	}
	return spec{lo: lo, hi: hi}, nil
}

func parseHostPort(s string) (spec, error) {
	host, ps, err := net.SplitHostPort(s)
	if err != nil {
		return spec{}, err
	}
	port, err := parsePort(ps)
	if err != nil {
		return spec{}, err
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if !validZone(a.Zone()) {
			return spec{}, fmt.Errorf("bad zone %q", a.Zone())
		}
		a = unmap(a)
		return spec{lo: a, hi: a, port: port}, nil
	} else if looksIP(host) {
		return spec{}, err
	}
	if !validHostname(host) {
		return spec{}, errors.New("want an address or hostname before the port")
	}
	if err := checkNotFile(host); err != nil {
		return spec{}, err
	}
	return spec{host: host, port: port}, nil
}

// looksIP reports whether s can only be meant as an IP address: it has a colon
// (no hostname does) or only digits and dots (no top-level domain is numeric).
func looksIP(s string) bool {
	if strings.Contains(s, ":") {
		return true
	}
	return s != "" && strings.Trim(s, "0123456789.") == ""
}

// validHostname reports whether s is a DNS name (RFC 1123 §2.1, underscores
// allowed), with an optional trailing dot.
func validHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
			if !ok {
				return false
			}
		}
	}
	return true
}

// validZone reports whether z is empty or an interface name or index made
// of letters, digits, '.', '_' and '-'.
func validZone(z string) bool {
	for _, c := range []byte(z) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func parsePort(s string) (uint16, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("port %q is not a number", s)
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %s out of range 1-65535", s)
	}
	return uint16(n), nil
}

// ParsePorts parses a port list such as "104,11112,4242" or "100-110,104":
// comma-separated ports and inclusive ranges, each in 1-65535. It returns the
// distinct ports in ascending order.
func ParsePorts(s string) ([]uint16, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("targets: empty port list")
	}
	var set [1 << 16]bool
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		l, r, isRange := strings.Cut(part, "-")
		lo, err := parsePort(strings.TrimSpace(l))
		if err != nil {
			return nil, fmt.Errorf("targets: bad port list %q: %w", s, err)
		}
		hi := lo
		if isRange {
			if hi, err = parsePort(strings.TrimSpace(r)); err != nil {
				return nil, fmt.Errorf("targets: bad port list %q: %w", s, err)
			}
			if hi < lo {
				return nil, fmt.Errorf("targets: bad port list %q: range %q ends before it starts", s, part)
			}
		}
		for p := int(lo); p <= int(hi); p++ {
			set[p] = true
		}
	}
	var ports []uint16
	for p, ok := range set {
		if ok {
			ports = append(ports, uint16(p))
		}
	}
	return ports, nil
}

// ParseShard parses the --shard value "I/N": shard I (counted from 0) of N.
func ParseShard(s string) (i, n uint64, err error) {
	l, r, ok := strings.Cut(s, "/")
	if ok {
		var err1, err2 error
		i, err1 = strconv.ParseUint(l, 10, 64)
		n, err2 = strconv.ParseUint(r, 10, 64)
		ok = err1 == nil && err2 == nil
	}
	switch {
	case !ok:
		return 0, 0, fmt.Errorf("targets: bad shard %q: want I/N, such as 0/4", s)
	case n == 0:
		return 0, 0, fmt.Errorf("targets: bad shard %q: no shards", s)
	case i >= n:
		return 0, 0, fmt.Errorf("targets: bad shard %q: shards of %d are numbered 0 to %d", s, n, n-1)
	}
	return i, n, nil
}

// ReadList reads a target list (-iL) or exclusion list (--exclude-file):
// entries separated by white space or newlines, '#' to the end of a line a
// comment. name labels errors ("targets.txt:3: bad target ...") and is the
// file name, or "stdin" for "-". Each entry is checked as a target; Parse
// checks exclusions further.
func ReadList(r io.Reader, name string) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	line := 0
	for sc.Scan() {
		line++
		text, _, _ := strings.Cut(sc.Text(), "#")
		if line == 1 {
			text = strings.TrimPrefix(text, "\uFEFF") // byte order mark
		}
		for f := range strings.FieldsSeq(text) {
			if _, err := parseSpec(f, false); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", name, line, err)
			}
			out = append(out, f)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s:%d: line longer than %d bytes", name, line+1, maxLine)
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, err // it names the file already: "read FILE: is a directory"
		}
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return out, nil
}
