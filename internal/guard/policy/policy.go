// Package policy is the access policy of pacswatch's DICOM guard (SPEC "guard"): which peers may
// associate with the archive behind the guard, and what each may do there. A peer is a set of
// calling AE titles (PS3.8 §9.3.2) and source networks, optionally bound to a TLS client
// certificate (PS3.15 Annex B.1); it is allowed DIMSE services (PS3.7 §9.1, PS3.4 Annexes A, B
// and C), query/retrieve levels (PS3.4 §C.6), universal-match C-FIND or not (PS3.4 §C.2.2.2.3),
// C-MOVE destinations, and limits on its associations. Everything not allowed is denied.
//
// A Policy is read from YAML by Parse (see Parse for the format) and never changes afterwards:
// the guard swaps whole policies on reload.
package policy

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"net/netip"
	"slices"
	"strings"
)

// Service is a DIMSE service a peer may use.
type Service string

// Services. Store is C-STORE from the peer to the archive; the C-STORE sub-operations of a C-GET
// travel the other way and belong to Get.
const (
	Echo  Service = "echo"
	Find  Service = "find"
	Get   Service = "get"
	Move  Service = "move"
	Store Service = "store"
)

// Services lists every service, in the order policies print them.
var Services = []Service{Echo, Find, Get, Move, Store}

// Level is a Query/Retrieve Level (0008,0052) value (PS3.4 §C.6).
type Level string

// Levels.
const (
	Patient Level = "PATIENT"
	Study   Level = "STUDY"
	Series  Level = "SERIES"
	Image   Level = "IMAGE"
)

// Levels lists every level, from the top of the hierarchy down.
var Levels = []Level{Patient, Study, Series, Image}

// Defaults of a policy.
const (
	// DefaultMaxAssociations caps the associations the guard holds at once when the policy
	// names no max_associations of its own.
	DefaultMaxAssociations = 1000
	// DefaultPeerMaxAssociations caps one peer's associations at once when its entry names
	// none.
	DefaultPeerMaxAssociations = 16
)

// Policy is a parsed, validated policy. It is never modified after Parse returns it, so that
// the guard may read it from many goroutines.
type Policy struct {
	// CalledAE, when not empty, lists the called AE titles a request may name (compared
	// exactly); a request naming another is rejected with reason 7.
	CalledAE []string
	// MaxAssociations caps the associations held at once, all peers together.
	MaxAssociations int
	// Peers are tried in order; the first that matches a request is its peer.
	Peers []*Peer
}

// Peer is an allow-list entry.
type Peer struct {
	// Name identifies the entry in audit records and metrics; unique within a policy.
	Name string
	// CallingAE lists the calling AE titles of the entry, compared exactly; "*" matches any.
	CallingAE []string
	// Sources lists the networks the connection may come from.
	Sources []netip.Prefix
	// RequireTLS admits the peer only over DICOM TLS.
	RequireTLS bool
	// ClientCert, when set, admits the peer only with a verified TLS client certificate that
	// matches it (RequireTLS is then implied).
	ClientCert *CertMatch
	// Services and Levels are what the peer may do; Levels apply to find, get and move.
	Services []Service
	Levels   []Level
	// UniversalFind allows C-FINDs whose every key matches universally (the whole index).
	UniversalFind bool
	// MoveDestinations lists the AE titles a C-MOVE may name as its destination.
	MoveDestinations []string
	// MaxAssociations caps the entry's associations at once (all its sources together).
	MaxAssociations int
	// Rate caps new associations per second for the entry, with bursts of Burst; 0: no cap.
	Rate  float64
	Burst int
}

// CertMatch names the client certificate a peer must present: its subject common name, its
// SHA-256 fingerprint (of the DER encoding, lowercase hex), or both.
type CertMatch struct {
	CommonName string
	SHA256     string
}

// Matches reports whether the verified leaf certificate c matches m; nil never matches.
func (m *CertMatch) Matches(c *x509.Certificate) bool {
	if c == nil {
		return false
	}
	if m.CommonName != "" && c.Subject.CommonName != m.CommonName {
		return false
	}
	if m.SHA256 != "" {
		sum := sha256.Sum256(c.Raw)
		if hex.EncodeToString(sum[:]) != m.SHA256 {
			return false
		}
	}
	return true
}

// Conn is what the guard knows of an association request when it admits or refuses it.
type Conn struct {
	CalledAE, CallingAE string
	Source              netip.Addr
	TLS                 bool
	// Cert is the client's verified leaf certificate; nil when none was presented or verified.
	Cert *x509.Certificate
}

// Refusal says why an association or a request was refused; the zero value admits.
type Refusal string

// Refusals of associations (Admit) and of requests (Peer.Check).
const (
	Admitted            Refusal = ""
	CalledAENotAllowed  Refusal = "called-ae-not-allowed"
	NoMatchingPeer      Refusal = "no-matching-peer"
	ServiceNotAllowed   Refusal = "service-not-allowed"
	LevelNotAllowed     Refusal = "level-not-allowed"
	UniversalFindDenied Refusal = "universal-find-not-allowed"
	MoveDestinationDeny Refusal = "move-destination-not-allowed"
)

