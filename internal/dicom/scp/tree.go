package scp

import (
	"math/rand/v2"
	"strconv"
)

// Tree is the archive a Server holds: studies of series of instances, all
// synthetic. Every patient-identifying value is fake and carries the token
// "FAKE".
//
// A Tree is either materialised, its Studies held in memory (NewTree, or a
// literal), or virtual (NewVirtualTree): its studies are synthesised from the
// seed whenever they are read, so that a tree of a million studies costs no
// memory. A Tree must not be modified while a Server uses it.
type Tree struct {
	// Studies are the studies of a materialised tree; nil for a virtual one.
	Studies []Study

	gen     generator // of a virtual tree
	virtual int       // number of studies of a virtual tree
	series  int       // counts of a virtual tree
	inst    int
}

// Study is one study of a Tree.
type Study struct {
	UID         string // Study Instance UID
	Date        string // Study Date, YYYYMMDD
	PatientName string // "FAKE^..."
	PatientID   string
	Series      []Series
}

// Series is one series of a Study.
type Series struct {
	UID       string // Series Instance UID
	Modality  string // CT, MR, CR, US or DX
	Instances []Instance
}

// Instance is one SOP instance of a Series.
type Instance struct {
	SOPUID      string // SOP Instance UID
	SOPClassUID string // the storage SOP class of its modality
}

// modality returns the i-th of the synthetic modalities, CT, MR, CR, US and
// DX, and its storage SOP class (PS3.4 Annex B.5).
func modality(i int) (name, sopClass string) {
	switch i {
	case 0:
		return "CT", "1.2.840.10008.5.1.4.1.1.2" // CT Image Storage
	case 1:
		return "MR", "1.2.840.10008.5.1.4.1.1.4" // MR Image Storage
	case 2:
		return "CR", "1.2.840.10008.5.1.4.1.1.1" // Computed Radiography Image Storage
	case 3:
		return "US", "1.2.840.10008.5.1.4.1.1.6.1" // Ultrasound Image Storage
	default:
		return "DX", "1.2.840.10008.5.1.4.1.1.1.1" // Digital X-Ray Image Storage - For Presentation
	}
}

// NewTree returns a materialised tree of n deterministic studies from seed:
// 1–3 series per study and 1–4 instances per series, one modality per study
// among CT, MR, CR, US and DX, study dates over 2015–2024, and about two studies per
// patient. The same seed and n give the same tree, and the same studies as
// NewVirtualTree.
func NewTree(seed uint64, n int) *Tree {
	t := &Tree{Studies: make([]Study, max(n, 0))}
	g := newGenerator(seed, n)
	for i := range t.Studies {
		t.Studies[i] = g.study(i)
	}
	return t
}

// NewVirtualTree returns a virtual tree of the n studies NewTree(seed, n)
// would hold. It keeps only its counts, computed here in O(n) time.
func NewVirtualTree(seed uint64, n int) *Tree {
	t := &Tree{gen: newGenerator(seed, n), virtual: max(n, 0)}
	for i := range t.virtual {
		sh := shapeOf(seed, i)
		t.series += sh.series
		for _, k := range sh.inst[:sh.series] {
			t.inst += k
		}
	}
	return t
}

// Len returns the number of studies.
func (t *Tree) Len() int {
	if t == nil {
		return 0
	}
	if t.Studies == nil {
		return t.virtual
	}
	return len(t.Studies)
}

// Study returns the i-th study, 0 ≤ i < Len. For a virtual tree it is built
// on each call.
func (t *Tree) Study(i int) Study {
	if t.Studies == nil {
		return t.gen.study(i)
	}
	return t.Studies[i]
}

// Counts returns the number of studies, series and instances.
func (t *Tree) Counts() (studies, series, instances int) {
	if t == nil {
		return 0, 0, 0
	}
	if t.Studies == nil {
		return t.virtual, t.series, t.inst
	}
	for _, st := range t.Studies {
		series += len(st.Series)
		for _, se := range st.Series {
			instances += len(se.Instances)
		}
	}
	return len(t.Studies), series, instances
}

// Modalities returns the distinct modalities of the study's series, in order
// of appearance: the value of ModalitiesInStudy.
func (st *Study) Modalities() []string {
	var mods []string
	for _, se := range st.Series {
		if !contains(mods, se.Modality) {
			mods = append(mods, se.Modality)
		}
	}
	return mods
}

