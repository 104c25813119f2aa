package dicom

import "fmt"

// VR is a value representation (PS3.5 §6.2, Table 6.2-1), held as its two
// ASCII characters with the first in the high byte. The zero VR is invalid.
type VR uint16

// The value representations of PS3.5 Table 6.2-1.
const (
	VRAE VR = 'A'<<8 | 'E' // Application Entity
	VRAS VR = 'A'<<8 | 'S' // Age String
	VRAT VR = 'A'<<8 | 'T' // Attribute Tag
	VRCS VR = 'C'<<8 | 'S' // Code String
	VRDA VR = 'D'<<8 | 'A' // Date
	VRDS VR = 'D'<<8 | 'S' // Decimal String
	VRDT VR = 'D'<<8 | 'T' // Date Time
	VRFL VR = 'F'<<8 | 'L' // Floating Point Single
	VRFD VR = 'F'<<8 | 'D' // Floating Point Double
	VRIS VR = 'I'<<8 | 'S' // Integer String
	VRLO VR = 'L'<<8 | 'O' // Long String
	VRLT VR = 'L'<<8 | 'T' // Long Text
	VROB VR = 'O'<<8 | 'B' // Other Byte
	VROD VR = 'O'<<8 | 'D' // Other Double
	VROF VR = 'O'<<8 | 'F' // Other Float
	VROL VR = 'O'<<8 | 'L' // Other Long
	VROV VR = 'O'<<8 | 'V' // Other 64-bit Very Long
	VROW VR = 'O'<<8 | 'W' // Other Word
	VRPN VR = 'P'<<8 | 'N' // Person Name
	VRSH VR = 'S'<<8 | 'H' // Short String
	VRSL VR = 'S'<<8 | 'L' // Signed Long
	VRSQ VR = 'S'<<8 | 'Q' // Sequence of Items
	VRSS VR = 'S'<<8 | 'S' // Signed Short
	VRST VR = 'S'<<8 | 'T' // Short Text
	VRSV VR = 'S'<<8 | 'V' // Signed 64-bit Very Long
	VRTM VR = 'T'<<8 | 'M' // Time
	VRUC VR = 'U'<<8 | 'C' // Unlimited Characters
	VRUI VR = 'U'<<8 | 'I' // Unique Identifier
	VRUL VR = 'U'<<8 | 'L' // Unsigned Long
	VRUN VR = 'U'<<8 | 'N' // Unknown
	VRUR VR = 'U'<<8 | 'R' // Universal Resource Identifier or Locator
	VRUS VR = 'U'<<8 | 'S' // Unsigned Short
	VRUT VR = 'U'<<8 | 'T' // Unlimited Text
	VRUV VR = 'U'<<8 | 'V' // Unsigned 64-bit Very Long
)

// String returns the VR's two letters, e.g. "PN", or "VR(0x....)" for a value
// that is not a VR of PS3.5.
func (v VR) String() string {
	if !v.known() {
		return fmt.Sprintf("VR(%#04x)", uint16(v))
	}
	return string([]byte{byte(v >> 8), byte(v)})
}

func (v VR) known() bool {
	switch v {
	case VRAE, VRAS, VRAT, VRCS, VRDA, VRDS, VRDT, VRFL, VRFD, VRIS, VRLO, VRLT,
		VROB, VROD, VROF, VROL, VROV, VROW, VRPN, VRSH, VRSL, VRSQ, VRSS, VRST,
		VRSV, VRTM, VRUC, VRUI, VRUL, VRUN, VRUR, VRUS, VRUT, VRUV:
		return true
	}
	return false
}

// HasLongLength reports whether an Explicit VR element of this VR has two
// reserved bytes and a 32-bit value length (PS3.5 Table 7.1-1) rather than a
// 16-bit one (Table 7.1-2).
func (v VR) HasLongLength() bool {
	switch v {
	case VROB, VROD, VROF, VROL, VROV, VROW, VRSQ, VRUC, VRUN, VRUR, VRUT, VRSV, VRUV:
		return true
	}
	return false
}

// isText reports whether values of v are character strings.
func (v VR) isText() bool {
	switch v {
	case VRAE, VRAS, VRCS, VRDA, VRDS, VRDT, VRIS, VRLO, VRLT, VRPN, VRSH, VRST,
		VRTM, VRUC, VRUI, VRUR, VRUT:
		return true
	}
	return false
}

// usesCharset reports whether values of v are in the repertoire named by
// Specific Character Set (0008,0005) rather than the default one
// (PS3.5 §6.1.2.3, Table 6.2-1).
func (v VR) usesCharset() bool {
	switch v {
	case VRLO, VRLT, VRPN, VRSH, VRST, VRUC, VRUT:
		return true
	}
	return false
}

// multiValued reports whether a backslash separates values of v: it does in
// every character string VR but LT, ST, UT and UR (PS3.5 §6.4).
func (v VR) multiValued() bool {
	switch v {
	case VRLT, VRST, VRUT, VRUR:
		return false
	}
	return v.isText()
}

// padByte is the byte that pads a value of v to even length: NUL for UI and
// binary VRs, space for character strings (PS3.5 §6.2).
func (v VR) padByte() byte {
	if v.isText() && v != VRUI {
		return ' '
	}
	return 0
}
