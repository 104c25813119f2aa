package sim

import (
	"crypto/tls"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/scp"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/probe/dicomprobe"
)

// Spec describes one host of a fleet: where it listens, how it behaves and what it holds.
type Spec struct {
	// Addr is the host's address and port. In Fleet.Add, a zero Addr is a free address of the
	// fleet's CIDR, and a zero port one of its ports, drawn at random.
	Addr        netip.AddrPort
	Personality Personality
	// Hostile is the misbehaviour of a PersonalityHostile host (scp.HostileNone: one drawn
	// from Seed). Other personalities ignore it.
	Hostile scp.Hostile
	// Studies is the size of the host's archive (scp.NewVirtualTree(Seed, Studies)).
	// Hosts that do not speak DICOM hold none.
	Studies int
	// Group is a free label, such as a region, carried to the truth.
	Group string
	// Seed draws the archive and the details of the personality: AE titles, the way services are
	// refused, result caps.
	Seed uint64
	// Cluster is the number of addresses of a PersonalityHoneypotCluster host's cluster, which
	// serve the same archive (same Seed and Studies); the fleet's plan sets it.
	Cluster int
}

// Host is the truth about one host:port: what a perfect scanner, guessing called AE titles from
// the built-in dictionary (at most Truth.MaxAETries per target), reports for it. The counts are
// those of its archive when the scanner can read it, else zero.
//
// A hostile host makes no other claim than Hostile: whatever it exposes, a scanner must end it
// in a classified status within its deadline.
type Host struct {
	Addr        netip.AddrPort `json:"addr"`
	Personality Personality    `json:"personality"`
	Hostile     string         `json:"hostile,omitempty"` // the scp.Hostile mode of a hostile host
	Group       string         `json:"group,omitempty"`

	Level    probe.Level    `json:"level,omitzero"`
	AECheck  probe.AECheck  `json:"ae_check,omitzero"`
	CalledAE string         `json:"called_ae,omitempty"` // the called AE title the host accepts, where it checks it and a scanner can find it
	TLS      bool           `json:"tls"`
	Retrieve probe.Retrieve `json:"retrieve,omitzero"`

	Studies    int64            `json:"studies"`
	Instances  int64            `json:"instances"`
	Modalities map[string]int64 `json:"modalities,omitempty"` // studies per modality

	// Honeypot: a scanner that flags honeypots (package honeypot) flags this one, and its
	// counts are in no total.
	Honeypot bool `json:"honeypot,omitempty"`
}

// A behaviour is everything a Spec's personality and seed decide about its server.
type behaviour struct {
	aeTitle        string
	checkCalled    bool
	allowedCalling []string
	refused        scp.Services
	refusal        scp.Refusal
	computed       bool
	chatty         bool
	limitFind      int
	latency        time.Duration
	tls            bool
	hostile        scp.Hostile
	implUID        string // identity on the wire; "" for scp's
	implVersion    string
	maxPDU         uint32 // 0 for scp's default
}

// Limits of the archives a fleet draws.
const (
	// maxUncomputed is the largest archive a PersonalityRetrieve host serves without computed
	// counts: a scanner then spends one C-FIND per study and one per series (about 3 per study)
	// to count its instances, and a scanner's query budget is 2,000 by default.
	maxUncomputed = 500
	// defaultMaxStudies and defaultMaxUncomputedStudies bound the archive sizes drawn when no
	// Group sets them: log-uniform from 1.
	defaultMaxStudies           = 1000
	defaultMaxUncomputedStudies = 150
	// capFind is the C-FIND result cap of the open archives that have one, as Orthanc's
	// LimitFindResults; archives smaller than capMin get none.
	capFind, capMin = 100, 150
	// maxStudiesPerHost bounds one archive.
	maxStudiesPerHost = 1 << 22
)

// hostileModes are the scp.Hostile modes, in order.
var hostileModes = func() []scp.Hostile {
	var hs []scp.Hostile
	for h := scp.SilentAfterConnect; h <= scp.NoReleaseReply; h++ {
		hs = append(hs, h)
	}
	return hs
}()

// behave draws what s's personality leaves open from s.Seed. dict is the AE dictionary and
// tries the number of guesses a scanner makes: a dictionary AE is one it reaches on s's port.
func behave(s Spec, dict dicomprobe.Dict, tries int) behaviour {
	r := rand.New(rand.NewPCG(s.Seed, uint64(s.Personality)<<32|0x5111))
	b := behaviour{aeTitle: "PACS", computed: true}
	dictAE := func() string {
		cands := dict.Candidates(s.Addr.Port(), tries)[1:] // [0] is GenericAE, which any open host accepts
		return cands[r.IntN(len(cands))]
	}
	refusal := func() scp.Refusal {
		switch n := r.IntN(10); {
		case n < 6:
			return scp.RefuseAbort // Orthanc's way
		case n < 8:
			return scp.RefuseStatus
		}
		return scp.RefuseContext
	}
	if honeypotBehaviour(s.Personality, &b) {
		return b
	}
	switch s.Personality {
	case PersonalityOpen:
		b.aeTitle = "ORTHANC"
		b.chatty = r.IntN(2) == 0
		if s.Studies > capMin && r.IntN(3) == 0 {
			b.limitFind = capFind
		}
	case PersonalityCalledDict:
		b.aeTitle, b.checkCalled = dictAE(), true
	case PersonalityCalledSecret:
		b.aeTitle, b.checkCalled = secretAE(r, dict), true
	case PersonalityCalling:
		b.allowedCalling = []string{fmt.Sprintf("MODALITY%02d", r.IntN(100))}
		if r.IntN(2) == 0 {
			b.aeTitle, b.checkCalled = dictAE(), true
		}
	case PersonalityEchoOnly:
		b.aeTitle = "ORTHANC"
		b.refused = scp.Services{Find: true, Get: true, Move: true}
		b.refusal = refusal()
	case PersonalityQueryOnly:
		b.refused = scp.Services{Get: true, Move: true}
		b.refusal = refusal()
	case PersonalityRetrieve:
		b.aeTitle = "DCMQRSCP"
		b.computed = s.Studies > maxUncomputed
	case PersonalityTLS:
		b.tls = true
	case PersonalitySlow:
		b.latency = -1 // the fleet's Latency
	case PersonalityNotDICOM:
		b.hostile = scp.NotDICOM
		if r.IntN(3) == 0 {
			b.hostile = scp.SSHBanner
		}
	case PersonalityHostile:
		b.hostile = s.Hostile
		if b.hostile == scp.HostileNone {
			b.hostile = hostileModes[r.IntN(len(hostileModes))]
		}
	}
	return b
}

