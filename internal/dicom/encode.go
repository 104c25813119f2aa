package dicom

import (
	"encoding/binary"
	"fmt"
	"math"
)

// undefinedLength is the value length of an element or item whose end is
// marked by a delimitation item (PS3.5 §7.1.1, §7.5).
const undefinedLength = 0xFFFFFFFF

// AppendDataset appends ds encoded in Explicit VR Little Endian when explicit
// is true, else in Implicit VR Little Endian (PS3.5 §7.1.2, §7.1.3), and
// returns the extended buffer. Values of odd length are padded to even with
// the VR's padding byte. Elements are written as they are: group lengths are
// not computed (see EncodeCommand). On error dst is returned unextended.
func AppendDataset(dst []byte, ds Dataset, explicit bool) ([]byte, error) {
	start := len(dst)
	for _, e := range ds.elems {
		var err error
		if dst, err = appendElement(dst, e, explicit); err != nil {
			return dst[:start], err
		}
	}
	return dst, nil
}

// Encode returns ds encoded as AppendDataset encodes it.
func Encode(ds Dataset, explicit bool) ([]byte, error) {
	return AppendDataset(make([]byte, 0, encodedSize(ds)), ds, explicit)
}

// EncodeCommand returns the command set ds in Implicit VR Little Endian
// (PS3.7 §6.3.1), led by a Command Group Length (0000,0000) computed from the
// other elements; any Command Group Length in ds is ignored. Every element
// must be in group 0000.
func EncodeCommand(ds Dataset) ([]byte, error) {
	b := make([]byte, 12, 12+encodedSize(ds))
	for _, e := range ds.elems {
		if e.Tag == CommandGroupLength {
			continue
		}
		if e.Tag.Group() != 0 {
			return nil, fmt.Errorf("encode command: element %v is outside group 0000: %w", e.Tag, ErrMalformed)
		}
		var err error
		if b, err = appendElement(b, e, false); err != nil {
			return nil, fmt.Errorf("encode command: %w", err)
		}
	}
	n := len(b) - 12
	if uint64(n) > math.MaxUint32 {
		return nil, fmt.Errorf("encode command: %d bytes: %w", n, ErrTooLarge)
	}
	le := binary.LittleEndian
	le.PutUint32(b[0:], uint32(CommandGroupLength)) // group 0000, element 0000
	le.PutUint32(b[4:], 4)
	le.PutUint32(b[8:], uint32(n))
	return b, nil
}

// encodedSize bounds the encoded size of ds in either transfer syntax.
func encodedSize(ds Dataset) int {
	n := 0
	for _, e := range ds.elems {
		n += 12 + len(e.Value) + 1
	}
	return n
}

// AppendHeader appends the header of a data element whose value is length
// bytes (even, and within the VR's length field: the caller checks): the tag,
// then in Explicit VR Little Endian the VR and a 16-bit length, or reserved
// bytes and a 32-bit length for the VRs that have one (PS3.5 §7.1.2), and in
// Implicit VR Little Endian a 32-bit length (PS3.5 §7.1.3).
func AppendHeader(dst []byte, tag Tag, vr VR, length uint32, explicit bool) []byte {
	le := binary.LittleEndian
	dst = le.AppendUint16(dst, tag.Group())
	dst = le.AppendUint16(dst, tag.Element())
	switch {
	case !explicit:
		return le.AppendUint32(dst, length)
	case vr.HasLongLength():
		dst = append(dst, byte(vr>>8), byte(vr), 0, 0)
		return le.AppendUint32(dst, length)
	}
	dst = append(dst, byte(vr>>8), byte(vr))
	return le.AppendUint16(dst, uint16(length))
}

// appendElement appends one data element (PS3.5 §7.1.2 or §7.1.3).
func appendElement(dst []byte, e Element, explicit bool) ([]byte, error) {
	if e.Tag.Group() == 0xFFFE {
		return dst, fmt.Errorf("encode %v: item and delimitation tags are not data elements: %w", e.Tag, ErrMalformed)
	}
	vr := e.VR
	length := uint64(len(e.Value)) + uint64(len(e.Value)%2)
	long := true
	if explicit {
		if !vr.known() {
			return dst, fmt.Errorf("encode %v: invalid VR %v: %w", e.Tag, vr, ErrMalformed)
		}
		long = vr.HasLongLength()
	} else if !vr.known() {
		vr = LookupVR(e.Tag) // only the padding byte depends on it
	}
	if (long && length >= undefinedLength) || (!long && length > math.MaxUint16) {
		return dst, fmt.Errorf("encode %v: %d-byte %v value: %w", e.Tag, length, vr, ErrTooLarge)
	}

	dst = AppendHeader(dst, e.Tag, vr, uint32(length), explicit)
	dst = append(dst, e.Value...)
	if len(e.Value)%2 != 0 {
		dst = append(dst, vr.padByte())
	}
	return dst, nil
}
