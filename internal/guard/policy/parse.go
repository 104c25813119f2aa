package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Bounds on what Parse reads.
const (
	// MaxFileBytes caps a policy file.
	MaxFileBytes = 1 << 20
	maxPeers     = 10000
	maxList      = 4096 // entries in one list
	maxAE        = 16   // bytes in an AE title (PS3.5 Table 6.2-1)
	maxName      = 64
	maxShown     = 40 // bytes of a user's value quoted in an error
)

// ErrInvalid wraps every error Parse returns for a policy that is not valid.
var ErrInvalid = errors.New("policy: invalid")

// Load reads and parses the policy file at path.
func Load(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read policy %s: %w", path, pathErr(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read policy %s: %w", path, pathErr(err))
	}
	if len(b) > MaxFileBytes {
		return nil, fmt.Errorf("policy %s: larger than %d bytes", path, MaxFileBytes)
	}
	p, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// pathErr drops the operation and path of an *os.PathError, which the caller's message names.
func pathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Parse parses a policy in YAML:
//
//	called_ae: [ORTHANC]          # optional: the called AE titles a request may name
//	max_associations: 200         # optional: all peers together (default 1000)
//	peers:
//	  - name: reading-room        # required, unique: audit records and metrics name it
//	    calling_ae: [WS01, WS02]  # required; "*" matches any title
//	    source: [10.1.2.0/24, 10.1.3.7]   # required: addresses or CIDR networks
//	    require_tls: false        # optional
//	    client_cert:              # optional: a verified client certificate that matches
//	      common_name: ws01.example.org
//	      sha256: 3f1c...         # optional: fingerprint of the certificate's DER, hex
//	    services: [echo, find, get, move, store]
//	    query_levels: [STUDY, SERIES]      # required when find, get or move is allowed
//	    universal_find: false     # optional: C-FINDs that match the whole index
//	    move_destinations: [WS01] # required when move is allowed
//	    max_associations: 4       # optional (default 16)
//	    rate: 10/s                # optional: new associations per second (or /m, /h)
//	    burst: 10                 # optional (default: the rate per second, at least 1)
//
// Unknown keys, duplicate keys, YAML aliases and values of the wrong kind are errors, each
// reported in one line with its line number. A policy with no peers is valid and denies all.
func Parse(b []byte) (*Policy, error) {
	if len(b) > MaxFileBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalid, MaxFileBytes)
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &Policy{MaxAssociations: DefaultMaxAssociations}, nil
		}
		return nil, fmt.Errorf("%w: %s", ErrInvalid, yamlError(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fmt.Errorf("%w: line %d: more than one YAML document", ErrInvalid, extra.Line)
	}
	if len(doc.Content) == 0 {
		return &Policy{MaxAssociations: DefaultMaxAssociations}, nil
	}
	p, err := parsePolicy(doc.Content[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return p, nil
}

// yamlError turns a YAML syntax error into one line without the library's prefix.
func yamlError(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "yaml: ")
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// lineError is an error about the node at a line.
func lineError(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("line %d: %s", n.Line, fmt.Sprintf(format, args...))
}

// quote quotes a user's value for an error, capped.
func quote(s string) string {
	if len(s) > maxShown {
		s = s[:maxShown] + "..."
	}
	return strconv.QuoteToASCII(s)
}

// fields walks a mapping node, calling f for each key in known; unknown and duplicate keys and
// aliases are errors.
func fields(n *yaml.Node, what string, known []string, f func(key string, v *yaml.Node) error) error {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return lineError(n, "%s: YAML anchors and aliases are not allowed", what)
	}
	if n.Kind != yaml.MappingNode {
		return lineError(n, "%s must be a mapping of keys to values", what)
	}
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return lineError(k, "%s: keys must be plain words", what)
		}
		if !slices.Contains(known, k.Value) {
			return lineError(k, "%s: unknown key %s (known: %s)", what, quote(k.Value), strings.Join(known, ", "))
		}
		if seen[k.Value] {
			return lineError(k, "%s: key %s given twice", what, k.Value)
		}
		seen[k.Value] = true
		if v.Kind == yaml.AliasNode || v.Anchor != "" {
			return lineError(v, "%s: YAML anchors and aliases are not allowed", what)
		}
		if err := f(k.Value, v); err != nil {
			return err
		}
	}
	return nil
}

func scalar(n *yaml.Node, what string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", lineError(n, "%s must be a single value", what)
	}
	return n.Value, nil
}

// list reads a sequence of scalars; a single scalar is a list of one.
func list(n *yaml.Node, what string) ([]string, error) {
	if n.Kind == yaml.ScalarNode {
		if n.Tag == "!!null" {
			return nil, nil
		}
		return []string{n.Value}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, lineError(n, "%s must be a list", what)
	}
	if len(n.Content) > maxList {
		return nil, lineError(n, "%s: more than %d entries", what, maxList)
	}
	out := make([]string, 0, len(n.Content))
	for _, c := range n.Content {
		if c.Kind == yaml.AliasNode || c.Anchor != "" {
			return nil, lineError(c, "%s: YAML anchors and aliases are not allowed", what)
		}
		if c.Kind != yaml.ScalarNode {
			return nil, lineError(c, "%s: each entry must be a single value", what)
		}
		out = append(out, c.Value)
	}
	return out, nil
}