// Admit returns the peer that c belongs to, or the refusal: CalledAENotAllowed when CalledAE is
// set and does not list c.CalledAE, NoMatchingPeer when no entry matches.
func (p *Policy) Admit(c Conn) (*Peer, Refusal) {
	if len(p.CalledAE) > 0 && !slices.Contains(p.CalledAE, c.CalledAE) {
		return nil, CalledAENotAllowed
	}
	for _, pe := range p.Peers {
		if pe.matches(c) {
			return pe, Admitted
		}
	}
	return nil, NoMatchingPeer
}

// Peer returns the entry named name, or nil.
func (p *Policy) Peer(name string) *Peer {
	for _, pe := range p.Peers {
		if pe.Name == name {
			return pe
		}
	}
	return nil
}

func (pe *Peer) matches(c Conn) bool {
	if !slices.Contains(pe.CallingAE, "*") && !slices.Contains(pe.CallingAE, c.CallingAE) {
		return false
	}
	src := c.Source.Unmap()
	if !slices.ContainsFunc(pe.Sources, func(p netip.Prefix) bool { return p.Contains(src) }) {
		return false
	}
	if (pe.RequireTLS || pe.ClientCert != nil) && !c.TLS {
		return false
	}
	return pe.ClientCert == nil || pe.ClientCert.Matches(c.Cert)
}

// Allows reports whether the peer may use s.
func (pe *Peer) Allows(s Service) bool { return slices.Contains(pe.Services, s) }

// AllowsContext reports whether the peer may have a presentation context for abstractSyntax
// accepted: one of a service it may use, or a storage class when it may store or get (a C-GET's
// instances come back as C-STORE sub-operations on the storage contexts, PS3.4 §C.4.3.3).
func (pe *Peer) AllowsContext(abstractSyntax string) bool {
	s, ok := ServiceOf(abstractSyntax)
	switch {
	case !ok:
		return false
	case s == Store:
		return pe.Allows(Store) || pe.Allows(Get)
	}
	return pe.Allows(s)
}

// Request is what the guard knows of a DIMSE request when it checks it.
type Request struct {
	Service Service
	// Level is the identifier's Query/Retrieve Level, for find, get and move.
	Level Level
	// Universal reports a C-FIND identifier whose every key matches universally.
	Universal bool
	// MoveDestination is a C-MOVE's destination AE title.
	MoveDestination string
}

// Check returns the refusal of r, or Admitted.
func (pe *Peer) Check(r Request) Refusal {
	if !pe.Allows(r.Service) {
		return ServiceNotAllowed
	}
	switch r.Service {
	case Find, Get, Move:
		if !slices.Contains(pe.Levels, r.Level) {
			return LevelNotAllowed
		}
	}
	if r.Service == Find && r.Universal && !pe.UniversalFind {
		return UniversalFindDenied
	}
	if r.Service == Move && !slices.Contains(pe.MoveDestinations, r.MoveDestination) {
		return MoveDestinationDeny
	}
	return Admitted
}

// SOP classes of the Query/Retrieve information models (PS3.4 §C.6, PS3.6 Annex A).
var qrClasses = map[string]Service{
	"1.2.840.10008.5.1.4.1.2.1.1": Find, // Patient Root
	"1.2.840.10008.5.1.4.1.2.1.2": Move,
	"1.2.840.10008.5.1.4.1.2.1.3": Get,
	"1.2.840.10008.5.1.4.1.2.2.1": Find, // Study Root
	"1.2.840.10008.5.1.4.1.2.2.2": Move,
	"1.2.840.10008.5.1.4.1.2.2.3": Get,
	"1.2.840.10008.5.1.4.1.2.3.1": Find, // Patient/Study Only (retired)
	"1.2.840.10008.5.1.4.1.2.3.2": Move,
	"1.2.840.10008.5.1.4.1.2.3.3": Get,
	"1.2.840.10008.5.1.4.1.2.4.2": Move, // Composite Instance Root
	"1.2.840.10008.5.1.4.1.2.4.3": Get,
	"1.2.840.10008.5.1.4.1.2.5.3": Get, // Composite Instance Retrieve Without Bulk Data
}

// storagePrefix starts the UIDs of the storage SOP classes of PS3.4 Annex B.5.
const storagePrefix = "1.2.840.10008.5.1.4.1.1."

// ServiceOf returns the service whose SOP class abstractSyntax is: Verification, a
// Query/Retrieve class, or a storage class. Other SOP classes (worklists, storage commitment,
// N-services) are no service the guard forwards.
func ServiceOf(abstractSyntax string) (Service, bool) {
	if abstractSyntax == "1.2.840.10008.1.1" {
		return Echo, true
	}
	if s, ok := qrClasses[abstractSyntax]; ok {
		return s, true
	}
	if strings.HasPrefix(abstractSyntax, storagePrefix) && len(abstractSyntax) > len(storagePrefix) {
		return Store, true
	}
	return "", false
}
