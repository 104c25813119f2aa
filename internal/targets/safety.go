package targets

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// Digest returns a hex SHA-256 of the space's parts in canonical form: the
// address spans, the hostnames' and zoned addresses, the ports and the
// host:port pairs. Two spaces with the same Digest hold the same pairs in
// the same index order, so a permutation position means the same target in
// both (what --resume relies on). Hostnames are left out: only what they
// resolved to counts.
func (s *Space) Digest() string {
	h := sha256.New()
	var b [8]byte
	num := func(n uint64) {
		binary.BigEndian.PutUint64(b[:], n)
		h.Write(b[:])
	}
	addr := func(tag byte, a []byte, zone string) {
		h.Write([]byte{tag, byte(len(a))})
		h.Write(a)
		num(uint64(len(zone)))
		h.Write([]byte(zone))
	}
	num(uint64(len(s.spans)))
	for k, sp := range s.spans {
		a, _ := sp.lo.MarshalBinary()
		addr('s', a, "")
		end := s.naddr
		if k+1 < len(s.spans) {
			end = s.spans[k+1].cum
		}
		num(end - sp.cum)
	}
	num(uint64(len(s.extra)))
	for _, t := range s.extra {
		addr('e', t.Addr.WithZone("").AsSlice(), t.Addr.Zone())
	}
	num(uint64(len(s.ports)))
	for _, p := range s.ports {
		num(uint64(p))
	}
	num(uint64(len(s.pairs)))
	for _, t := range s.pairs {
		addr('p', t.Addr.WithZone("").AsSlice(), t.Addr.Zone())
		num(uint64(t.Port))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Public reports whether the space holds an address outside the reserved
// blocks (see Parse): one the public internet routes. A scan of such a
// space can reach hosts that nobody here owns.
func (s *Space) Public() bool {
	reserved := merge(reservedIvals())
	for k, sp := range s.spans {
		end := s.naddr
		if k+1 < len(s.spans) {
			end = s.spans[k+1].cum
		}
		v := ival{sp.lo, addOffset(sp.lo, end-sp.cum-1)}
		if len(subtract([]ival{v}, reserved)) > 0 {
			return true
		}
	}
	public := func(t Target) bool { return !containsAddr(reserved, t.Addr.WithZone("")) }
	for _, t := range s.extra {
		if public(t) {
			return true
		}
	}
	for _, t := range s.pairs {
		if public(t) {
			return true
		}
	}
	return false
}

// ErrLooksLikeFile reports a target that names a file rather than a host.
var ErrLooksLikeFile = errors.New("looks like a file name, not a host")

// fileExts are extensions of files a scanner's user handles that are no
// top-level domain, so a target ending in one is a slip (nmap's -oX out.xml
// read as a target), never a host to resolve.
var fileExts = map[string]bool{
	"xml": true, "json": true, "jsonl": true, "ndjson": true, "txt": true, "csv": true,
	"tsv": true, "html": true, "htm": true, "db": true, "sqlite": true, "sqlite3": true,
	"gnmap": true, "nmap": true, "log": true, "pdf": true, "lst": true, "list": true,
	"out": true, "yaml": true, "yml": true, "mmdb": true, "conf": true, "cfg": true,
	"gz": true, "zip": true, "wal": true, "shm": true,
}

// checkNotFile refuses a hostname target that is a file in the working
// directory or ends in a file extension that is no top-level domain.
func checkNotFile(host string) error {
	if i := strings.LastIndexByte(host, '.'); i >= 0 && fileExts[strings.ToLower(host[i+1:])] {
		return ErrLooksLikeFile
	}
	if fi, err := os.Stat(filepath.Clean(host)); err == nil && !fi.IsDir() {
		return ErrLooksLikeFile
	}
	return nil
}