// Instances returns the number of instances in the study.
func (st *Study) Instances() int {
	n := 0
	for _, se := range st.Series {
		n += len(se.Instances)
	}
	return n
}

// shape is the random part of a synthetic study.
type shape struct {
	modality         int
	year, month, day int
	series           int
	inst             [3]int // instances per series
}

func shapeOf(seed uint64, i int) shape {
	var src rand.PCG
	src.Seed(seed, uint64(i))
	r := rand.New(&src)
	sh := shape{
		modality: r.IntN(5),
		year:     2015 + r.IntN(10),
		month:    1 + r.IntN(12),
		day:      1 + r.IntN(28),
		series:   1 + r.IntN(3),
	}
	for k := range sh.series {
		sh.inst[k] = 1 + r.IntN(4)
	}
	return sh
}

// generator synthesises the studies of a tree of n studies from a seed.
// UIDs are under a root derived from the seed ("2.25." and a 64-bit number,
// PS3.5 §B.2), so that trees of different seeds share no UID.
type generator struct {
	seed      uint64
	n         int
	root      string // "2.25.<n>."
	patientID string // "FAKE-<n>-"
}

func newGenerator(seed uint64, n int) generator {
	m := mix(seed)
	return generator{
		seed:      seed,
		n:         n,
		root:      "2.25." + strconv.FormatUint(m, 10) + ".",
		patientID: "FAKE-" + strconv.FormatUint(m%1_000_000, 10) + "-",
	}
}

// study builds study i. Its strings are cut from one buffer and its instances from one slice, so
// that a study costs a few allocations whatever its size: a virtual tree builds a study for
// every record it reads, and the sim reads millions.
func (g *generator) study(i int) Study {
	sh := shapeOf(g.seed, i)
	n := 0
	for _, k := range sh.inst[:sh.series] {
		n += k
	}
	mod, class := modality(sh.modality)
	patient := i % (g.n/2 + 1) // some patients have several studies

	// The buffer: date, patient name, patient ID, study UID, then each series' UID followed by
	// its instances' UIDs; on the stack, since a study of 3 × 4 instances under a 20-digit root
	// takes under 1 KiB (else append moves it to the heap).
	var buf [1024]byte
	b := buf[:0]
	b = append(b, "00000000"...)
	putDigits(b[0:4], sh.year)
	putDigits(b[4:6], sh.month)
	putDigits(b[6:8], sh.day)
	var ends [4 + 3 + 3*4]int // end of each string in b: 3 series of 4 instances at most (shapeOf)
	marks := ends[:0]
	marks = append(marks, len(b))
	b = append(b, "FAKE^PATIENT"...)
	b = strconv.AppendInt(b, int64(patient), 10)
	marks = append(marks, len(b))
	b = append(b, g.patientID...)
	b = strconv.AppendInt(b, int64(patient), 10)
	marks = append(marks, len(b))
	b = append(b, g.root...)
	b = strconv.AppendInt(b, int64(i+1), 10)
	studyEnd := len(b)
	marks = append(marks, studyEnd)
	for k := range sh.series {
		seStart := len(b)
		b = append(b, b[marks[2]:studyEnd]...)
		b = append(b, '.')
		b = strconv.AppendInt(b, int64(k+1), 10)
		seEnd := len(b)
		marks = append(marks, seEnd)
		for j := range sh.inst[k] {
			b = append(b, b[seStart:seEnd]...)
			b = append(b, '.')
			b = strconv.AppendInt(b, int64(j+1), 10)
			marks = append(marks, len(b))
		}
	}
	all := string(b)
	next, m := 0, 0
	str := func() string {
		s := all[next:marks[m]]
		next = marks[m]
		m++
		return s
	}
	st := Study{Date: str(), PatientName: str(), PatientID: str(), UID: str(), Series: make([]Series, sh.series)}
	inst := make([]Instance, n)
	for k := range st.Series {
		se := &st.Series[k]
		se.UID, se.Modality = str(), mod
		se.Instances, inst = inst[:sh.inst[k]:sh.inst[k]], inst[sh.inst[k]:]
		for j := range se.Instances {
			se.Instances[j] = Instance{SOPUID: str(), SOPClassUID: class}
		}
	}
	return st
}

// putDigits writes v in decimal into b, zero-padded to its length.
func putDigits(b []byte, v int) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
}

// mix is SplitMix64's finaliser: it spreads nearby seeds over 64 bits.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
