package sim

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/pacswatch/pacswatch/internal/enumtext"
)

// Personality is how a simulated host behaves. Every personality but PersonalityNotDICOM and
// PersonalityHostile is a DICOM SCP holding a synthetic archive.
type Personality uint8

// Personalities. What a perfect scanner reports for each is in Host.
const (
	// PersonalityOpen checks no AE title and answers every service: C-ECHO, C-FIND with the
	// computed counts (PS3.4 §C.3.4), C-GET and C-MOVE, as an Orthanc configured to allow
	// everything does; some cap their C-FIND answers as Orthanc's LimitFindResults does.
	PersonalityOpen Personality = iota + 1
	// PersonalityCalledDict rejects any called AE title but its own (A-ASSOCIATE-RJ source 1,
	// reason 7, PS3.8 §9.3.4), which is in the AE dictionary among the first guesses for its
	// port; with the right title it is open.
	PersonalityCalledDict
	// PersonalityCalledSecret rejects any called AE title but its own, which no dictionary has.
	PersonalityCalledSecret
	// PersonalityCalling accepts only known calling AE titles (reason 3); half of them check
	// the called AE title (a dictionary one) first, as a strict Orthanc does.
	PersonalityCalling
	// PersonalityEchoOnly accepts the association and answers C-ECHO, but refuses C-FIND,
	// C-GET and C-MOVE: with an A-ABORT as Orthanc does for an unknown AE, a failure status,
	// or by refusing the presentation contexts.
	PersonalityEchoOnly
	// PersonalityQueryOnly answers C-FIND but refuses C-GET and C-MOVE.
	PersonalityQueryOnly
	// PersonalityRetrieve answers C-FIND without computed counts, as dcmqrscp does (instances
	// are counted with SERIES- and IMAGE-level queries), and accepts C-GET and C-MOVE (an
	// unknown move destination gets 0xA801). An archive too large for a scanner's query budget
	// (over maxUncomputed studies) computes its counts.
	PersonalityRetrieve
	// PersonalityTLS is an open archive that speaks DICOM over TLS only (PS3.15 Annex B.1),
	// with a self-signed certificate.
	PersonalityTLS
	// PersonalityNotDICOM listens but does not speak DICOM: it answers like a web server, or
	// sends an SSH banner.
	PersonalityNotDICOM
	// PersonalitySlow is an open archive that thinks for Config.Latency before each
	// association reply and before the first response to each request.
	PersonalitySlow
	// PersonalityHostile breaks the protocol in one of the ways of scp.Hostile.
	PersonalityHostile
	// PersonalityDICOMHawk is a DICOMHawk honeypot: pynetdicom's identity, open to anyone, with
	// the ten single-instance CT studies (fake patients) it generates. Honeypots are no part of
	// DefaultMix: a mix names them.
	PersonalityDICOMHawk
	// PersonalityDicompot is a dicompot honeypot: go-netdicom's identity and 4 MiB PDUs, AE
	// title "radiant", open to anyone, with a small archive without computed counts.
	PersonalityDicompot
	// PersonalityHoneypotCluster is a member of a honeypot farm: open archives deployed from one
	// image, each cluster's members serving the same studies (same seed, same size). A fleet's
	// members are split into clusters of ClusterSize addresses in address order (a remainder
	// joins the last cluster).
	PersonalityHoneypotCluster
	personalityEnd
)

var personalityNames = [...]string{
	PersonalityOpen:         "open",
	PersonalityCalledDict:   "called-dict",
	PersonalityCalledSecret: "called-secret",
	PersonalityCalling:      "calling",
	PersonalityEchoOnly:     "echo-only",
	PersonalityQueryOnly:    "query-only",
	PersonalityRetrieve:     "retrieve",
	PersonalityTLS:          "tls",
	PersonalityNotDICOM:     "not-dicom",
	PersonalitySlow:         "slow",
	PersonalityHostile:      "hostile",

	PersonalityDICOMHawk:       "dicomhawk",
	PersonalityDicompot:        "dicompot",
	PersonalityHoneypotCluster: "honeypot-cluster",
}

// Personalities returns every personality, in order.
func Personalities() []Personality {
	ps := make([]Personality, 0, personalityEnd-1)
	for p := PersonalityOpen; p < personalityEnd; p++ {
		ps = append(ps, p)
	}
	return ps
}

func (p Personality) String() string {
	if p >= PersonalityOpen && p < personalityEnd {
		return personalityNames[p]
	}
	return fmt.Sprintf("Personality(%d)", uint8(p))
}

// MarshalText implements encoding.TextMarshaler.
func (p Personality) MarshalText() ([]byte, error) {
	return enumtext.Marshal(p, PersonalityOpen, personalityEnd, "sim", "personality")
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Personality) UnmarshalText(b []byte) error {
	return enumtext.Unmarshal(p, b, PersonalityOpen, personalityEnd, "sim", "personality")
}

// ParsePersonality parses a personality's name.
func ParsePersonality(s string) (Personality, error) {
	return enumtext.Parse(s, PersonalityOpen, personalityEnd, "sim", "personality")
}

// Readable reports whether a perfect scanner reads the archive of a host of personality p and
// counts it in a report's totals: honeypots are read, but left out.
func (p Personality) Readable() bool { return p.readable() }

// readable reports whether a perfect scanner reads the archive of a host of personality p.
func (p Personality) readable() bool {
	switch p {
	case PersonalityOpen, PersonalityCalledDict, PersonalityQueryOnly, PersonalityRetrieve, PersonalityTLS, PersonalitySlow:
		return true
	}
	return false
}

// Honeypot reports whether hosts of personality p are honeypots.
func (p Personality) Honeypot() bool {
	return p == PersonalityDICOMHawk || p == PersonalityDicompot || p == PersonalityHoneypotCluster
}

// DefaultMix is the share of each personality in a fleet, in percent: about a third of the hosts
// expose their archive, and every hostile mode appears in a fleet of 2,000.
func DefaultMix() map[Personality]int {
	return map[Personality]int{
		PersonalityOpen:         20,
		PersonalityCalledDict:   10,
		PersonalityCalledSecret: 8,
		PersonalityCalling:      7,
		PersonalityEchoOnly:     15,
		PersonalityQueryOnly:    10,
		PersonalityRetrieve:     12,
		PersonalityTLS:          5,
		PersonalityNotDICOM:     6,
		PersonalitySlow:         6,
		PersonalityHostile:      1,
	}
}

// ParseMix parses a --mix value, "name=weight,...", over DefaultMix: the weights named replace
// the default ones ("hostile=0" leaves hostile hosts out).
func ParseMix(s string) (map[Personality]int, error) {
	mix := DefaultMix()
	if strings.TrimSpace(s) == "" {
		return mix, nil
	}
	for _, item := range strings.Split(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return nil, fmt.Errorf("sim: mix item %q: want name=weight", item)
		}
		p, err := ParsePersonality(strings.TrimSpace(name))
		if err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n < 0 || n > 1_000_000 {
			return nil, fmt.Errorf("sim: mix weight of %s: want an integer from 0 to 1000000", p)
		}
		mix[p] = n
	}
	return mix, nil
}

// FormatMix formats a mix as ParseMix reads it, in personality order.
func FormatMix(mix map[Personality]int) string {
	var parts []string
	for _, p := range slices.Sorted(maps.Keys(mix)) {
		parts = append(parts, fmt.Sprintf("%s=%d", p, mix[p]))
	}
	return strings.Join(parts, ",")
}
