// Package probe defines a scan's per-target result record and the typed
// values it carries, as specified by the "Result record" section of
// pacswatch's SPEC: one JSON object per host:port, snake_case keys.
//
// The DICOM fields describe what the Upper Layer association (PS3.8 §7.1,
// §9.3.2–§9.3.4) and the DIMSE services (PS3.7 §9.1) revealed; no field ever
// holds patient data. Strings that came from a server are untrusted:
// Result.Sanitize caps their length and strips control characters before a
// record is stored or printed.
package probe

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/pacswatch/pacswatch/internal/enumtext"
	"github.com/pacswatch/pacswatch/internal/textsafe"
)

// Caps applied by Result.Sanitize, in bytes of UTF-8.
const (
	MaxAETitle    = 16  // PS3.5 §6.2: AE VR, 16 characters
	MaxUID        = 64  // PS3.5 §6.2: UI VR, 64 characters
	MaxVersion    = 64  // implementation version names, product versions
	MaxProduct    = 64  // product names
	MaxURL        = 512 // web front-end URLs
	MaxError      = 256 // error text, reject meanings, certificate names
	MaxModality   = 16  // PS3.5 §6.2: CS VR, 16 characters
	MaxModalities = 64  // distinct keys kept in Exposure.Modalities
)

// Result is what one scan learned about one host:port. DICOM and Exposure
// are nil for a port that is not open; Exposure is set for every open port
// (LevelNotDICOM when the peer did not speak DICOM).
type Result struct {
	ScanID   string     `json:"scan_id"`
	IP       netip.Addr `json:"ip"`
	Port     uint16     `json:"port"`
	Time     time.Time  `json:"time"` // when the probe of this target ended
	Status   Status     `json:"status"`
	Depth    string     `json:"depth,omitempty"` // the --depth the target was probed at: connect, associate, echo or query
	Error    string     `json:"error,omitempty"` // safe, capped description of what failed
	DICOM    *DICOM     `json:"dicom,omitempty"`
	Exposure *Exposure  `json:"exposure,omitempty"`
	Web      []Web      `json:"web,omitempty"`
}

// DICOM is what the association attempts and DIMSE requests showed.
type DICOM struct {
	Association Association `json:"association"`
	Reject      *Reject     `json:"reject,omitempty"` // set when Association is AssociationRejected
	CalledAE    string      `json:"called_ae"`        // the called AE title that got the final answer
	CallingAE   string      `json:"calling_ae"`
	AECheck     AECheck     `json:"ae_check"`

	// From the A-ASSOCIATE-AC user information, PS3.7 Annex D.3.3.2.
	ImplementationClassUID string `json:"implementation_class_uid"`
	ImplementationVersion  string `json:"implementation_version"`
	Product                string `json:"product"` // product name inferred from the above, "" if unknown
	MaxPDU                 uint32 `json:"max_pdu"` // PS3.8 Annex D.1: 0 means no limit

	TLS      bool     `json:"tls"` // the association ran over TLS (PS3.15 Annex B.1)
	TLSCert  *TLSCert `json:"tls_cert,omitempty"`
	Services Services `json:"services"`
	Honeypot bool     `json:"honeypot"`
}

// Reject is an A-ASSOCIATE-RJ's reason fields. PS3.8 §9.3.4
type Reject struct {
	Result  int    `json:"result"`  // 1 rejected-permanent, 2 rejected-transient
	Source  int    `json:"source"`  // 1 service-user, 2 service-provider (ACSE), 3 service-provider (presentation)
	Reason  int    `json:"reason"`  // meaning depends on Source
	Meaning string `json:"meaning"` // e.g. "called-AE-title-not-recognized"
}

// TLSCert describes the certificate a DICOM TLS peer presented
// (an extension of the SPEC record).
type TLSCert struct {
	Subject    string    `json:"subject"`
	Issuer     string    `json:"issuer"`
	NotAfter   time.Time `json:"not_after"`
	SelfSigned bool      `json:"self_signed"`
	Version    string    `json:"version"` // negotiated TLS version, as tls.VersionName spells it
}

// Services records which DIMSE services the peer accepted (PS3.7 §9.1).
type Services struct {
	Echo        bool `json:"echo"`         // C-ECHO answered
	FindStudy   bool `json:"find_study"`   // Study Root C-FIND answered
	FindPatient bool `json:"find_patient"` // Patient Root C-FIND answered
	Get         bool `json:"get"`
	Move        bool `json:"move"`
	Store       bool `json:"store"` // a Storage SOP Class was accepted (never exercised)
}

