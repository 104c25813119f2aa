package scp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"

	"github.com/pacswatch/pacswatch/internal/dicom"
)

// level is a Query/Retrieve Level (0008,0052) (PS3.4 §C.3).
type level int

// Query/Retrieve levels, from the top of the hierarchy.
const (
	levelPatient level = iota
	levelStudy
	levelSeries
	levelImage
)

func (l level) String() string {
	switch l {
	case levelPatient:
		return "PATIENT"
	case levelStudy:
		return "STUDY"
	case levelSeries:
		return "SERIES"
	case levelImage:
		return "IMAGE"
	}
	return fmt.Sprintf("level(%d)", int(l))
}

// errQuery reports an identifier the server cannot answer: it becomes the
// failure status 0xA900 (identifier does not match SOP class).
var errQuery = errors.New("scp: identifier does not match SOP class")

// Return keys a query may request, one bit each (PS3.4 §C.2.2.1.2).
const (
	keyCharset uint32 = 1 << iota
	keySOPClass
	keySOPInstance
	keyStudyDate
	keyRetrieveAE
	keyModality
	keyModalities
	keyPatientName
	keyPatientID
	keyStudyUID
	keySeriesUID
	keyPatientStudies
	keyStudySeries
	keyStudyInstances
	keySeriesInstances
)

func keyOf(t dicom.Tag) uint32 {
	switch t {
	case dicom.SpecificCharacterSet:
		return keyCharset
	case dicom.SOPClassUID:
		return keySOPClass
	case dicom.SOPInstanceUID:
		return keySOPInstance
	case dicom.StudyDate:
		return keyStudyDate
	case dicom.RetrieveAETitle:
		return keyRetrieveAE
	case dicom.Modality:
		return keyModality
	case dicom.ModalitiesInStudy:
		return keyModalities
	case dicom.PatientName:
		return keyPatientName
	case dicom.PatientID:
		return keyPatientID
	case dicom.StudyInstanceUID:
		return keyStudyUID
	case dicom.SeriesInstanceUID:
		return keySeriesUID
	case dicom.NumberOfPatientRelatedStudies:
		return keyPatientStudies
	case dicom.NumberOfStudyRelatedSeries:
		return keyStudySeries
	case dicom.NumberOfStudyRelatedInstances:
		return keyStudyInstances
	case dicom.NumberOfSeriesRelatedInstances:
		return keySeriesInstances
	}
	return 0
}

// query is a decoded C-FIND, C-GET or C-MOVE identifier: its level, its
// matching keys (PS3.4 §C.2.2.2) and the return keys it requests. Empty
// matching keys match universally. Keys of levels below the query's are
// ignored; those of its level and above all apply.
type query struct {
	level       level
	want        uint32   // return keys requested
	patientID   string   // single value, with wildcards
	patientName string   // single value, with wildcards, case-insensitive
	studyUIDs   []string // list of UID matching
	seriesUIDs  []string
	sopUIDs     []string
	sopClasses  []string
	dateFrom    string // StudyDate range, inclusive; "" is open
	dateTo      string
	dateSet     bool
	modalities  []string // ModalitiesInStudy: any value matches any modality
	modality    string   // Modality, with wildcards
}

// parseQuery reads an identifier. patientRoot allows the PATIENT level
// (Patient Root Query/Retrieve Information Model, PS3.4 §C.6.1); without it
// the information model is Study Root (§C.6.2). It fails with errQuery.
func parseQuery(ds *dicom.Dataset, patientRoot bool) (query, error) {
	var q query
	lv, _ := ds.String(dicom.QueryRetrieveLevel)
	switch lv {
	case "PATIENT":
		if !patientRoot {
			return q, fmt.Errorf("%w: level PATIENT in the Study Root model", errQuery)
		}
		q.level = levelPatient
	case "STUDY":
		q.level = levelStudy
	case "SERIES":
		q.level = levelSeries
	case "IMAGE":
		q.level = levelImage
	default:
		return q, fmt.Errorf("%w: query/retrieve level %.16q", errQuery, lv)
	}
	for e := range ds.All() {
		q.want |= keyOf(e.Tag)
	}
	str := func(t dicom.Tag) string {
		s, _ := ds.String(t)
		return s
	}
	q.patientID = str(dicom.PatientID)
	q.patientName = strings.ToUpper(str(dicom.PatientName))
	if q.level >= levelStudy {
		q.studyUIDs = ds.Strings(dicom.StudyInstanceUID)
		q.modalities = ds.Strings(dicom.ModalitiesInStudy)
		if d := str(dicom.StudyDate); d != "" {
			from, to, err := parseDateRange(d)
			if err != nil {
				return q, err
			}
			q.dateFrom, q.dateTo, q.dateSet = from, to, true
		}
	}
	if q.level >= levelSeries {
		q.seriesUIDs = ds.Strings(dicom.SeriesInstanceUID)
		q.modality = str(dicom.Modality)
	}
	if q.level >= levelImage {
		q.sopUIDs = ds.Strings(dicom.SOPInstanceUID)
		q.sopClasses = ds.Strings(dicom.SOPClassUID)
	}
	return q, nil
}

