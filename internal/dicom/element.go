package dicom

import "encoding/binary"

// Element is a data element (PS3.5 §7.1): a tag, its VR and its value as
// raw little-endian bytes, padding included. Elements returned by Decode own
// their Value; they never alias the decoded input.
//
// The Value of an SQ element, or of an element decoded with undefined length,
// holds its items encoded in the transfer syntax it was decoded from, without
// the sequence delimiter; the encoder writes it back with a defined length.
type Element struct {
	Tag   Tag
	VR    VR
	Value []byte
}

// NewString returns a character string element with the VR LookupVR gives
// tag. Its values are joined with '\' (PS3.5 §6.4) and padded to even length
// with a space, or with NUL for UI. The strings are stored as their bytes: use
// EncodeString first for characters outside the default repertoire.
func NewString(tag Tag, vals ...string) Element {
	vr := LookupVR(tag)
	n := 0
	for i, v := range vals {
		if i > 0 {
			n++
		}
		n += len(v)
	}
	b := make([]byte, 0, n+n%2)
	for i, v := range vals {
		if i > 0 {
			b = append(b, '\\')
		}
		b = append(b, v...)
	}
	if len(b)%2 != 0 {
		pad := byte(' ')
		if vr == VRUI {
			pad = 0
		}
		b = append(b, pad)
	}
	return Element{Tag: tag, VR: vr, Value: b}
}

// NewUint16 returns a US element holding v.
func NewUint16(tag Tag, v uint16) Element {
	b := make([]byte, 2)
	binary.LittleEndian.PutUint16(b, v)
	return Element{Tag: tag, VR: VRUS, Value: b}
}

// NewUint32 returns a UL element holding v.
func NewUint32(tag Tag, v uint32) Element {
	b := make([]byte, 4)
	binary.LittleEndian.PutUint32(b, v)
	return Element{Tag: tag, VR: VRUL, Value: b}
}