func boolean(n *yaml.Node, what string) (bool, error) {
	s, err := scalar(n, what)
	if err != nil {
		return false, err
	}
	switch strings.ToLower(s) {
	case "true", "yes", "on":
		return true, nil
	case "false", "no", "off":
		return false, nil
	}
	return false, lineError(n, "%s: %s is not true or false", what, quote(s))
}

func count(n *yaml.Node, what string, hi int) (int, error) {
	s, err := scalar(n, what)
	if err != nil {
		return 0, err
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 || v > hi {
		return 0, lineError(n, "%s: %s is not a whole number from 1 to %d", what, quote(s), hi)
	}
	return v, nil
}

func parsePolicy(n *yaml.Node) (*Policy, error) {
	p := &Policy{MaxAssociations: DefaultMaxAssociations}
	names := map[string]bool{}
	err := fields(n, "top level", []string{"called_ae", "max_associations", "peers"}, func(key string, v *yaml.Node) error {
		var err error
		switch key {
		case "called_ae":
			p.CalledAE, err = aeTitles(v, "called_ae", false)
		case "max_associations":
			p.MaxAssociations, err = count(v, "max_associations", 1_000_000)
		case "peers":
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				return nil
			}
			if v.Kind != yaml.SequenceNode {
				return lineError(v, "peers must be a list of entries")
			}
			if len(v.Content) > maxPeers {
				return lineError(v, "peers: more than %d entries", maxPeers)
			}
			for i, c := range v.Content {
				pe, err := parsePeer(c, i)
				if err != nil {
					return err
				}
				if names[pe.Name] {
					return lineError(c, "peers[%d]: name %s is given to another entry too", i, quote(pe.Name))
				}
				names[pe.Name] = true
				p.Peers = append(p.Peers, pe)
			}
		}
		return err
	})
	return p, err
}

var peerKeys = []string{"name", "calling_ae", "source", "require_tls", "client_cert", "services",
	"query_levels", "universal_find", "move_destinations", "max_associations", "rate", "burst"}

func parsePeer(n *yaml.Node, i int) (*Peer, error) {
	pe := &Peer{MaxAssociations: DefaultPeerMaxAssociations}
	what := fmt.Sprintf("peers[%d]", i)
	seen := map[string]bool{}
	err := fields(n, what, peerKeys, func(key string, v *yaml.Node) error {
		seen[key] = true
		return pe.set(key, v, what)
	})
	if err != nil {
		return nil, err
	}
	if pe.Name != "" {
		what = fmt.Sprintf("peers[%d] (%s)", i, pe.Name)
	}
	for _, k := range []string{"name", "calling_ae", "source"} {
		if !seen[k] {
			return nil, lineError(n, "%s: %s is required", what, k)
		}
	}
	if len(pe.CallingAE) == 0 || len(pe.Sources) == 0 {
		return nil, lineError(n, "%s: calling_ae and source must not be empty", what)
	}
	needLevels := pe.Allows(Find) || pe.Allows(Get) || pe.Allows(Move)
	switch {
	case needLevels && len(pe.Levels) == 0:
		return nil, lineError(n, "%s: find, get and move need query_levels", what)
	case pe.Allows(Move) && len(pe.MoveDestinations) == 0:
		return nil, lineError(n, "%s: move needs move_destinations", what)
	case pe.Rate == 0 && seen["burst"]:
		return nil, lineError(n, "%s: burst needs a rate", what)
	}
	if pe.Rate > 0 && pe.Burst == 0 {
		pe.Burst = max(1, int(math.Ceil(pe.Rate)))
	}
	return pe, nil
}

// set parses one key of a peer entry.
func (pe *Peer) set(key string, v *yaml.Node, what string) error {
	var err error
	field := what + "." + key
	switch key {
	case "name":
		pe.Name, err = scalar(v, field)
		if err == nil && !validName(pe.Name) {
			err = lineError(v, "%s: %s is not a name of 1 to %d letters, digits, '-', '_' or '.'", field, quote(pe.Name), maxName)
		}
	case "calling_ae":
		pe.CallingAE, err = aeTitles(v, field, true)
	case "source":
		pe.Sources, err = sources(v, field)
	case "require_tls":
		pe.RequireTLS, err = boolean(v, field)
	case "client_cert":
		pe.ClientCert, err = certMatch(v, field)
	case "services":
		pe.Services, err = services(v, field)
	case "query_levels":
		pe.Levels, err = levels(v, field)
	case "universal_find":
		pe.UniversalFind, err = boolean(v, field)
	case "move_destinations":
		pe.MoveDestinations, err = aeTitles(v, field, false)
	case "max_associations":
		pe.MaxAssociations, err = count(v, field, 1_000_000)
	case "rate":
		pe.Rate, err = rateOf(v, field)
	case "burst":
		pe.Burst, err = count(v, field, 1_000_000)
	}
	return err
}

