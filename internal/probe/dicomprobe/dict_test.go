package dicomprobe

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestDataInSyncWithShared(t *testing.T) {
	for _, name := range []string{"ae-titles.csv", "implementation-uids.csv"} {
		shared, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "shared", "data", name))
		if os.IsNotExist(err) {
			t.Skipf("../shared/data/%s not beside the repository: nothing to compare", name)
		}
		if err != nil {
			t.Fatal(err)
		}
		ours, err := dataFS.ReadFile("data/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(shared, ours) {
			t.Errorf("data/%s differs from ../shared/data/%s: copy it again", name, name)
		}
	}
}

func TestDefaultDict(t *testing.T) {
	d := DefaultDict()
	var titles []string
	for _, ae := range d {
		titles = append(titles, ae.Title)
		if err := ValidAE(ae.Title); err != nil {
			t.Errorf("dictionary holds an invalid AE: %v", err)
		}
	}
	for _, want := range []string{"ORTHANC", "DCM4CHEE", "CONQUESTSRV1", "DICOOGLE-STORAGE", "ECHOSCU", "FINDSCU"} {
		if !slices.Contains(titles, want) {
			t.Errorf("dictionary lacks %s: %v", want, titles)
		}
	}
	// SCU tool titles come after every server title.
	if slices.Index(titles, "ECHOSCU") < slices.Index(titles, "PYNETDICOM") {
		t.Errorf("SCU titles should come last: %v", titles)
	}
}

// TestDefaultCandidatesReachPrevalent checks issue 15's order: the default titles of Orthanc,
// Conquest, OsiriX, Dicoogle, dcm4chee and pynetdicom are all tried within the default
// --max-ae-tries, on every port (before, dcm4chee's IOCM_* titles filled the tries on 11112 and
// 104, and Conquest's was never reached).
func TestDefaultCandidatesReachPrevalent(t *testing.T) {
	d := DefaultDict()
	for _, port := range []uint16{104, 11112, 4242, 2761, 2762, 5678, 6666, 8080, 40000} {
		got := d.Candidates(port, New(Config{}).cfg.MaxAETries)
		if len(got) != 8 || got[0] != GenericAE {
			t.Errorf("port %d: %v, want 8 titles, %s first", port, got, GenericAE)
		}
		for _, want := range []string{"ORTHANC", "CONQUESTSRV1", "OSIRIX", "DICOOGLE-STORAGE", "DCM4CHEE", "PYNETDICOM"} {
			if !slices.Contains(got, want) {
				t.Errorf("port %d: %s not among the first %d tries %v", port, want, len(got), got)
			}
		}
	}
	// The port's own product first among them.
	for port, first := range map[uint16]string{4242: "ORTHANC", 5678: "CONQUESTSRV1", 6666: "DICOOGLE-STORAGE", 104: "ORTHANC"} {
		if got := d.Candidates(port, 2); got[1] != first {
			t.Errorf("port %d: %v, want %s right after %s", port, got, first, GenericAE)
		}
	}
}

func TestCandidates(t *testing.T) {
	d := Dict{{Title: "A", Ports: []uint16{104}}, {Title: "B", Ports: []uint16{4242}}, {Title: "C"}, {Title: "ANY-SCP"}}
	for _, tc := range []struct {
		port uint16
		max  int
		want []string
	}{
		{4242, 8, []string{"ANY-SCP", "B", "A", "C"}},
		{104, 8, []string{"ANY-SCP", "A", "B", "C"}},
		{104, 2, []string{"ANY-SCP", "A"}},
		{9, 1, []string{"ANY-SCP"}},
	} {
		if got := d.Candidates(tc.port, tc.max); !slices.Equal(got, tc.want) {
			t.Errorf("Candidates(%d, %d) = %v, want %v", tc.port, tc.max, got, tc.want)
		}
	}
	// Tiers: ranked titles by rank, then other products' first titles, aliases, client tools;
	// the port's first within each.
	tiers := Dict{
		{Title: "TOOL", SCU: true, Ports: []uint16{104}}, {Title: "ALIAS", Alias: true}, {Title: "ALIAS104", Alias: true, Ports: []uint16{104}},
		{Title: "OTHER"}, {Title: "OTHER104", Ports: []uint16{104}}, {Title: "SECOND", Rank: 2}, {Title: "FIRST", Rank: 1}, {Title: "THIRD104", Rank: 3, Ports: []uint16{104}},
	}
	for port, want := range map[uint16][]string{
		104: {"ANY-SCP", "THIRD104", "FIRST", "SECOND", "OTHER104", "OTHER", "ALIAS104", "ALIAS", "TOOL"},
		11:  {"ANY-SCP", "FIRST", "SECOND", "THIRD104", "OTHER", "OTHER104", "ALIAS", "ALIAS104", "TOOL"},
	} {
		if got := tiers.Candidates(port, 0); !slices.Equal(got, want) {
			t.Errorf("Candidates(%d) = %v, want %v", port, got, want)
		}
	}
}

func TestLoadDict(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	d, err := LoadDict(write("ok.txt", "# mine\nPACS_A, 104, 11112\n\nPACS_B # trailing\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 2 || d[0].Title != "PACS_A" || !slices.Equal(d[0].Ports, []uint16{104, 11112}) || d[1].Title != "PACS_B" {
		t.Errorf("LoadDict = %+v", d)
	}
	for name, content := range map[string]string{
		"long.txt":  "THIS_AE_TITLE_IS_TOO_LONG\n",
		"utf8.txt":  "ÄRCHIV\n",
		"port.txt":  "A,70000\n",
		"empty.txt": "# nothing\n",
	} {
		if _, err := LoadDict(write(name, content)); err == nil {
			t.Errorf("LoadDict(%s) accepted %q", name, content)
		}
	}
	if _, err := LoadDict(filepath.Join(dir, "missing.txt")); err == nil {
		t.Error("LoadDict of a missing file succeeded")
	}
}

func TestIdentify(t *testing.T) {
	for _, tc := range []struct {
		uid, version, product string
		honeypot              bool
	}{
		{"1.2.276.0.7230010.3.0.3.6.7", "OFFIS_DCMTK_367", "DCMTK 3.6.7", false},
		{"1.2.276.0.7230010.3.0.3.6.2", "OFFIS_DCMTK_362", "DCMTK 3.6.2", false}, // not "nmap"
		{"1.2.40.0.13.1.3", "dcm4che-5.31.0", "dcm4che 3/5 (dcm4chee-arc-light)", false},
		{"1.2.826.0.1.3680043.9.3811.2.0.0", "PYNETDICOM_200", "pynetdicom", false},
		{"1.2.826.0.1.3680043.9.7133.1.1", "GODICOM_1_1", "go-dicom (dicompot)", true},
		{"1.2.3.999", "X", "", false},
	} {
		p, h := Identify(tc.uid, tc.version)
		if p != tc.product || h != tc.honeypot {
			t.Errorf("Identify(%s, %s) = %q, %v; want %q, %v", tc.uid, tc.version, p, h, tc.product, tc.honeypot)
		}
	}
}
