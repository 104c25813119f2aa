// Package dicom implements the DICOM data element encoding of PS3.5 (Data
// Structures and Encoding): tags and value representations (§6.2, §7.1),
// data sets in the Implicit VR Little Endian and Explicit VR Little Endian
// transfer syntaxes (§7.1.2, §7.1.3, Annex A.1 and A.2), sequences and
// delimitation items (§7.5), and the character repertoires ISO_IR 6,
// ISO_IR 100 and ISO_IR 192 (§6.1).
//
// It is sized for what pacswatch exchanges with peers: DIMSE command sets
// (PS3.7 §6.3.1, always Implicit VR Little Endian) and query identifiers. The
// decoder treats its input as hostile: every length is checked against the
// bytes that remain before it is used, the input, the element count and the
// sequence depth are capped, nothing is allocated from a declared length, and
// elements outside a caller's allow-list are skipped without being copied.
package dicom

import "errors"

// Transfer syntax UIDs of the encodings this package reads and writes
// (PS3.5 Annex A.1 and A.2; PS3.6 Annex A).
const (
	ImplicitVRLittleEndian = "1.2.840.10008.1.2"
	ExplicitVRLittleEndian = "1.2.840.10008.1.2.1"
)

// Errors returned by the codec, wrapped with the offset or tag concerned.
var (
	// ErrTruncated reports input that ends inside an element header, a value
	// or a sequence.
	ErrTruncated = errors.New("dicom: truncated data")
	// ErrMalformed reports input or elements that break an encoding rule:
	// an odd value length, an unknown VR, an undefined length where none is
	// allowed, a misplaced item or delimiter.
	ErrMalformed = errors.New("dicom: malformed data")
	// ErrTooLarge reports input, an element count or a value over a limit.
	ErrTooLarge = errors.New("dicom: data too large")
	// ErrTooDeep reports sequences nested deeper than DecodeOptions.MaxDepth.
	ErrTooDeep = errors.New("dicom: sequences nested too deep")
	// ErrUnsupportedCharset reports a Specific Character Set term this
	// package does not implement.
	ErrUnsupportedCharset = errors.New("dicom: unsupported character set")
	// ErrNotRepresentable reports a character the target character set
	// cannot encode.
	ErrNotRepresentable = errors.New("dicom: character not representable in character set")
)