// Exposure is how much of the archive the service opened to us.
type Exposure struct {
	Level           Level            `json:"level"`
	Studies         int64            `json:"studies"`
	StudiesExact    bool             `json:"studies_exact"` // false when a result cap or slicing made Studies a lower bound
	Instances       int64            `json:"instances"`
	InstancesSource InstancesSource  `json:"instances_source"`
	Modalities      map[string]int64 `json:"modalities,omitempty"` // studies per modality
	Retrieve        Retrieve         `json:"retrieve"`
	// Caveats say why a count is not exact or not to be summed (SPEC "Result
	// record"): capped, estimate, implausible, honeypot. Empty for an exact,
	// plausible count of a system believed real.
	Caveats []Caveat `json:"caveats,omitempty"`
	// StudySet is a digest of the set of studies counted, made from their keyed
	// hashes (the store's HMAC secret): 16 hex digits, equal for two hosts of one
	// store that serve the same Study Instance UIDs, meaningless across stores;
	// empty when no study was counted. Honeypot clustering compares it (an
	// extension of the SPEC record; no UID can be recovered from it).
	StudySet string `json:"study_set,omitempty"`
}

// Caveat is one reason a count is not exact or not summed into totals.
type Caveat struct {
	Kind   string `json:"kind"`             // CaveatCapped, CaveatEstimate, CaveatImplausible or CaveatHoneypot
	Reason string `json:"reason,omitempty"` // what was seen, no patient data (e.g. "NumberOfStudyRelatedInstances 16777216 in one study")
}

// Caveat kinds (SPEC "Result record").
const (
	CaveatCapped      = "capped"      // a server's result limit hit and not sliced away: a lower bound
	CaveatEstimate    = "estimate"    // extrapolated from a sample
	CaveatImplausible = "implausible" // beyond the plausibility bounds: kept apart, never summed
	CaveatHoneypot    = "honeypot"    // a known honeypot fingerprint, or one of a cluster serving identical study sets
)

// Web is one HTTP front end of the archive.
type Web struct {
	URL       string `json:"url"`
	Product   string `json:"product"`
	Version   string `json:"version"`
	Auth      Auth   `json:"auth"`
	Studies   int64  `json:"studies"`
	Instances int64  `json:"instances"`
	DICOMweb  bool   `json:"dicomweb"` // a DICOMweb (PS3.18) endpoint answered
}

// Level returns the result's exposure level: LevelClosed when the record
// has no Exposure.
func (r *Result) Level() Level {
	if r.Exposure == nil {
		return LevelClosed
	}
	return r.Exposure.Level
}

// Sanitize makes r safe to store and print: every string that may have come
// from a server is stripped of control and format characters, made valid
// UTF-8, trimmed of surrounding spaces and capped (MaxAETitle and the other
// Max constants), negative counts become 0, and Exposure.Modalities keeps
// only PS3.3's defined terms (any other key counts as ModalityOther) and at
// most MaxModalities keys (the largest counts).
//
// Sanitize never writes through r's pointers, maps or slices: it replaces
// them with sanitized copies, so sanitizing a shallow copy of a Result
// leaves the original untouched. It is idempotent.
func (r *Result) Sanitize() {
	r.Error = textsafe.Clean(r.Error, MaxError)
	r.Depth = textsafe.Clean(r.Depth, 16)
	if r.DICOM != nil {
		d := *r.DICOM
		if d.Reject != nil {
			rj := *d.Reject
			rj.Meaning = textsafe.Clean(rj.Meaning, MaxError)
			d.Reject = &rj
		}
		d.CalledAE = textsafe.Clean(d.CalledAE, MaxAETitle)
		d.CallingAE = textsafe.Clean(d.CallingAE, MaxAETitle)
		d.ImplementationClassUID = textsafe.Clean(d.ImplementationClassUID, MaxUID)
		d.ImplementationVersion = textsafe.Clean(d.ImplementationVersion, MaxVersion)
		d.Product = textsafe.Clean(d.Product, MaxProduct)
		if d.TLSCert != nil {
			c := *d.TLSCert
			c.Subject = textsafe.Clean(c.Subject, MaxError)
			c.Issuer = textsafe.Clean(c.Issuer, MaxError)
			c.Version = textsafe.Clean(c.Version, MaxVersion)
			d.TLSCert = &c
		}
		r.DICOM = &d
	}
	if r.Exposure != nil {
		e := *r.Exposure
		e.Studies = max(e.Studies, 0)
		e.Instances = max(e.Instances, 0)
		e.Modalities = cleanModalities(e.Modalities)
		e.StudySet = textsafe.Clean(e.StudySet, 16)
		if e.Caveats != nil {
			cs := make([]Caveat, len(e.Caveats))
			for i, c := range e.Caveats {
				cs[i] = Caveat{Kind: textsafe.Clean(c.Kind, 16), Reason: textsafe.Clean(c.Reason, MaxError)}
			}
			e.Caveats = cs
		}
		r.Exposure = &e
	}
	if r.Web != nil {
		ws := make([]Web, len(r.Web))
		for i, w := range r.Web {
			w.URL = textsafe.Clean(w.URL, MaxURL)
			w.Product = textsafe.Clean(w.Product, MaxProduct)
			w.Version = textsafe.Clean(w.Version, MaxVersion)
			w.Studies = max(w.Studies, 0)
			w.Instances = max(w.Instances, 0)
			ws[i] = w
		}
		r.Web = ws
	}
}

