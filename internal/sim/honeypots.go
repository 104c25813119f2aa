package sim

import (
	"strconv"

	"github.com/pacswatch/pacswatch/internal/dicom/scp"
	"github.com/pacswatch/pacswatch/internal/honeypot"
)

// Identities of the honeypot personalities on the wire (PS3.7 Annex D.3.3.2), as the real ones
// send them: pynetdicom 2.0's for DICOMHawk, go-dicom's for dicompot (the real dicompot sends
// none, which scp cannot; honeypot's data file knows both).
const (
	pynetdicomUID, pynetdicomVersion = "1.2.826.0.1.3680043.9.3811.2.0.0", "PYNETDICOM_200"
	goDICOMUID, goDICOMVersion       = "1.2.826.0.1.3680043.9.7133.1.1", "GODICOM_1_1"
	goNetDICOMMaxPDU                 = 4 << 20
	// hawkStudies is the size of DICOMHawk's generated archive.
	hawkStudies = 10
)

// ClusterSize is how many addresses a honeypot cluster of a fleet has (the last one more, when
// the members do not divide evenly): above honeypot's default threshold.
const ClusterSize = honeypot.DefaultMinStudyCluster + 1

// honeypotBehaviour sets what b's honeypot personality decides; it reports whether p is one.
func honeypotBehaviour(p Personality, b *behaviour) bool {
	switch p {
	case PersonalityDICOMHawk:
		b.aeTitle, b.computed = "PYNETDICOM", false
		b.implUID, b.implVersion = pynetdicomUID, pynetdicomVersion
	case PersonalityDicompot:
		b.aeTitle, b.computed, b.maxPDU = "radiant", false, goNetDICOMMaxPDU
		b.implUID, b.implVersion = goDICOMUID, goDICOMVersion
	case PersonalityHoneypotCluster:
		b.aeTitle, b.computed = "ORTHANC", true
	default:
		return false
	}
	return true
}

// treeOf returns the archive of s: DICOMHawk's ten single-instance CT studies, or the virtual
// tree of s.Studies studies from s.Seed.
func treeOf(s Spec) *scp.Tree {
	if s.Personality != PersonalityDICOMHawk {
		return scp.NewVirtualTree(s.Seed, s.Studies)
	}
	t := &scp.Tree{}
	root := "2.25." + strconv.FormatUint(s.Seed%1_000_000_007+1, 10) + "."
	for i := range hawkStudies {
		uid := root + strconv.Itoa(i+1)
		t.Studies = append(t.Studies, scp.Study{
			UID: uid, Date: "20240610", PatientName: "FAKE^HAWK" + strconv.Itoa(i+1), PatientID: "FAKE-HAWK-" + strconv.Itoa(i+1),
			Series: []scp.Series{{UID: uid + ".1", Modality: "CT",
				Instances: []scp.Instance{{SOPUID: uid + ".1.1", SOPClassUID: "1.2.840.10008.5.1.4.1.1.2"}}}},
		})
	}
	return t
}

// clusters gives the honeypot cluster members of specs (sorted by address) their clusters:
// ClusterSize members in address order share the first one's seed and archive size, and each
// learns its cluster's size; fewer than ClusterSize left over join the last cluster.
func clusters(specs []Spec) {
	var members []int
	for i := range specs {
		if specs[i].Personality == PersonalityHoneypotCluster {
			members = append(members, i)
		}
	}
	for start := 0; start < len(members); {
		end := start + ClusterSize
		if len(members)-end < ClusterSize {
			end = len(members)
		}
		first := specs[members[start]]
		for _, i := range members[start:end] {
			specs[i].Seed, specs[i].Studies, specs[i].Cluster = first.Seed, first.Studies, end-start
		}
		start = end
	}
}

// honeypotTruth says whether a perfect scanner, with honeypot's fingerprints and default
// thresholds, tells that s is a honeypot: every DICOMHawk and dicompot, and the members of a
// cluster large enough.
func honeypotTruth(s Spec) bool {
	switch s.Personality {
	case PersonalityDICOMHawk, PersonalityDicompot:
		return true
	case PersonalityHoneypotCluster:
		return s.Cluster >= honeypot.DefaultMinStudyCluster
	}
	return false
}
