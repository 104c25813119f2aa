package scp

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestTreeDeterministic(t *testing.T) {
	a, b := NewTree(42, 60), NewTree(42, 60)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two trees of the same seed differ")
	}
	if other := NewTree(43, 60); reflect.DeepEqual(a.Studies, other.Studies) {
		t.Fatal("trees of different seeds are equal")
	}
	v := NewVirtualTree(42, 60)
	if v.Studies != nil || v.Len() != 60 {
		t.Fatalf("virtual tree holds %d studies, Len %d", len(v.Studies), v.Len())
	}
	for i := range v.Len() {
		if got, want := v.Study(i), a.Study(i); !reflect.DeepEqual(got, want) {
			t.Fatalf("virtual study %d = %+v, want %+v", i, got, want)
		}
	}
	s1, se1, in1 := a.Counts()
	s2, se2, in2 := v.Counts()
	if s1 != s2 || se1 != se2 || in1 != in2 || s1 != 60 {
		t.Errorf("counts %d/%d/%d (materialised), %d/%d/%d (virtual); want equal, 60 studies", s1, se1, in1, s2, se2, in2)
	}
}

func TestTreeShape(t *testing.T) {
	tr := NewTree(7, 500)
	uids := map[string]bool{}
	patients := map[string]bool{}
	modalities := map[string]int{}
	checkUID := func(uid string) {
		t.Helper()
		if len(uid) > 64 || strings.Trim(uid, "0123456789.") != "" || uids[uid] {
			t.Fatalf("UID %q: too long, not a UID, or repeated", uid)
		}
		for _, c := range strings.Split(uid, ".") {
			if c == "" || (len(c) > 1 && c[0] == '0') {
				t.Fatalf("UID %q: component %q (PS3.5 §9.1)", uid, c)
			}
		}
		uids[uid] = true
	}
	for _, st := range tr.Studies {
		checkUID(st.UID)
		if len(st.Series) < 1 || len(st.Series) > 3 {
			t.Fatalf("study %s has %d series", st.UID, len(st.Series))
		}
		if len(st.Date) != 8 || st.Date < "20150101" || st.Date > "20241231" {
			t.Fatalf("study %s dated %q", st.UID, st.Date)
		}
		if !strings.HasPrefix(st.PatientName, "FAKE^") || !strings.HasPrefix(st.PatientID, "FAKE") {
			t.Fatalf("study %s: patient %q %q", st.UID, st.PatientName, st.PatientID)
		}
		patients[st.PatientID] = true
		modalities[st.Series[0].Modality]++
		for _, se := range st.Series {
			checkUID(se.UID)
			if len(se.Instances) < 1 || len(se.Instances) > 4 || se.Modality != st.Series[0].Modality {
				t.Fatalf("series %s: %d instances, modality %s", se.UID, len(se.Instances), se.Modality)
			}
			for _, in := range se.Instances {
				checkUID(in.SOPUID)
				if !isStorage(in.SOPClassUID) {
					t.Fatalf("instance %s: SOP class %s", in.SOPUID, in.SOPClassUID)
				}
			}
		}
	}
	if len(patients) != 251 {
		t.Errorf("%d patients, want 251", len(patients))
	}
	if len(modalities) != 5 {
		t.Errorf("modalities %v, want CT, MR, CR, US and DX", modalities)
	}
}

func TestTreeCounts(t *testing.T) {
	for _, tc := range []struct {
		name string
		tree *Tree
		want [3]int
	}{
		{"nil", nil, [3]int{}},
		{"empty", &Tree{}, [3]int{}},
		{"literal", &Tree{Studies: []Study{
			{Series: []Series{{Instances: make([]Instance, 2)}, {Instances: make([]Instance, 1)}}},
			{Series: []Series{{Instances: make([]Instance, 4)}}},
		}}, [3]int{2, 3, 7}},
		{"negative", NewTree(1, -5), [3]int{}},
		{"virtual negative", NewVirtualTree(1, -5), [3]int{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, se, in := tc.tree.Counts()
			if got := [3]int{s, se, in}; got != tc.want || tc.tree.Len() != tc.want[0] {
				t.Errorf("Counts = %v, Len = %d; want %v", got, tc.tree.Len(), tc.want)
			}
		})
	}
}

func TestStudyModalities(t *testing.T) {
	st := Study{Series: []Series{{Modality: "CT"}, {Modality: "SR"}, {Modality: "CT"}, {Modality: "PR"}}}
	if got, want := st.Modalities(), []string{"CT", "SR", "PR"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Modalities = %q, want %q", got, want)
	}
}

// TestTreeStudyStrings holds the strings of a generated study to their documented forms: the
// generator cuts them from one buffer, and each must end where it should.
func TestTreeStudyStrings(t *testing.T) {
	g := newGenerator(7, 10)
	for i := range 10 {
		st := g.study(i)
		sh := shapeOf(7, i)
		patient := strconv.Itoa(i % 6)
		if want := g.root + strconv.Itoa(i+1); st.UID != want {
			t.Errorf("study %d UID %q, want %q", i, st.UID, want)
		}
		if st.PatientName != "FAKE^PATIENT"+patient || st.PatientID != g.patientID+patient {
			t.Errorf("study %d patient %q %q, want patient %s", i, st.PatientName, st.PatientID, patient)
		}
		if want := fmt.Sprintf("%04d%02d%02d", sh.year, sh.month, sh.day); st.Date != want {
			t.Errorf("study %d date %q, want %q", i, st.Date, want)
		}
		if len(st.Series) != sh.series {
			t.Fatalf("study %d has %d series, want %d", i, len(st.Series), sh.series)
		}
		mod, class := modality(sh.modality)
		for k, se := range st.Series {
			if want := st.UID + "." + strconv.Itoa(k+1); se.UID != want || se.Modality != mod {
				t.Errorf("study %d series %d: %q %q, want %q %q", i, k, se.UID, se.Modality, want, mod)
			}
			if len(se.Instances) != sh.inst[k] || cap(se.Instances) != sh.inst[k] {
				t.Errorf("study %d series %d: %d instances (cap %d), want %d", i, k, len(se.Instances), cap(se.Instances), sh.inst[k])
			}
			for j, in := range se.Instances {
				if want := se.UID + "." + strconv.Itoa(j+1); in.SOPUID != want || in.SOPClassUID != class {
					t.Errorf("study %d series %d instance %d: %q %q, want %q %q", i, k, j, in.SOPUID, in.SOPClassUID, want, class)
				}
			}
		}
	}
}

// BenchmarkVirtualStudy measures building one study of a virtual tree, what the sim does for
// every record a C-FIND reads (and endless-pending for every response).
func BenchmarkVirtualStudy(b *testing.B) {
	tr := NewVirtualTree(1, 1<<20)
	i := 0
	for b.Loop() {
		st := tr.Study(i % tr.Len())
		if st.UID == "" {
			b.Fatal("empty study")
		}
		i++
	}
}
