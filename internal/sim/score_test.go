package sim

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/scan"
)

// scoreTruth is a small truth: a readable host, a protected one, a not-DICOM one, a hostile one.
var scoreTruth = Truth{Hosts: []Host{
	{Addr: netip.MustParseAddrPort("127.0.0.1:104"), Personality: PersonalityCalledDict, Level: probe.LevelRetrieve, AECheck: probe.AECheckCalled,
		CalledAE: "ORTHANC", Retrieve: probe.RetrieveAccepted, Studies: 4, Instances: 9, Modalities: map[string]int64{"CT": 3, "MR": 1}},
	{Addr: netip.MustParseAddrPort("127.0.0.2:104"), Personality: PersonalityCalledSecret, Level: probe.LevelProtected, AECheck: probe.AECheckCalled},
	{Addr: netip.MustParseAddrPort("127.0.0.3:104"), Personality: PersonalityNotDICOM, Level: probe.LevelNotDICOM},
	{Addr: netip.MustParseAddrPort("127.0.0.4:104"), Personality: PersonalityHostile, Hostile: "trickle"},
}}

// perfectResults are what a perfect scanner reports for scoreTruth, and one closed address.
func perfectResults() []probe.Result {
	return []probe.Result{
		{IP: netip.MustParseAddr("127.0.0.1"), Port: 104, Status: probe.StatusOpen,
			DICOM:    &probe.DICOM{Association: probe.AssociationAccepted, AECheck: probe.AECheckCalled, CalledAE: "ORTHANC"},
			Exposure: &probe.Exposure{Level: probe.LevelRetrieve, Studies: 4, Instances: 9, Retrieve: probe.RetrieveVerified, Modalities: map[string]int64{"CT": 3, "MR": 1}}},
		{IP: netip.MustParseAddr("127.0.0.2"), Port: 104, Status: probe.StatusOpen,
			DICOM:    &probe.DICOM{Association: probe.AssociationRejected, AECheck: probe.AECheckCalled, CalledAE: "IOCM_EXPIRED"},
			Exposure: &probe.Exposure{Level: probe.LevelProtected}},
		{IP: netip.MustParseAddr("127.0.0.3"), Port: 104, Status: probe.StatusOpen, Exposure: &probe.Exposure{Level: probe.LevelNotDICOM}},
		{IP: netip.MustParseAddr("127.0.0.4"), Port: 104, Status: probe.StatusOpen, Error: "i/o timeout", Exposure: &probe.Exposure{Level: probe.LevelNotDICOM}},
		{IP: netip.MustParseAddr("127.0.0.5"), Port: 104, Status: probe.StatusClosed},
	}
}

func TestCompare(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  func([]probe.Result) []probe.Result
		perfect bool
		check   func(t *testing.T, s *Score)
	}{
		{"perfect", func(rs []probe.Result) []probe.Result { return rs }, true, func(t *testing.T, s *Score) {
			if f, _ := s.Field("level", "retrieve"); f != (FieldScore{"level", "retrieve", 1, 1, 1}) {
				t.Errorf("level retrieve = %+v", f)
			}
			if f, _ := s.Field("retrieve", "accepted"); f.Correct != 1 {
				t.Errorf("a verified retrieval does not count as accepted: %+v", f)
			}
		}},
		{"wrong count", func(rs []probe.Result) []probe.Result {
			rs[0].Exposure.Studies, rs[0].Exposure.Instances = 3, 12
			return rs
		}, false, func(t *testing.T, s *Score) {
			want := []CountScore{{"studies", 1, 0, 4, 3, 1}, {"instances", 1, 0, 9, 12, 3}}
			for i, c := range s.Counts {
				if c != want[i] {
					t.Errorf("counts[%d] = %+v, want %+v", i, c, want[i])
				}
			}
		}},
		{"wrong level and ae check", func(rs []probe.Result) []probe.Result {
			rs[0].Exposure.Level, rs[0].DICOM.AECheck = probe.LevelEcho, probe.AECheckNone
			return rs
		}, false, func(t *testing.T, s *Score) {
			if f, _ := s.Field("level", "retrieve"); f.Recall() != 0 || f.Precision() != 1 {
				t.Errorf("level retrieve = %+v, want recall 0, precision 1 (nothing reported)", f)
			}
			if f, _ := s.Field("level", "echo"); f.Reported != 1 || f.Correct != 0 || f.Precision() != 0 {
				t.Errorf("level echo = %+v, want one false positive", f)
			}
			if f, _ := s.Field("accepted", "yes"); f.Correct != 1 {
				t.Errorf("accepted = %+v, want correct", f)
			}
			if f, _ := s.Field("ae_check", "called"); f.Truth != 2 || f.Correct != 1 {
				t.Errorf("ae_check called = %+v, want 1 of 2", f)
			}
		}},
		{"wrong called ae", func(rs []probe.Result) []probe.Result {
			rs[0].DICOM.CalledAE = "ANY-SCP"
			return rs
		}, false, func(t *testing.T, s *Score) {
			if f, _ := s.Field("called_ae", "match"); f != (FieldScore{"called_ae", "match", 1, 1, 0}) {
				t.Errorf("called_ae = %+v", f)
			}
		}},
		{"missing host", func(rs []probe.Result) []probe.Result { return rs[1:] }, false, func(t *testing.T, s *Score) {
			if s.Missing != 1 {
				t.Errorf("missing = %d, want 1", s.Missing)
			}
		}},
		{"duplicate", func(rs []probe.Result) []probe.Result { return append(rs, rs[2]) }, false, func(t *testing.T, s *Score) {
			if s.Duplicates != 1 || s.Results != 6 {
				t.Errorf("duplicates %d results %d, want 1 and 6", s.Duplicates, s.Results)
			}
		}},
		{"closed address reported open", func(rs []probe.Result) []probe.Result {
			rs[4].Status, rs[4].Exposure = probe.StatusOpen, &probe.Exposure{Level: probe.LevelNotDICOM}
			return rs
		}, false, func(t *testing.T, s *Score) {
			if f, _ := s.Field("level", "not-dicom"); f != (FieldScore{"level", "not-dicom", 1, 2, 1}) {
				t.Errorf("level not-dicom = %+v, want a false positive", f)
			}
		}},
		{"hostile overran", func(rs []probe.Result) []probe.Result {
			rs[3].Status, rs[3].Error = probe.StatusError, scan.TextOverrun
			return rs
		}, false, func(t *testing.T, s *Score) {
			if s.Hostile != (HostileScore{Hosts: 1, Overran: 1}) {
				t.Errorf("hostile = %+v", s.Hostile)
			}
		}},
		{"hostile any level", func(rs []probe.Result) []probe.Result {
			rs[3].Exposure.Level = probe.LevelQuery // no claim is made about what a hostile host exposes
			return rs
		}, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Compare(scoreTruth, tc.change(perfectResults()))
			if s.Perfect() != tc.perfect {
				var buf bytes.Buffer
				s.WriteText(&buf)
				t.Errorf("Perfect() = %v, want %v\n%s", s.Perfect(), tc.perfect, buf.String())
			}
			if tc.check != nil {
				tc.check(t, s)
			}
		})
	}
}

