package honeypot

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
)

// Defaults of Config.
const (
	// DefaultMinStudyCluster: a study set served by three addresses or more is a cluster. Two
	// could be one archive with two addresses (dual-homed, a NAT pair); a hospital does not
	// publish its archive on three.
	DefaultMinStudyCluster = 3
	// DefaultMinCertCluster: an identity and TLS certificate shared by five addresses or more is
	// a cluster; a site may give one certificate to a few nodes of its own.
	DefaultMinCertCluster = 5
)

// Config sets the thresholds of the fleet-level clusters; zero fields take the defaults.
type Config struct {
	MinStudyCluster int // distinct addresses serving one study set (digest and counts)
	MinCertCluster  int // distinct addresses sharing identity and TLS certificate
}

func (c Config) withDefaults() Config {
	if c.MinStudyCluster <= 0 {
		c.MinStudyCluster = DefaultMinStudyCluster
	}
	if c.MinCertCluster <= 0 {
		c.MinCertCluster = DefaultMinCertCluster
	}
	return c
}

// Flagged is one host:port found to be a honeypot, with the caveat that says why.
type Flagged struct {
	ScanID string
	Addr   netip.AddrPort
	Caveat probe.Caveat
}

// studyKey is what hosts serving one study set have in common.
type studyKey struct {
	set                string
	studies, instances int64
}

// certKey is what hosts deployed from one image with one certificate have in common.
type certKey struct {
	uid, version, product string
	maxPDU                uint32
	subject, issuer       string
	notAfter              time.Time
}

// member is a result that belongs to a candidate cluster.
type member struct {
	scanID string
	addr   netip.AddrPort
}

// Detector gathers a fleet's results and finds its honeypots. It keeps only the results that
// can belong to a cluster (those with a study set or a TLS certificate): memory in the number of
// exposed systems, not of results.
type Detector struct {
	cfg     Config
	flagged []Flagged
	done    map[netip.AddrPort]bool // flagged by a fingerprint
	studies map[studyKey][]member
	certs   map[certKey][]member
}

// NewDetector returns a detector with cfg's thresholds.
func NewDetector(cfg Config) *Detector {
	return &Detector{cfg: cfg.withDefaults(), done: map[netip.AddrPort]bool{},
		studies: map[studyKey][]member{}, certs: map[certKey][]member{}}
}

// Add takes one result of the fleet. A result already flagged as a honeypot is taken again
// (a second Flag of the same scan adds nothing: the store keeps each caveat once).
func (d *Detector) Add(r *probe.Result) {
	ap := netip.AddrPortFrom(r.IP, r.Port)
	m := member{scanID: r.ScanID, addr: ap}
	if fp, ok := Match(r); ok && !d.done[ap] {
		d.done[ap] = true
		d.flagged = append(d.flagged, Flagged{ScanID: r.ScanID, Addr: ap, Caveat: FingerprintCaveat(fp)})
	}
	if e := r.Exposure; e != nil && e.StudySet != "" && e.Studies > 0 && r.Level() >= probe.LevelQuery {
		k := studyKey{set: e.StudySet, studies: e.Studies, instances: e.Instances}
		d.studies[k] = append(d.studies[k], m)
	}
	if dc := r.DICOM; dc != nil && dc.TLS && dc.TLSCert != nil && dc.Association == probe.AssociationAccepted {
		c := dc.TLSCert
		k := certKey{uid: dc.ImplementationClassUID, version: dc.ImplementationVersion, product: dc.Product, maxPDU: dc.MaxPDU,
			subject: c.Subject, issuer: c.Issuer, notAfter: c.NotAfter.UTC()}
		d.certs[k] = append(d.certs[k], m)
	}
}

// Flagged returns every host:port found to be a honeypot, in address order: fingerprints
// first, then members of study-set clusters, then of identity-and-certificate clusters; a
// port in several gets each caveat.
func (d *Detector) Flagged() []Flagged {
	out := slices.Clone(d.flagged)
	for k, ms := range d.studies {
		if n := addresses(ms); n >= d.cfg.MinStudyCluster {
			c := probe.Caveat{Kind: probe.CaveatHoneypot, Reason: fmt.Sprintf(
				"one of %d hosts serving the same %d studies and %d images (identical keyed hashes of their study UIDs)",
				n, k.studies, k.instances)}
			out = appendMembers(out, ms, c)
		}
	}
	for k, ms := range d.certs {
		if n := addresses(ms); n >= d.cfg.MinCertCluster {
			c := probe.Caveat{Kind: probe.CaveatHoneypot, Reason: fmt.Sprintf(
				"one of %d hosts with the same identity (%s %s) and TLS certificate (subject %q, issuer %q)",
				n, cmp.Or(k.uid, "no implementation class UID"), k.version, k.subject, k.issuer)}
			out = appendMembers(out, ms, c)
		}
	}
	slices.SortStableFunc(out, func(a, b Flagged) int {
		return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.ScanID, b.ScanID))
	})
	return out
}

func appendMembers(out []Flagged, ms []member, c probe.Caveat) []Flagged {
	for _, m := range ms {
		out = append(out, Flagged{ScanID: m.scanID, Addr: m.addr, Caveat: c})
	}
	return out
}

// addresses counts the distinct addresses among ms: the ports of one host are one.
func addresses(ms []member) int {
	seen := map[netip.Addr]bool{}
	for _, m := range ms {
		seen[m.addr.Addr()] = true
	}
	return len(seen)
}
