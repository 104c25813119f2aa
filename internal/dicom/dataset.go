package dicom

import (
	"cmp"
	"encoding/binary"
	"iter"
	"slices"
	"strconv"
	"strings"
)

// Dataset is a data set (PS3.5 §7): elements ordered by ascending tag, at
// most one per tag. The zero value is an empty data set.
//
// The typed getters read an element of VR UN, which its sender did not
// know (PS3.5 §6.2.2), as the VR LookupVR gives its tag.
type Dataset struct {
	elems []Element // sorted by Tag, no duplicates
}

func compareTag(e Element, t Tag) int { return cmp.Compare(e.Tag, t) }

// Set adds e, replacing any element with the same tag. It keeps e.Value
// without copying it.
func (ds *Dataset) Set(e Element) {
	if n := len(ds.elems); n == 0 || ds.elems[n-1].Tag < e.Tag {
		ds.elems = append(ds.elems, e)
		return
	}
	i, found := slices.BinarySearchFunc(ds.elems, e.Tag, compareTag)
	if found {
		ds.elems[i] = e
		return
	}
	ds.elems = slices.Insert(ds.elems, i, e)
}

// Get returns the element with tag t.
func (ds *Dataset) Get(t Tag) (Element, bool) {
	i, found := slices.BinarySearchFunc(ds.elems, t, compareTag)
	if !found {
		return Element{}, false
	}
	return ds.elems[i], true
}

// Len returns the number of elements.
func (ds *Dataset) Len() int { return len(ds.elems) }

// All returns the elements in ascending tag order. Their values are shared
// with the data set and must not be modified.
func (ds *Dataset) All() iter.Seq[Element] {
	return func(yield func(Element) bool) {
		for _, e := range ds.elems {
			if !yield(e) {
				return
			}
		}
	}
}

// text returns the value of the character string element t decoded to UTF-8
// with the VR it is read as, before any trimming.
func (ds *Dataset) text(t Tag) (string, VR, bool) {
	e, ok := ds.Get(t)
	if !ok {
		return "", 0, false
	}
	vr := e.readVR()
	if !vr.isText() {
		return "", 0, false
	}
	var charsets []string
	if vr.usesCharset() && t != SpecificCharacterSet {
		charsets = ds.charsets()
	}
	s, _ := DecodeString(e.Value, charsets) // best effort; the error only names the character set
	return s, vr, true
}

// charsets returns the Specific Character Set (0008,0005) values. They are read as the default
// repertoire from the raw bytes, whatever VR the element came with: a server may send the element
// with a VR that itself depends on the character set (PN, say), and decoding it through text would
// recurse without end.
func (ds *Dataset) charsets() []string {
	e, ok := ds.Get(SpecificCharacterSet)
	if !ok || len(e.Value) == 0 {
		return nil
	}
	vals := strings.Split(string(e.Value), `\`)
	for i, v := range vals {
		vals[i] = strings.Trim(v, " \x00")
	}
	return vals
}

// String returns the value of the character string element t, decoded with
// the data set's Specific Character Set (0008,0005) where the VR calls for it
// and with padding trimmed: trailing spaces and NULs always, leading spaces
// except in LT, ST, UT, UC and UR, whose leading spaces are significant
// (PS3.5 Table 6.2-1). Characters that cannot be decoded, including all those
// of an unsupported character set, become U+FFFD. ok is false when t is
// absent or not a character string. A multi-valued value keeps its '\'
// separators; see Strings.
func (ds *Dataset) String(t Tag) (string, bool) {
	s, vr, ok := ds.text(t)
	if !ok {
		return "", false
	}
	return trimText(vr, s), true
}

// Strings returns the values of the character string element t, split on
// '\' where the VR is multi-valued (PS3.5 §6.4) and each trimmed as String
// does. It returns nil when t is absent, empty or not a character string.
func (ds *Dataset) Strings(t Tag) []string {
	s, vr, ok := ds.text(t)
	if !ok || s == "" {
		return nil
	}
	if !vr.multiValued() {
		return []string{trimText(vr, s)}
	}
	vals := strings.Split(s, `\`)
	for i, v := range vals {
		vals[i] = trimText(vr, v)
	}
	return vals
}

func trimText(vr VR, s string) string {
	s = strings.TrimRight(s, " \x00")
	switch vr {
	case VRLT, VRST, VRUT, VRUC, VRUR:
		return s
	}
	return strings.TrimLeft(s, " ")
}

// Uint16 returns the first value of the US element t.
func (ds *Dataset) Uint16(t Tag) (uint16, bool) {
	e, ok := ds.Get(t)
	if !ok || e.readVR() != VRUS || len(e.Value) < 2 {
		return 0, false
	}
	return binary.LittleEndian.Uint16(e.Value), true
}

// Uint32 returns the first value of the UL element t.
func (ds *Dataset) Uint32(t Tag) (uint32, bool) {
	e, ok := ds.Get(t)
	if !ok || e.readVR() != VRUL || len(e.Value) < 4 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(e.Value), true
}

// Int returns the first value of the integer element t: US, UL, SS, SL, or
// an IS number string, whose surrounding spaces are ignored.
func (ds *Dataset) Int(t Tag) (int64, bool) {
	e, ok := ds.Get(t)
	if !ok {
		return 0, false
	}
	v := e.Value
	le := binary.LittleEndian
	switch vr := e.readVR(); {
	case vr == VRUS && len(v) >= 2:
		return int64(le.Uint16(v)), true
	case vr == VRSS && len(v) >= 2:
		return int64(int16(le.Uint16(v))), true
	case vr == VRUL && len(v) >= 4:
		return int64(le.Uint32(v)), true
	case vr == VRSL && len(v) >= 4:
		return int64(int32(le.Uint32(v))), true
	case vr == VRIS:
		s, _, _ := strings.Cut(string(v), `\`)
		n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimRight(s, "\x00")), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// readVR is the VR by which typed getters read e: its own, or for UN (a VR
// the sender did not know, PS3.5 §6.2.2) the dictionary's.
func (e Element) readVR() VR {
	if e.VR == VRUN {
		return LookupVR(e.Tag)
	}
	return e.VR
}
