// Package honeypot tells DICOM honeypots apart from real archives after a scan, so that a
// census's totals leave them out and show them apart (SPEC "Result record": the caveat
// "honeypot", with its reason; SPEC "report").
//
// Two kinds of evidence flag a host:port:
//   - a known honeypot's fingerprint (fingerprints.csv: DICOMHawk, dicompot, each row with its
//     source), matched against what the A-ASSOCIATE-AC (PS3.7 Annex D.3.3.2, PS3.8 §9.3.3) and
//     the C-FIND answers showed;
//   - fleet-level clusters: hosts that serve identical study sets (the same keyed digest of
//     their Study Instance UIDs, probe.Exposure.StudySet, and the same counts), or that share an
//     identity (implementation class UID, version name, maximum PDU) and a TLS certificate, beyond
//     a threshold of distinct addresses. Real archives hold their own studies and certificates;
//     honeypot farms are deployed from one image (a 2025 survey found 44 % of exposed servers in
//     clusters of identical configuration; a 2026 one, 49 of 88 answering cloud hosts honeypots).
//
// Flag reads a scan's run (its shards together, for clusters that cross shards) and writes the
// caveats to the store (store.Store.AddCaveats); the store then leaves the flagged ports out of
// every total (store.ApartOf).
package honeypot

import (
	_ "embed"
	"encoding/csv"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/pacswatch/pacswatch/internal/probe"
)

//go:embed fingerprints.csv
var fingerprintsCSV string

// None in a fingerprint's identity field means the value must be absent.
const None = "(none)"

// Fingerprint is one known honeypot's signature. Empty conditions match anything.
type Fingerprint struct {
	Name string // the honeypot, e.g. "DICOMHawk"
	// ImplementationClassUID and ImplementationVersion match the A-ASSOCIATE-AC's: exactly, as a
	// prefix when they end in "*", or absent when None.
	ImplementationClassUID, ImplementationVersion string
	MaxPDU                                        uint32           // the maximum PDU length announced; 0: any
	Studies                                       int64            // the study count; 0: any
	Modalities                                    map[string]int64 // studies per modality, exactly; nil: any
	Reason                                        string           // what the signature is, for the caveat
	Source                                        string           // where it comes from
}

// Fingerprints returns the known honeypots' fingerprints, in the data file's order.
func Fingerprints() []Fingerprint { return slices.Clone(fingerprints()) }

var fingerprints = sync.OnceValue(func() []Fingerprint {
	fps, err := parseFingerprints(fingerprintsCSV)
	if err != nil {
		panic(err) // the embedded file is checked by the tests
	}
	return fps
})

// parseFingerprints reads the data file: '#' comment lines, a header, then one row per
// fingerprint.
func parseFingerprints(text string) ([]Fingerprint, error) {
	var lines []string
	for l := range strings.Lines(text) {
		if !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	rd := csv.NewReader(strings.NewReader(strings.Join(lines, "")))
	rows, err := rd.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("honeypot: fingerprints: %w", err)
	}
	if len(rows) < 2 || strings.Join(rows[0], ",") != "name,implementation_class_uid,implementation_version,max_pdu,studies,modalities,reason,source" {
		return nil, fmt.Errorf("honeypot: fingerprints: no header, or an unknown one")
	}
	var out []Fingerprint
	for i, row := range rows[1:] {
		fp := Fingerprint{Name: row[0], ImplementationClassUID: row[1], ImplementationVersion: row[2], Reason: row[6], Source: row[7]}
		if row[3] != "" {
			n, err := strconv.ParseUint(row[3], 10, 32)
			if err != nil {
				return nil, fmt.Errorf("honeypot: fingerprints row %d: max_pdu %q", i+2, row[3])
			}
			fp.MaxPDU = uint32(n)
		}
		if row[4] != "" {
			n, err := strconv.ParseInt(row[4], 10, 64)
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("honeypot: fingerprints row %d: studies %q", i+2, row[4])
			}
			fp.Studies = n
		}
		if row[5] != "" {
			fp.Modalities = map[string]int64{}
			for _, kv := range strings.Split(row[5], ";") {
				k, v, ok := strings.Cut(kv, "=")
				n, err := strconv.ParseInt(v, 10, 64)
				if !ok || err != nil || k == "" {
					return nil, fmt.Errorf("honeypot: fingerprints row %d: modalities %q", i+2, row[5])
				}
				fp.Modalities[k] = n
			}
		}
		if fp.Name == "" || fp.Reason == "" || fp.Source == "" {
			return nil, fmt.Errorf("honeypot: fingerprints row %d: name, reason and source are required", i+2)
		}
		if fp.ImplementationClassUID == "" && fp.ImplementationVersion == "" && fp.MaxPDU == 0 {
			return nil, fmt.Errorf("honeypot: fingerprints row %d: no identity condition", i+2)
		}
		out = append(out, fp)
	}
	return out, nil
}

// Matches reports whether r, a result whose association was accepted, shows fp.
func (fp Fingerprint) Matches(r *probe.Result) bool {
	d := r.DICOM
	if d == nil || d.Association != probe.AssociationAccepted {
		return false
	}
	if !matchText(fp.ImplementationClassUID, d.ImplementationClassUID) || !matchText(fp.ImplementationVersion, d.ImplementationVersion) {
		return false
	}
	if fp.MaxPDU != 0 && d.MaxPDU != fp.MaxPDU {
		return false
	}
	if fp.Studies == 0 && fp.Modalities == nil {
		return true
	}
	e := r.Exposure
	if e == nil || fp.Studies != 0 && e.Studies != fp.Studies {
		return false
	}
	if fp.Modalities != nil {
		if len(e.Modalities) != len(fp.Modalities) {
			return false
		}
		for k, n := range fp.Modalities {
			if e.Modalities[k] != n {
				return false
			}
		}
	}
	return true
}

func matchText(pattern, v string) bool {
	switch {
	case pattern == "":
		return true
	case pattern == None:
		return v == ""
	case strings.HasSuffix(pattern, "*"):
		return strings.HasPrefix(v, strings.TrimSuffix(pattern, "*"))
	}
	return v == pattern
}

// Match returns the first known fingerprint r shows.
func Match(r *probe.Result) (Fingerprint, bool) {
	for _, fp := range fingerprints() {
		if fp.Matches(r) {
			return fp, true
		}
	}
	return Fingerprint{}, false
}

// FingerprintCaveat is the caveat of a result that shows fp.
func FingerprintCaveat(fp Fingerprint) probe.Caveat {
	return probe.Caveat{Kind: probe.CaveatHoneypot, Reason: "known honeypot fingerprint (" + fp.Name + "): " + fp.Reason}
}