func TestCompareJSONL(t *testing.T) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, r := range perfectResults() {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	s, err := CompareJSONL(scoreTruth, strings.NewReader("\n"+buf.String()+"\n  \n"))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Perfect() || s.Results != 5 {
		t.Errorf("perfect %v results %d, want true and 5", s.Perfect(), s.Results)
	}
	for _, bad := range []string{"{", `{"ip":"127.0.0.1","port":1,"status":"bogus"}`, `{"port":1,"status":"open"}`, "[]"} {
		if _, err := CompareJSONL(scoreTruth, strings.NewReader(bad)); err == nil {
			t.Errorf("CompareJSONL(%q) accepted", bad)
		}
	}
	var out bytes.Buffer
	if err := s.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"level", "retrieve", "100.0%", "studies", "hostile", "perfect"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, out.String())
		}
	}
}

// FuzzCompareJSONL feeds arbitrary bytes as a results file: an error or a score, never a panic,
// and a score that counts every line it read.
func FuzzCompareJSONL(f *testing.F) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, r := range perfectResults() {
		enc.Encode(r)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{"ip":"127.0.0.1","port":104,"status":"open","exposure":{"level":"query","studies":-5,"modalities":{"":-1}}}`))
	f.Add([]byte(`{"ip":"::1","port":0,"status":"closed"}` + "\n" + `{"ip":"::1","port":0,"status":"closed"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := CompareJSONL(scoreTruth, bytes.NewReader(b))
		if err != nil {
			return
		}
		if s.Results < s.Duplicates || s.TruthHosts != len(scoreTruth.Hosts) {
			t.Fatalf("inconsistent score: %+v", s)
		}
		for _, fs := range s.Fields {
			if fs.Correct > fs.Truth || fs.Correct > fs.Reported {
				t.Fatalf("field %s=%s: correct %d over truth %d or reported %d", fs.Field, fs.Value, fs.Correct, fs.Truth, fs.Reported)
			}
		}
		var out bytes.Buffer
		if err := s.WriteText(&out); err != nil {
			t.Fatal(err)
		}
	})
}

// TestEngineTexts: the texts the scorer reads from probe are the ones the engine writes (scan
// keeps its own names for them until its rewrite names probe's).
func TestEngineTexts(t *testing.T) {
	for _, tc := range []struct{ probe, scan string }{
		{probe.TextOverrun, scan.TextOverrun},
		{probe.TextPanic, scan.TextPanic},
		{probe.TextNoStatus, scan.TextNoStatus},
	} {
		if tc.probe != tc.scan {
			t.Errorf("probe says %q, the engine writes %q", tc.probe, tc.scan)
		}
	}
}