func validName(s string) bool {
	if s == "" || len(s) > maxName {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// aeTitles reads AE titles: 1 to 16 printable ASCII characters, no backslash, not only
// spaces; leading and trailing spaces are not significant (PS3.5 Table 6.2-1), so they are
// trimmed. wildcard allows "*".
func aeTitles(n *yaml.Node, what string, wildcard bool) ([]string, error) {
	vals, err := list(n, what)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(vals))
	for _, s := range vals {
		t := strings.TrimSpace(s)
		if t == "*" && !wildcard {
			return nil, lineError(n, "%s: \"*\" is not allowed here", what)
		}
		if !validAE(t) {
			return nil, lineError(n, "%s: %s is not an AE title (1 to 16 printable ASCII characters, no backslash)", what, quote(s))
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

func validAE(s string) bool {
	if s == "" || len(s) > maxAE {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7E || s[i] == '\\' {
			return false
		}
	}
	return true
}

func sources(n *yaml.Node, what string) ([]netip.Prefix, error) {
	vals, err := list(n, what)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Prefix, 0, len(vals))
	for _, s := range vals {
		s = strings.TrimSpace(s)
		var p netip.Prefix
		if strings.Contains(s, "/") {
			p, err = netip.ParsePrefix(s)
			if err == nil && p != p.Masked() {
				return nil, lineError(n, "%s: %s has host bits set (did you mean %s?)", what, quote(s), p.Masked())
			}
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(s)
			if err == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil || p.Addr().Zone() != "" {
			return nil, lineError(n, "%s: %s is not an IP address or CIDR network", what, quote(s))
		}
		// IPv4-mapped IPv6 sources are compared as IPv4 (Conn.Source is unmapped).
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p)
	}
	return out, nil
}

func certMatch(n *yaml.Node, what string) (*CertMatch, error) {
	m := &CertMatch{}
	err := fields(n, what, []string{"common_name", "sha256"}, func(key string, v *yaml.Node) error {
		s, err := scalar(v, what+"."+key)
		if err != nil {
			return err
		}
		switch key {
		case "common_name":
			if s == "" || len(s) > 256 {
				return lineError(v, "%s.common_name must be 1 to 256 bytes", what)
			}
			m.CommonName = s
		case "sha256":
			h := strings.ToLower(strings.ReplaceAll(s, ":", ""))
			if b, err := hexDecode(h); err != nil || len(b) != 32 {
				return lineError(v, "%s.sha256: %s is not a SHA-256 fingerprint (64 hex digits)", what, quote(s))
			}
			m.SHA256 = h
		}
		return nil
	})
	if err == nil && *m == (CertMatch{}) {
		err = lineError(n, "%s: give common_name, sha256 or both", what)
	}
	return m, err
}

func hexDecode(s string) ([]byte, error) {
	b := make([]byte, len(s)/2)
	if len(s)%2 != 0 {
		return nil, errors.New("odd length")
	}
	for i := range b {
		v, err := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		if err != nil {
			return nil, err
		}
		b[i] = byte(v)
	}
	return b, nil
}

func services(n *yaml.Node, what string) ([]Service, error) {
	vals, err := list(n, what)
	if err != nil {
		return nil, err
	}
	var out []Service
	for _, s := range vals {
		v := Service(strings.ToLower(strings.TrimSpace(s)))
		if !slices.Contains(Services, v) {
			return nil, lineError(n, "%s: unknown service %s (known: echo, find, get, move, store)", what, quote(s))
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

func levels(n *yaml.Node, what string) ([]Level, error) {
	vals, err := list(n, what)
	if err != nil {
		return nil, err
	}
	var out []Level
	for _, s := range vals {
		v := Level(strings.ToUpper(strings.TrimSpace(s)))
		if !slices.Contains(Levels, v) {
			return nil, lineError(n, "%s: unknown level %s (known: PATIENT, STUDY, SERIES, IMAGE)", what, quote(s))
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

// rateOf reads "N/s", "N/m" or "N/h" (N may have a fraction) as a rate per second.
func rateOf(n *yaml.Node, what string) (float64, error) {
	s, err := scalar(n, what)
	if err != nil {
		return 0, err
	}
	num, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	per := map[string]float64{"s": 1, "m": 60, "h": 3600}[strings.TrimSpace(unit)]
	v, perr := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if !ok || per == 0 || perr != nil || !(v > 0) || v > 1e6 || math.IsInf(v, 0) {
		return 0, lineError(n, "%s: %s is not a rate such as 10/s, 30/m or 100/h", what, quote(s))
	}
	return v / per, nil
}