// secretAE returns an AE title that no dictionary has.
func secretAE(r *rand.Rand, dict dicomprobe.Dict) string {
	for {
		t := fmt.Sprintf("PACS_%08X", r.Uint32())
		if t != dicomprobe.GenericAE && !slices.ContainsFunc(dict, func(ae dicomprobe.AE) bool { return ae.Title == t }) {
			return t
		}
	}
}

// server returns the scp configuration of b for tree.
func (b behaviour) server(tree *scp.Tree, latency, timeout time.Duration, cert *tls.Config) scp.Config {
	cfg := scp.Config{
		AETitle:        b.aeTitle,
		CheckCalled:    b.checkCalled,
		AllowedCalling: b.allowedCalling,
		Refused:        b.refused,
		Refusal:        b.refusal,
		Tree:           tree,
		ComputedCounts: b.computed,
		Chatty:         b.chatty,
		LimitFind:      b.limitFind,
		Hostile:        b.hostile,
		Timeout:        timeout,
		MaxPDU:         b.maxPDU,

		ImplementationClassUID:    b.implUID,
		ImplementationVersionName: b.implVersion,
	}
	if b.latency < 0 {
		cfg.Latency = latency
	}
	if b.tls {
		cfg.TLS = cert
	}
	return cfg
}

// expect returns what a perfect scanner reports for s, served as b with tree.
func expect(s Spec, b behaviour, tree *scp.Tree) Host {
	h := Host{Addr: s.Addr, Personality: s.Personality, Group: s.Group, Honeypot: honeypotTruth(s)}
	switch s.Personality {
	case PersonalityHostile:
		h.Hostile = b.hostile.String()
		return h
	case PersonalityNotDICOM:
		h.Level = probe.LevelNotDICOM
		return h
	case PersonalityCalledSecret:
		h.Level, h.AECheck = probe.LevelProtected, probe.AECheckCalled
		return h
	case PersonalityCalling:
		h.Level, h.AECheck = probe.LevelProtected, probe.AECheckCalling
		return h
	}
	h.AECheck, h.TLS = probe.AECheckNone, b.tls
	if b.checkCalled {
		h.AECheck, h.CalledAE = probe.AECheckCalled, b.aeTitle
	}
	h.Level = probe.LevelEcho
	if b.refused.Find || tree.Len() == 0 {
		return h // queries refused, or nothing to find: retrieval stays untested
	}
	studies, _, instances := tree.Counts()
	h.Studies, h.Instances = int64(studies), int64(instances)
	h.Modalities = map[string]int64{}
	for i := range tree.Len() {
		st := tree.Study(i)
		for _, m := range st.Modalities() {
			h.Modalities[m]++
		}
	}
	h.Level, h.Retrieve = probe.LevelRetrieve, probe.RetrieveAccepted
	if b.refused.Get && b.refused.Move {
		h.Level, h.Retrieve = probe.LevelQuery, probe.RetrieveRefused
	}
	return h
}

// logUniform draws an integer from [lo, hi], uniform in its logarithm: most archives are small,
// a few large.
func logUniform(r *rand.Rand, lo, hi int) int {
	v := math.Exp(math.Log(float64(lo)) + r.Float64()*(math.Log(float64(hi)+1)-math.Log(float64(lo))))
	return min(max(int(v), lo), hi)
}

// defaultStudies draws the size of an archive of personality p when no Group sets it.
func defaultStudies(r *rand.Rand, p Personality) int {
	switch p {
	case PersonalityNotDICOM:
		return 0
	case PersonalityRetrieve, PersonalityDicompot:
		return logUniform(r, 1, defaultMaxUncomputedStudies)
	case PersonalityDICOMHawk:
		return hawkStudies
	}
	return logUniform(r, 1, defaultMaxStudies)
}

// split divides total studies among n archives with random, skewed shares, each at least 1:
// the result adds up to max(total, n).
func split(r *rand.Rand, total, n int) []int {
	if n == 0 {
		return nil
	}
	w := make([]float64, n)
	sum := 0.0
	for i := range w {
		w[i] = math.Exp(1.2 * r.NormFloat64())
		sum += w[i]
	}
	out := make([]int, n)
	left := max(total, n) - n
	got, big := 0, 0
	for i := range out {
		out[i] = 1 + int(float64(left)*w[i]/sum)
		got += out[i]
		if out[i] > out[big] {
			big = i
		}
	}
	out[big] += max(total, n) - got // the rounding remainder, to the largest
	return out
}
