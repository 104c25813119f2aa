package honeypot_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/pacswatch/pacswatch/internal/honeypot"
	"github.com/pacswatch/pacswatch/internal/probe"
)

// TestFingerprintsFile: the data file names DICOMHawk and dicompot, each row with a reason and
// a source.
func TestFingerprintsFile(t *testing.T) {
	names := map[string]bool{}
	for _, fp := range honeypot.Fingerprints() {
		names[fp.Name] = true
		if fp.Reason == "" || !strings.Contains(fp.Source, "/") {
			t.Errorf("%s: reason %q, source %q; want both, the source naming a repository", fp.Name, fp.Reason, fp.Source)
		}
	}
	if !names["DICOMHawk"] || !names["dicompot"] {
		t.Errorf("fingerprints of %v, want DICOMHawk and dicompot", names)
	}
}

// accepted is a result of an accepted association with the given identity and counts.
func accepted(uid, version string, maxPDU uint32, studies int64, mods map[string]int64) probe.Result {
	return probe.Result{IP: netip.MustParseAddr("198.51.100.7"), Port: 11112, Status: probe.StatusOpen,
		DICOM:    &probe.DICOM{Association: probe.AssociationAccepted, ImplementationClassUID: uid, ImplementationVersion: version, MaxPDU: maxPDU},
		Exposure: &probe.Exposure{Level: probe.LevelQuery, Studies: studies, StudiesExact: true, Instances: studies, Modalities: mods}}
}

func TestMatch(t *testing.T) {
	const pyUID, goUID = "1.2.826.0.1.3680043.9.3811.2.0.0", "1.2.826.0.1.3680043.9.7133.1.1"
	ct10 := map[string]int64{"CT": 10}
	rejected := accepted("", "", 4194304, 0, nil)
	rejected.DICOM.Association = probe.AssociationRejected
	for _, tc := range []struct {
		name string
		r    probe.Result
		want string // the fingerprint's name, "" for none
	}{
		{"dicompot: no implementation UID, 4 MiB PDUs", accepted("", "", 4194304, 3, nil), "dicompot"},
		{"dicompot: go-dicom's identity", accepted(goUID, "GODICOM_1_1", 16384, 0, nil), "dicompot"},
		{"DICOMHawk: pynetdicom, ten CT studies", accepted(pyUID, "PYNETDICOM_200", 16382, 10, ct10), "DICOMHawk"},
		{"pynetdicom with eleven CT studies", accepted(pyUID, "PYNETDICOM_200", 16382, 11, map[string]int64{"CT": 11}), ""},
		{"pynetdicom with ten studies of two modalities", accepted(pyUID, "PYNETDICOM_200", 16382, 10, map[string]int64{"CT": 9, "MR": 1}), ""},
		{"no implementation UID, other PDU size", accepted("", "", 16384, 3, nil), ""},
		{"a rejected association shows no AC", rejected, ""},
		{"Orthanc", accepted("1.2.276.0.7230010.3.0.3.6.7", "OFFIS_DCMTK_367", 16384, 10, ct10), ""},
	} {
		fp, ok := honeypot.Match(&tc.r)
		if got := map[bool]string{true: fp.Name}[ok]; got != tc.want {
			t.Errorf("%s: matched %q, want %q", tc.name, got, tc.want)
		}
		if ok && !strings.Contains(honeypot.FingerprintCaveat(fp).Reason, tc.want) {
			t.Errorf("%s: caveat %q does not name %s", tc.name, honeypot.FingerprintCaveat(fp).Reason, tc.want)
		}
	}
}
