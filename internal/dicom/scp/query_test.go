package scp

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/pacswatch/pacswatch/internal/dicom"
)

func TestWildcard(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"", "anything", true},
		{"*", "", true},
		{"*", "abc", true},
		{"abc", "abc", true},
		{"abc", "abd", false},
		{"abc", "ab", false},
		{"ab", "abc", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"a*", "a", true},
		{"a*c", "abbbc", true},
		{"a*c", "abbbd", false},
		{"*b*", "abc", true},
		{"*b*b", "abcb", true},
		{"*b*b", "abcd", false},
		{"**?", "x", true},
		{"?", "", false},
		{"FAKE^*", "FAKE^ANN", true},
	} {
		if got := wildcard(tc.pattern, tc.s); got != tc.want {
			t.Errorf("wildcard(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

func TestParseDateRange(t *testing.T) {
	for _, tc := range []struct {
		in       string
		from, to string
		ok       bool
	}{
		{"20200101", "20200101", "20200101", true},
		{"20200101-20201231", "20200101", "20201231", true},
		{"20200101-", "20200101", "", true},
		{"-20201231", "", "20201231", true},
		{"-", "", "", false},
		{"2020", "", "", false},
		{"2020010A", "", "", false},
		{"20200101-2020", "", "", false},
		{"20200101-20201231-", "", "", false},
		{"20200101\\20200102", "", "", false},
	} {
		from, to, err := parseDateRange(tc.in)
		if ok := err == nil; ok != tc.ok || from != tc.from || to != tc.to {
			t.Errorf("parseDateRange(%q) = %q, %q, %v; want %q, %q, ok %v", tc.in, from, to, err, tc.from, tc.to, tc.ok)
		}
		if err != nil && !errors.Is(err, errQuery) {
			t.Errorf("parseDateRange(%q) error %v is not errQuery", tc.in, err)
		}
	}
}

func TestAppendElem(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tag      dicom.Tag
		vr       dicom.VR
		explicit bool
		value    string
		want     []byte
	}{
		{"implicit UI padded with NUL", dicom.StudyInstanceUID, dicom.VRUI, false, "1.2.3",
			[]byte{0x20, 0, 0x0D, 0, 6, 0, 0, 0, '1', '.', '2', '.', '3', 0}},
		{"explicit CS padded with space", dicom.Modality, dicom.VRCS, true, "CTX",
			[]byte{0x08, 0, 0x60, 0, 'C', 'S', 4, 0, 'C', 'T', 'X', ' '}},
		{"explicit OB long form", dicom.PixelData, dicom.VROB, true, "\x01\x02",
			[]byte{0xE0, 0x7F, 0x10, 0, 'O', 'B', 0, 0, 2, 0, 0, 0, 1, 2}},
		{"empty", dicom.PatientName, dicom.VRPN, true, "", []byte{0x10, 0, 0x10, 0, 'P', 'N', 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := appendElem(nil, tc.tag, tc.vr, tc.explicit, tc.value); !bytes.Equal(got, tc.want) {
				t.Errorf("appendElem = % x\nwant         % x", got, tc.want)
			}
		})
	}
}

// TestIdentifierRoundTrip encodes every response identifier of a tree, in
// both transfer syntaxes, and decodes it with the project's codec.
func TestIdentifierRoundTrip(t *testing.T) {
	tr := NewTree(3, 5)
	all := []dicom.Tag{dicom.SpecificCharacterSet, dicom.SOPClassUID, dicom.SOPInstanceUID, dicom.StudyDate, dicom.RetrieveAETitle,
		dicom.Modality, dicom.ModalitiesInStudy, dicom.PatientName, dicom.PatientID, dicom.StudyInstanceUID, dicom.SeriesInstanceUID,
		dicom.NumberOfPatientRelatedStudies, dicom.NumberOfStudyRelatedSeries, dicom.NumberOfStudyRelatedInstances,
		dicom.NumberOfSeriesRelatedInstances}
	for _, explicit := range []bool{false, true} {
		for _, lv := range []level{levelPatient, levelStudy, levelSeries, levelImage} {
			t.Run(fmt.Sprintf("%v explicit %v", lv, explicit), func(t *testing.T) {
				var rq dicom.Dataset
				rq.Set(dicom.NewString(dicom.QueryRetrieveLevel, lv.String()))
				for _, tag := range all {
					rq.Set(dicom.NewString(tag))
				}
				q, err := parseQuery(&rq, true)
				if err != nil {
					t.Fatal(err)
				}
				id := identifier{aeTitle: "AE", computed: true, chatty: true, explicit: explicit}
				n := 0
				q.find(tr, true, func(m *match) bool {
					n++
					ds, err := dicom.Decode(id.append(nil, &q, m), dicom.DecodeOptions{Explicit: explicit})
					if err != nil {
						t.Fatalf("decode: %v", err)
					}
					if got, _ := ds.String(dicom.QueryRetrieveLevel); got != lv.String() {
						t.Fatalf("level %q, want %v", got, lv)
					}
					if got, _ := ds.String(dicom.PatientID); got != m.st.PatientID {
						t.Fatalf("patient ID %q, want %q", got, m.st.PatientID)
					}
					return true
				})
				st, se, in := tr.Counts()
				want := map[level]int{levelPatient: 3, levelStudy: st, levelSeries: se, levelImage: in}[lv]
				if n != want {
					t.Errorf("%d matches, want %d", n, want)
				}
			})
		}
	}
}

// TestIdentifierAllocations keeps the C-FIND hot path free of allocations.
func TestIdentifierAllocations(t *testing.T) {
	var rq dicom.Dataset
	rq.Set(dicom.NewString(dicom.QueryRetrieveLevel, "STUDY"))
	for _, tag := range []dicom.Tag{dicom.StudyInstanceUID, dicom.StudyDate, dicom.NumberOfStudyRelatedInstances, dicom.RetrieveAETitle} {
		rq.Set(dicom.NewString(tag))
	}
	q, err := parseQuery(&rq, false)
	if err != nil {
		t.Fatal(err)
	}
	st := NewTree(1, 1).Studies[0]
	m := match{st: &st}
	id := identifier{aeTitle: "AE", computed: true}
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { buf = id.append(buf[:0], &q, &m) }); n != 0 {
		t.Errorf("identifier encoding allocates %v times", n)
	}
}

// TestVirtualCandidates holds a virtual tree's shortcuts (studies found by the number in their
// UID, dates checked before a study is built) to what the materialised tree of the same seed
// answers, in the same order: UID lists with duplicates, foreign and malformed UIDs, date ranges.
func TestVirtualCandidates(t *testing.T) {
	const seed, n = 3, 40
	real, virt := NewTree(seed, n), NewVirtualTree(seed, n)
	root := virt.gen.root
	queries := []query{
		{level: levelStudy},
		{level: levelStudy, dateSet: true, dateFrom: "20180101", dateTo: "20201231"},
		{level: levelStudy, dateSet: true, dateTo: "20160630"},
		{level: levelSeries, studyUIDs: []string{root + "7", root + "3", root + "7", root + "41", root + "0", root + "012", "1.2.3.5", root}},
		{level: levelImage, studyUIDs: []string{root + "40", root + "1"}, dateSet: true, dateFrom: "20150101"},
		{level: levelStudy, studyUIDs: []string{"2.25.1.2"}},
	}
	walk := func(tr *Tree, q query) (got []string) {
		q.find(tr, true, func(m *match) bool {
			s := m.st.UID
			if m.se != nil {
				s += " " + m.se.UID
			}
			if m.in != nil {
				s += " " + m.in.SOPUID
			}
			got = append(got, s)
			return true
		})
		q.instances(tr, func(_ *Study, _ *Series, in *Instance) bool {
			got = append(got, "retrieve "+in.SOPUID)
			return true
		})
		return got
	}
	for i, q := range queries {
		want, got := walk(real, q), walk(virt, q)
		if !slices.Equal(got, want) {
			t.Errorf("query %d: virtual tree gave %d records %v, materialised %d %v", i, len(got), got, len(want), want)
		}
		if i > 0 && i < 5 && len(want) == 0 {
			t.Errorf("query %d matches nothing: the test proves nothing", i)
		}
	}
}
