package policy

import (
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func mustParse(t *testing.T, src string) *Policy {
	t.Helper()
	p, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

func TestLoadExample(t *testing.T) {
	p, err := Load("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(p.Peers), 3; got != want {
		t.Fatalf("peers = %d, want %d", got, want)
	}
	if p.MaxAssociations != 200 || !slices.Equal(p.CalledAE, []string{"ORTHANC"}) {
		t.Errorf("policy = %+v", p)
	}
	rr := p.Peer("reading-room")
	if rr == nil || rr.Rate != 10 || rr.Burst != 10 || rr.MaxAssociations != 4 || rr.UniversalFind {
		t.Fatalf("reading-room = %+v", rr)
	}
	ct := p.Peer("ct-scanner")
	if !slices.Equal(ct.CallingAE, []string{"CT01"}) || ct.MaxAssociations != DefaultPeerMaxAssociations ||
		ct.Sources[0] != netip.MustParsePrefix("127.0.0.2/32") {
		t.Errorf("ct-scanner = %+v", ct)
	}
	admin := p.Peer("admin")
	if admin.ClientCert == nil || admin.ClientCert.CommonName != "admin.example.org" || admin.Rate != 0.5 || admin.Burst != 2 {
		t.Errorf("admin = %+v", admin)
	}
}

func TestAdmit(t *testing.T) {
	p, err := Load("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	adminCert := &x509.Certificate{Raw: []byte("der"), Subject: pkix.Name{CommonName: "admin.example.org"}}
	other := &x509.Certificate{Raw: []byte("der2"), Subject: pkix.Name{CommonName: "someone"}}
	a := netip.MustParseAddr
	tests := []struct {
		name string
		c    Conn
		peer string
		ref  Refusal
	}{
		{"allowed", Conn{CalledAE: "ORTHANC", CallingAE: "WS01", Source: a("127.0.0.9")}, "reading-room", Admitted},
		{"mapped v4", Conn{CalledAE: "ORTHANC", CallingAE: "WS02", Source: a("::ffff:127.0.0.9")}, "reading-room", Admitted},
		{"v6 loopback", Conn{CalledAE: "ORTHANC", CallingAE: "WS02", Source: a("::1")}, "reading-room", Admitted},
		{"wrong called", Conn{CalledAE: "ANY-SCP", CallingAE: "WS01", Source: a("127.0.0.9")}, "", CalledAENotAllowed},
		{"called case", Conn{CalledAE: "orthanc", CallingAE: "WS01", Source: a("127.0.0.9")}, "", CalledAENotAllowed},
		{"unknown calling", Conn{CalledAE: "ORTHANC", CallingAE: "PACSWATCH", Source: a("127.0.0.9")}, "", NoMatchingPeer},
		{"calling case", Conn{CalledAE: "ORTHANC", CallingAE: "ws01", Source: a("127.0.0.9")}, "", NoMatchingPeer},
		{"wrong source", Conn{CalledAE: "ORTHANC", CallingAE: "WS01", Source: a("192.0.2.1")}, "", NoMatchingPeer},
		{"ct", Conn{CalledAE: "ORTHANC", CallingAE: "CT01", Source: a("127.0.0.2")}, "ct-scanner", Admitted},
		{"ct elsewhere", Conn{CalledAE: "ORTHANC", CallingAE: "CT01", Source: a("127.0.0.3")}, "", NoMatchingPeer},
		{"admin plain", Conn{CalledAE: "ORTHANC", CallingAE: "X", Source: a("127.0.0.3")}, "", NoMatchingPeer},
		{"admin no cert", Conn{CalledAE: "ORTHANC", CallingAE: "X", Source: a("127.0.0.3"), TLS: true}, "", NoMatchingPeer},
		{"admin other cert", Conn{CalledAE: "ORTHANC", CallingAE: "X", Source: a("127.0.0.3"), TLS: true, Cert: other}, "", NoMatchingPeer},
		{"admin", Conn{CalledAE: "ORTHANC", CallingAE: "X", Source: a("127.0.0.3"), TLS: true, Cert: adminCert}, "admin", Admitted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pe, ref := p.Admit(tt.c)
			name := ""
			if pe != nil {
				name = pe.Name
			}
			if name != tt.peer || ref != tt.ref {
				t.Errorf("Admit = %q, %q; want %q, %q", name, ref, tt.peer, tt.ref)
			}
		})
	}
}

func TestCertFingerprint(t *testing.T) {
	c := &x509.Certificate{Raw: []byte("certificate bytes"), Subject: pkix.Name{CommonName: "ws"}}
	sum := sha256.Sum256(c.Raw)
	fp := strings.ToUpper(hex.EncodeToString(sum[:]))
	p := mustParse(t, "peers:\n- name: a\n  calling_ae: A\n  source: 127.0.0.1\n  client_cert: {sha256: \""+fp+"\"}\n")
	m := p.Peers[0].ClientCert
	if !m.Matches(c) {
		t.Error("fingerprint given in upper case does not match")
	}
	if m.Matches(&x509.Certificate{Raw: []byte("other")}) || m.Matches(nil) {
		t.Error("another certificate, or none, matches")
	}
}

func TestCheck(t *testing.T) {
	p, err := Load("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rr, ct, admin := p.Peer("reading-room"), p.Peer("ct-scanner"), p.Peer("admin")
	tests := []struct {
		peer *Peer
		r    Request
		want Refusal
	}{
		{rr, Request{Service: Echo}, Admitted},
		{rr, Request{Service: Find, Level: Study}, Admitted},
		{rr, Request{Service: Find, Level: Patient}, LevelNotAllowed},
		{rr, Request{Service: Find, Level: ""}, LevelNotAllowed},
		{rr, Request{Service: Find, Level: Study, Universal: true}, UniversalFindDenied},
		{rr, Request{Service: Get, Level: Series}, Admitted},
		{rr, Request{Service: Move, Level: Study, MoveDestination: "WS01"}, Admitted},
		{rr, Request{Service: Move, Level: Study, MoveDestination: "EVIL"}, MoveDestinationDeny},
		{rr, Request{Service: Move, Level: Study, MoveDestination: "ws01"}, MoveDestinationDeny},
		{rr, Request{Service: Store}, ServiceNotAllowed},
		{ct, Request{Service: Store}, Admitted},
		{ct, Request{Service: Find, Level: Study}, ServiceNotAllowed},
		{admin, Request{Service: Find, Level: Patient, Universal: true}, Admitted},
		{admin, Request{Service: Get, Level: Study}, ServiceNotAllowed},
	}
	for i, tt := range tests {
		if got := tt.peer.Check(tt.r); got != tt.want {
			t.Errorf("%d: %s.Check(%+v) = %q, want %q", i, tt.peer.Name, tt.r, got, tt.want)
		}
	}
}

func TestAllowsContext(t *testing.T) {
	p, err := Load("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rr, ct := p.Peer("reading-room"), p.Peer("ct-scanner")
	const ctImage = "1.2.840.10008.5.1.4.1.1.2"
	tests := []struct {
		peer *Peer
		as   string
		want bool
	}{
		{rr, "1.2.840.10008.1.1", true},
		{rr, "1.2.840.10008.5.1.4.1.2.2.1", true},
		{rr, "1.2.840.10008.5.1.4.1.2.1.3", true},
		{rr, ctImage, true}, // get's sub-operations
		{rr, "1.2.840.10008.5.1.4.31", false},
		{rr, "1.2.840.10008.5.1.4.1.1.", false},
		{ct, ctImage, true},
		{ct, "1.2.840.10008.5.1.4.1.2.2.1", false},
		{ct, "1.2.840.10008.1.20.1", false}, // storage commitment
	}
	for _, tt := range tests {
		if got := tt.peer.AllowsContext(tt.as); got != tt.want {
			t.Errorf("%s.AllowsContext(%s) = %v, want %v", tt.peer.Name, tt.as, got, tt.want)
		}
	}
}

func TestParseEmptyDeniesAll(t *testing.T) {
	for _, src := range []string{"", "# nothing\n", "peers:\n", "peers: []\n"} {
		p := mustParse(t, src)
		if _, ref := p.Admit(Conn{CallingAE: "A", Source: netip.MustParseAddr("127.0.0.1")}); ref != NoMatchingPeer {
			t.Errorf("%q admits: %q", src, ref)
		}
		if p.MaxAssociations != DefaultMaxAssociations {
			t.Errorf("%q: max associations %d", src, p.MaxAssociations)
		}
	}
}

func TestParseErrors(t *testing.T) {
	peer := func(extra string) string {
		return "peers:\n  - name: p\n    calling_ae: A\n    source: 127.0.0.1\n" + extra
	}
	tests := []struct{ src, want string }{
		{"peers: [", "line 1: did not find expected node content"},
		{"nonsense: 1\n", "line 1: top level: unknown key \"nonsense\""},
		{"peers: 3\n", "line 1: peers must be a list"},
		{"max_associations: 0\n", "max_associations: \"0\" is not a whole number"},
		{"called_ae: [\"TOO-LONG-AE-TITLE-X\"]\n", "is not an AE title"},
		{"called_ae: [\"*\"]\n", "\"*\" is not allowed here"},
		{"peers:\n  - name: p\n", "peers[0] (p): calling_ae is required"},
		{peer("    servics: [echo]\n"), "line 5: peers[0]: unknown key \"servics\""},
		{peer("    services: [echo, telnet]\n"), "unknown service \"telnet\""},
		{peer("    services: [find]\n"), "find, get and move need query_levels"},
		{peer("    services: [move]\n    query_levels: [STUDY]\n"), "move needs move_destinations"},
		{peer("    services: [find]\n    query_levels: [WORKLIST]\n"), "unknown level \"WORKLIST\""},
		{peer("    rate: fast\n"), "is not a rate such as 10/s"},
		{peer("    rate: -1/s\n"), "is not a rate"},
		{peer("    burst: 3\n"), "burst needs a rate"},
		{peer("    universal_find: maybe\n"), "is not true or false"},
		{peer("    client_cert: {}\n"), "give common_name, sha256 or both"},
		{peer("    client_cert: {sha256: abc}\n"), "is not a SHA-256 fingerprint"},
		{peer("    name: q\n"), "key name given twice"},
		{"peers:\n  - name: p\n    calling_ae: A\n    source: 198.51.100.300\n", "\"198.51.100.300\" is not an IP address or CIDR network"},
		{"peers:\n  - name: p\n    calling_ae: A\n    source: 198.51.100.1/24\n", "has host bits set (did you mean 198.51.100.0/24?)"},
		{"peers:\n  - name: p\n    calling_ae: A\n    source: []\n", "must not be empty"},
		{"peers:\n  - name: \"a b\"\n    calling_ae: A\n    source: 127.0.0.1\n", "is not a name"},
		{peer("  - name: p\n    calling_ae: B\n    source: 127.0.0.1\n"), "name \"p\" is given to another entry too"},
		{"called_ae: &x [A]\n", "anchors and aliases are not allowed"},
		{peer("    services: &s [echo]\n"), "anchors and aliases are not allowed"},
		{"peers: []\n---\npeers: []\n", "more than one YAML document"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.src))
		if err == nil {
			t.Errorf("Parse(%q) = nil error, want %q", tt.src, tt.want)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tt.want) || !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q) = %q, want it to contain %q", tt.src, msg, tt.want)
		}
		if strings.Contains(msg, "\n") || strings.Contains(msg, "yaml:") || strings.Contains(msg, "netip") ||
			strings.Contains(msg, "policy.") || strings.Contains(msg, "strconv") {
			t.Errorf("Parse(%q) error shows internals or several lines: %q", tt.src, msg)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || strings.Contains(err.Error(), "open ") {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, make([]byte, MaxFileBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("big file: %v", err)
	}
}