// cleanModalities returns a new map with sanitized keys, each one of PS3.3's
// defined terms or ModalityOther (counts of keys that become equal are
// added), no negative counts, and at most MaxModalities keys: the largest
// counts, ties broken by key.
func cleanModalities(m map[string]int64) map[string]int64 {
	if m == nil {
		return nil
	}
	out := make(map[string]int64, min(len(m), MaxModalities))
	for k, n := range m {
		if n <= 0 {
			continue
		}
		if k = Modality(textsafe.Clean(k, MaxModality)); k == "" {
			k = ModalityOther
		}
		out[k] = AddCounts(out[k], n)
	}
	if len(out) <= MaxModalities {
		return out
	}
	keys := make([]string, 0, len(out))
	for k := range out {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if c := cmp.Compare(out[b], out[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	for _, k := range keys[MaxModalities:] {
		delete(out, k)
	}
	return out
}

// AddCounts adds two non-negative counts of a record (studies, instances), saturating at
// math.MaxInt64: the sum of what servers claim cannot wrap.
func AddCounts(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// Status is what happened to the connection to a target.
// The zero Status is invalid and does not encode: every result says what
// happened.
type Status uint8

const (
	StatusOpen     Status = iota + 1 // something accepted the TCP connection
	StatusClosed                     // connection refused
	StatusFiltered                   // no answer before the deadline
	StatusError                      // the probe failed in another way; see Result.Error
	statusEnd
)

func (s Status) String() string {
	switch s {
	case StatusOpen:
		return "open"
	case StatusClosed:
		return "closed"
	case StatusFiltered:
		return "filtered"
	case StatusError:
		return "error"
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// MarshalText implements encoding.TextMarshaler.
func (s Status) MarshalText() ([]byte, error) {
	return enumtext.Marshal(s, StatusOpen, statusEnd, "probe", "status")
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Status) UnmarshalText(b []byte) error {
	return enumtext.Unmarshal(s, b, StatusOpen, statusEnd, "probe", "status")
}

// Association is how the last A-ASSOCIATE-RQ ended (PS3.8 §7.1).
type Association uint8

const (
	AssociationNone     Association = iota // no association answer (not DICOM, or not attempted)
	AssociationAccepted                    // A-ASSOCIATE-AC
	AssociationRejected                    // A-ASSOCIATE-RJ; see DICOM.Reject
	AssociationAborted                     // A-ABORT or the connection dropped
	associationEnd
)

func (a Association) String() string {
	switch a {
	case AssociationNone:
		return "none"
	case AssociationAccepted:
		return "accepted"
	case AssociationRejected:
		return "rejected"
	case AssociationAborted:
		return "aborted"
	}
	return fmt.Sprintf("Association(%d)", uint8(a))
}

// MarshalText implements encoding.TextMarshaler.
func (a Association) MarshalText() ([]byte, error) {
	return enumtext.Marshal(a, AssociationNone, associationEnd, "probe", "association")
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *Association) UnmarshalText(b []byte) error {
	return enumtext.Unmarshal(a, b, AssociationNone, associationEnd, "probe", "association")
}

// AECheck is which AE title the peer enforces, as far as the probe could tell.
type AECheck uint8

const (
	AECheckUnknown AECheck = iota // not determined
	AECheckNone                   // any called and calling AE title accepted
	AECheckCalled                 // the called AE title must match
	AECheckCalling                // the calling AE title must be known
	aeCheckEnd
)

func (c AECheck) String() string {
	switch c {
	case AECheckUnknown:
		return "unknown"
	case AECheckNone:
		return "none"
	case AECheckCalled:
		return "called"
	case AECheckCalling:
		return "calling"
	}
	return fmt.Sprintf("AECheck(%d)", uint8(c))
}

// MarshalText implements encoding.TextMarshaler.
func (c AECheck) MarshalText() ([]byte, error) {
	return enumtext.Marshal(c, AECheckUnknown, aeCheckEnd, "probe", "ae_check")
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *AECheck) UnmarshalText(b []byte) error {
	return enumtext.Unmarshal(c, b, AECheckUnknown, aeCheckEnd, "probe", "ae_check")
}

// Level is the exposure level of a service, ordered from least to most
// exposed: levels compare with < and >.
type Level uint8

const (
	LevelClosed    Level = iota // nothing listening, or filtered
	LevelNotDICOM               // something listens but does not speak DICOM
	LevelProtected              // association refused for every AE tried, or abort on every query
	LevelEcho                   // association accepted, C-ECHO answered, queries refused
	LevelQuery                  // C-FIND answered with studies
	LevelRetrieve               // query, and C-GET/C-MOVE accepted
	levelEnd
)

func (l Level) String() string {
	switch l {
	case LevelClosed:
		return "closed"
	case LevelNotDICOM:
		return "not-dicom"
	case LevelProtected:
		return "protected"
	case LevelEcho:
		return "echo"
	case LevelQuery:
		return "query"
	case LevelRetrieve:
		return "retrieve"
	}
	return fmt.Sprintf("Level(%d)", uint8(l))
}

// MarshalText implements encoding.TextMarshaler.
func (l Level) MarshalText() ([]byte, error) {
	return enumtext.Marshal(l, LevelClosed, levelEnd, "probe", "level")
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (l *Level) UnmarshalText(b []byte) error {
	return enumtext.Unmarshal(l, b, LevelClosed, levelEnd, "probe", "level")
}

// InstancesSource is where Exposure.Instances came from.
type InstancesSource uint8

const (
	InstancesSourceNone      InstancesSource = iota // not counted
	InstancesSourceStudyAttr                        // NumberOfStudyRelatedInstances (0020,1208)
	InstancesSourceSeries                           // NumberOfSeriesRelatedInstances (0020,1209) summed
	InstancesSourceImage                            // IMAGE-level C-FIND responses counted
	InstancesSourceEstimate                         // extrapolated from a sample
	instancesSourceEnd
)

func (s InstancesSource) String() string {
	switch s {
	case InstancesSourceNone:
		return "none"
	case InstancesSourceStudyAttr:
		return "study-attr"
	case InstancesSourceSeries:
		return "series"
	case InstancesSourceImage:
		return "image"
	case InstancesSourceEstimate:
		return "estimate"
	}
	return fmt.Sprintf("InstancesSource(%d)", uint8(s))
}

// MarshalText implements encoding.TextMarshaler.
func (s InstancesSource) MarshalText() ([]byte, error) {
	return enumtext.Marshal(s, InstancesSourceNone, instancesSourceEnd, "probe", "instances_source")
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *InstancesSource) UnmarshalText(b []byte) error {
	return enumtext.Unmarshal(s, b, InstancesSourceNone, instancesSourceEnd, "probe", "instances_source")
}

// Retrieve is what became of the retrieval test (C-GET/C-MOVE).
type Retrieve uint8

const (
	RetrieveUntested Retrieve = iota // not tried
	RetrieveRefused                  // the peer refused C-GET and C-MOVE
	RetrieveAccepted                 // the peer accepted a retrieve request
	RetrieveVerified                 // an instance header came back (--verify-retrieve)
	retrieveEnd
)

func (r Retrieve) String() string {
	switch r {
	case RetrieveUntested:
		return "untested"
	case RetrieveRefused:
		return "refused"
	case RetrieveAccepted:
		return "accepted"
	case RetrieveVerified:
		return "verified"
	}
	return fmt.Sprintf("Retrieve(%d)", uint8(r))
}

// MarshalText implements encoding.TextMarshaler.
func (r Retrieve) MarshalText() ([]byte, error) {
	return enumtext.Marshal(r, RetrieveUntested, retrieveEnd, "probe", "retrieve")
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Retrieve) UnmarshalText(b []byte) error {
	return enumtext.Unmarshal(r, b, RetrieveUntested, retrieveEnd, "probe", "retrieve")
}

// Auth is how a web front end is protected.
type Auth uint8

const (
	AuthUnknown      Auth = iota // not determined
	AuthNone                     // open without credentials
	AuthBasic                    // asks for credentials
	AuthDefaultCreds             // the product's default credentials worked (--default-creds)
	authEnd
)

func (a Auth) String() string {
	switch a {
	case AuthUnknown:
		return "unknown"
	case AuthNone:
		return "none"
	case AuthBasic:
		return "basic"
	case AuthDefaultCreds:
		return "default-creds"
	}
	return fmt.Sprintf("Auth(%d)", uint8(a))
}

// MarshalText implements encoding.TextMarshaler.
func (a Auth) MarshalText() ([]byte, error) {
	return enumtext.Marshal(a, AuthUnknown, authEnd, "probe", "auth")
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *Auth) UnmarshalText(b []byte) error {
	return enumtext.Unmarshal(a, b, AuthUnknown, authEnd, "probe", "auth")
}