// parseDateRange parses a DA matching value: a single date or a range
// "A-B", "A-" or "-B" (PS3.4 §C.2.2.2.5), each date YYYYMMDD.
func parseDateRange(v string) (from, to string, err error) {
	from, to, isRange := strings.Cut(v, "-")
	if !isRange {
		to = from
	}
	if (from == "" && to == "") || (from != "" && !isDate(from)) || (to != "" && !isDate(to)) {
		return "", "", fmt.Errorf("%w: StudyDate %.32q is not a date or date range", errQuery, v)
	}
	return from, to, nil
}

func isDate(s string) bool {
	if len(s) != 8 {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func (q *query) matchPatient(st *Study) bool {
	return wildcard(q.patientID, st.PatientID) &&
		(q.patientName == "" || wildcard(q.patientName, strings.ToUpper(st.PatientName)))
}

func (q *query) matchStudy(st *Study) bool {
	if !q.matchPatient(st) || !uidMatch(q.studyUIDs, st.UID) {
		return false
	}
	if q.dateSet && ((q.dateFrom != "" && st.Date < q.dateFrom) || (q.dateTo != "" && st.Date > q.dateTo)) {
		return false
	}
	if len(q.modalities) == 0 {
		return true
	}
	for _, se := range st.Series {
		for _, m := range q.modalities {
			if wildcard(m, se.Modality) {
				return true
			}
		}
	}
	return false
}

func (q *query) matchSeries(se *Series) bool {
	return uidMatch(q.seriesUIDs, se.UID) && wildcard(q.modality, se.Modality)
}

func (q *query) matchImage(in *Instance) bool {
	return uidMatch(q.sopUIDs, in.SOPUID) && uidMatch(q.sopClasses, in.SOPClassUID)
}

// uidMatch is List of UID Matching (PS3.4 §C.2.2.2.2); an empty list matches
// everything.
func uidMatch(list []string, uid string) bool {
	return len(list) == 0 || contains(list, uid)
}

// wildcard is Wild Card Matching (PS3.4 §C.2.2.2.4): '*' matches any
// sequence of characters, '?' any one; an empty pattern or "*" matches
// everything. It runs in O(len(pattern)·len(s)) time at worst.
func wildcard(pattern, s string) bool {
	if pattern == "" {
		return true
	}
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// match is one matching record: a patient (st is its first study), a study,
// a series or an instance.
type match struct {
	st             *Study
	se             *Series
	in             *Instance
	patientStudies int // studies of the patient, at PATIENT level
}

// find calls yield for each record that matches q at its level, in tree
// order, until yield returns false. The match and what it points to are
// valid during the call only. counts says whether patient records need
// their number of studies (a first pass over the tree).
func (q *query) find(t *Tree, counts bool, yield func(*match) bool) {
	if q.level == levelPatient {
		q.findPatients(t, counts, yield)
		return
	}
	var st Study // one study and one match for the whole walk: a record costs no allocation
	m := new(match)
	for i := range q.candidates(t) {
		st = t.Study(i)
		if !q.matchStudy(&st) {
			continue
		}
		if q.level == levelStudy {
			if *m = (match{st: &st}); !yield(m) {
				return
			}
			continue
		}
		for k := range st.Series {
			se := &st.Series[k]
			if !q.matchSeries(se) {
				continue
			}
			if q.level == levelSeries {
				if *m = (match{st: &st, se: se}); !yield(m) {
					return
				}
				continue
			}
			for j := range se.Instances {
				in := &se.Instances[j]
				if !q.matchImage(in) {
					continue
				}
				if *m = (match{st: &st, se: se, in: in}); !yield(m) {
					return
				}
			}
		}
	}
}

// candidates yields, in tree order, the indexes of the studies of t that may match q: all of them,
// except that a virtual tree skips those whose date is outside q's range, and finds the studies a
// list of UIDs names by their number (the generator's UIDs end in it), without building the
// others.
func (q *query) candidates(t *Tree) iter.Seq[int] {
	return func(yield func(int) bool) {
		if t.Studies != nil || len(q.studyUIDs) == 0 {
			for i := range t.Len() {
				if (t.Studies != nil || q.dateMatch(t.gen.seed, i)) && !yield(i) {
					return
				}
			}
			return
		}
		var idx []int
		for _, uid := range q.studyUIDs {
			n, err := strconv.Atoi(strings.TrimPrefix(uid, t.gen.root))
			if len(uid) > len(t.gen.root) && uid[:len(t.gen.root)] == t.gen.root && err == nil && n >= 1 && n <= t.virtual {
				idx = append(idx, n-1)
			}
		}
		slices.Sort(idx)
		for _, i := range slices.Compact(idx) {
			if !yield(i) {
				return
			}
		}
	}
}

// dateMatch reports whether study i of a virtual tree of seed may match q's date range.
func (q *query) dateMatch(seed uint64, i int) bool {
	if !q.dateSet {
		return true
	}
	sh := shapeOf(seed, i)
	var b [8]byte
	putDigits(b[0:4], sh.year)
	putDigits(b[4:6], sh.month)
	putDigits(b[6:8], sh.day)
	d := string(b[:])
	return (q.dateFrom == "" || d >= q.dateFrom) && (q.dateTo == "" || d <= q.dateTo)
}

func (q *query) findPatients(t *Tree, counts bool, yield func(*match) bool) {
	studies := map[string]int{}
	if counts {
		for i := range t.Len() {
			studies[t.Study(i).PatientID]++
		}
	}
	seen := map[string]bool{}
	for i := range t.Len() {
		st := t.Study(i)
		if seen[st.PatientID] || !q.matchPatient(&st) {
			continue
		}
		seen[st.PatientID] = true
		if !yield(&match{st: &st, patientStudies: studies[st.PatientID]}) {
			return
		}
	}
}

// instances calls yield for each instance a C-GET or C-MOVE of q retrieves:
// every instance under the records that match at q's level.
func (q *query) instances(t *Tree, yield func(st *Study, se *Series, in *Instance) bool) {
	for i := range q.candidates(t) {
		st := t.Study(i)
		if q.level == levelPatient && !q.matchPatient(&st) || q.level >= levelStudy && !q.matchStudy(&st) {
			continue
		}
		for k := range st.Series {
			se := &st.Series[k]
			if q.level >= levelSeries && !q.matchSeries(se) {
				continue
			}
			for j := range se.Instances {
				in := &se.Instances[j]
				if q.level == levelImage && !q.matchImage(in) {
					continue
				}
				if !yield(&st, se, in) {
					return
				}
			}
		}
	}
}

// identifier is what a C-FIND response tells about a match.
type identifier struct {
	aeTitle  string
	computed bool // NumberOf... and ModalitiesInStudy
	chatty   bool // unrequested InstitutionName and PatientName
	explicit bool
}

// append appends the response identifier of m (PS3.4 §C.4.1.1.3.2): the
// QueryRetrieveLevel and the requested return keys that the level knows,
// in ascending tag order.
func (id *identifier) append(b []byte, q *query, m *match) []byte {
	want := func(k uint32) bool { return q.want&k != 0 }
	lv := q.level
	x := id.explicit
	if want(keyCharset) || id.chatty {
		b = appendElem(b, dicom.SpecificCharacterSet, dicom.VRCS, x, "ISO_IR 100")
	}
	if lv == levelImage && want(keySOPClass) {
		b = appendElem(b, dicom.SOPClassUID, dicom.VRUI, x, m.in.SOPClassUID)
	}
	if lv == levelImage && want(keySOPInstance) {
		b = appendElem(b, dicom.SOPInstanceUID, dicom.VRUI, x, m.in.SOPUID)
	}
	if lv >= levelStudy && want(keyStudyDate) {
		b = appendElem(b, dicom.StudyDate, dicom.VRDA, x, m.st.Date)
	}
	b = appendElem(b, dicom.QueryRetrieveLevel, dicom.VRCS, x, lv.String())
	if want(keyRetrieveAE) {
		b = appendElem(b, dicom.RetrieveAETitle, dicom.VRAE, x, id.aeTitle)
	}
	if lv >= levelSeries && want(keyModality) {
		b = appendElem(b, dicom.Modality, dicom.VRCS, x, m.se.Modality)
	}
	if lv == levelStudy && want(keyModalities) && id.computed {
		var buf [64]byte
		v := buf[:0]
		for i, mod := range m.st.Modalities() {
			if i > 0 {
				v = append(v, '\\')
			}
			v = append(v, mod...)
		}
		b = appendElem(b, dicom.ModalitiesInStudy, dicom.VRCS, x, v)
	}
	if id.chatty {
		b = appendElem(b, dicom.InstitutionName, dicom.VRLO, x, "FAKE INSTITUTION")
	}
	if want(keyPatientName) || id.chatty {
		b = appendElem(b, dicom.PatientName, dicom.VRPN, x, m.st.PatientName)
	}
	if want(keyPatientID) {
		b = appendElem(b, dicom.PatientID, dicom.VRLO, x, m.st.PatientID)
	}
	if lv >= levelStudy && want(keyStudyUID) {
		b = appendElem(b, dicom.StudyInstanceUID, dicom.VRUI, x, m.st.UID)
	}
	if lv >= levelSeries && want(keySeriesUID) {
		b = appendElem(b, dicom.SeriesInstanceUID, dicom.VRUI, x, m.se.UID)
	}
	if !id.computed {
		return b
	}
	if lv == levelPatient && want(keyPatientStudies) {
		b = appendInt(b, dicom.NumberOfPatientRelatedStudies, x, m.patientStudies)
	}
	if lv == levelStudy && want(keyStudySeries) {
		b = appendInt(b, dicom.NumberOfStudyRelatedSeries, x, len(m.st.Series))
	}
	if lv == levelStudy && want(keyStudyInstances) {
		b = appendInt(b, dicom.NumberOfStudyRelatedInstances, x, m.st.Instances())
	}
	if lv == levelSeries && want(keySeriesInstances) {
		b = appendInt(b, dicom.NumberOfSeriesRelatedInstances, x, len(m.se.Instances))
	}
	return b
}

// appendElem appends a data element in Explicit or Implicit VR Little Endian
// (PS3.5 §7.1.2, §7.1.3), padding its value to even length with NUL for UI
// and binary VRs and with a space otherwise. Values come from the server's
// own trusted data: one longer than its VR's length field allows is cut.
func appendElem[T string | []byte](b []byte, tag dicom.Tag, vr dicom.VR, explicit bool, v T) []byte {
	long := !explicit || vr.HasLongLength()
	if limit := 0xFFFE; !long && len(v) > limit {
		v = v[:limit]
	}
	b = dicom.AppendHeader(b, tag, vr, uint32(len(v)+len(v)%2), explicit)
	b = append(b, v...)
	if len(v)%2 != 0 {
		pad := byte(' ')
		switch vr {
		case dicom.VRUI, dicom.VROB, dicom.VRUN, dicom.VRUS, dicom.VRUL:
			pad = 0
		}
		b = append(b, pad)
	}
	return b
}

// appendInt appends an IS element holding v.
func appendInt(b []byte, tag dicom.Tag, explicit bool, v int) []byte {
	var buf [20]byte
	return appendElem(b, tag, dicom.VRIS, explicit, strconv.AppendInt(buf[:0], int64(v), 10))
}

// appendUint16 appends a US element holding v.
func appendUint16(b []byte, tag dicom.Tag, explicit bool, v uint16) []byte {
	var buf [2]byte
	binary.LittleEndian.PutUint16(buf[:], v)
	return appendElem(b, tag, dicom.VRUS, explicit, buf[:])
}
