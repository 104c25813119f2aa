package dicom

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Default limits of DecodeOptions.
const (
	DefaultMaxBytes    = 1 << 20 // 1 MiB
	DefaultMaxElements = 4096
	DefaultMaxDepth    = 16
)

// DecodeOptions configures Decode.
type DecodeOptions struct {
	// Explicit selects Explicit VR Little Endian; false selects Implicit VR
	// Little Endian, where each VR comes from LookupVR.
	Explicit bool
	// Allow reports whether to keep a top-level element. Elements it refuses
	// are skipped without copying their bytes. Nil keeps every element.
	Allow func(Tag) bool
	// MaxBytes caps the input length; longer input fails with ErrTooLarge.
	// Zero or less means DefaultMaxBytes.
	MaxBytes int
	// MaxElements caps the number of top-level elements, kept or not; more
	// fail with ErrTooLarge. Zero or less means DefaultMaxElements.
	MaxElements int
	// MaxDepth caps the nesting of sequences of undefined length; deeper
	// nesting fails with ErrTooDeep. Zero or less means DefaultMaxDepth.
	MaxDepth int
}

// Decode decodes the data set b in the transfer syntax opt selects.
//
// Elements come out ordered by tag whatever their order in b; of several with
// the same tag the last wins. A value of undefined length (SQ, UN, or OB
// encapsulated pixel data, PS3.5 §7.5 and §A.4) is walked item by item to its
// Sequence Delimitation Item, reading the items of a UN value in Implicit VR
// (PS3.5 §6.2.2). Allowed SQ and UN values are kept as raw items without the
// delimiter; encapsulated pixel data is never kept, since its fragments
// cannot be re-encoded with a defined length. Items of defined length are
// not looked into.
//
// An element opt.Allow refuses may have an odd value length, itself or in
// the items of its value: as dcmtk does (dcmAcceptOddAttributeLength), the
// length is read as it is and the element skipped, so that one sloppy element
// nobody asked for does not cost the whole data set. An element that is kept
// must have an even length (PS3.5 §7.1.1).
//
// Decode fails with ErrTruncated when b ends inside an element or sequence,
// including with 1 to 7 bytes left over, and with ErrMalformed on an odd
// value length in an element it keeps, an unknown VR, an undefined length on
// any other VR, or an item or delimiter where none belongs.
func Decode(b []byte, opt DecodeOptions) (Dataset, error) {
	maxBytes := orDefault(opt.MaxBytes, DefaultMaxBytes)
	if len(b) > maxBytes {
		return Dataset{}, fmt.Errorf("decode %d bytes, limit %d: %w", len(b), maxBytes, ErrTooLarge)
	}
	maxElements := orDefault(opt.MaxElements, DefaultMaxElements)
	d := decoder{b: b, maxDepth: orDefault(opt.MaxDepth, DefaultMaxDepth)}

	var stack [16]Element // an identifier's worth, copied out below at its exact size
	kept := stack[:0]     // values alias b until copied out below
	off := 0
	for n := 0; off < len(b); n++ {
		if n == maxElements {
			return Dataset{}, fmt.Errorf("decode: more than %d elements: %w", maxElements, ErrTooLarge)
		}
		h, err := d.header(off, opt.Explicit)
		if err != nil {
			return Dataset{}, err
		}
		keep := opt.Allow == nil || opt.Allow(h.tag)
		if keep && h.odd() {
			return Dataset{}, h.oddError(off)
		}
		var end int
		if h.length != undefinedLength {
			end = h.value + int(h.length)
			off = end
		} else {
			if end, off, err = d.sequence(h.value, opt.Explicit && h.vr != VRUN, !keep, 1); err != nil {
				return Dataset{}, fmt.Errorf("decode %v: %w", h.tag, err)
			}
			keep = keep && h.vr != VROB
		}
		if keep {
			kept = append(kept, Element{Tag: h.tag, VR: h.vr, Value: b[h.value:end]})
		}
	}

	if !slices.IsSortedFunc(kept, compareElements) {
		slices.SortStableFunc(kept, compareElements)
	}
	kept = dedupe(kept)

	if len(kept) == 0 {
		return Dataset{}, nil
	}
	size := 0
	for _, e := range kept {
		size += len(e.Value)
	}
	buf := make([]byte, 0, size)
	elems := make([]Element, len(kept))
	for i, e := range kept {
		start := len(buf)
		buf = append(buf, e.Value...)
		elems[i] = Element{Tag: e.Tag, VR: e.VR, Value: buf[start:len(buf):len(buf)]}
	}
	return Dataset{elems: elems}, nil
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

func compareElements(a, b Element) int { return compareTag(a, b.Tag) }

// dedupe drops all but the last of each run of elements with the same tag.
func dedupe(elems []Element) []Element {
	out := elems[:0]
	for i, e := range elems {
		if i+1 < len(elems) && elems[i+1].Tag == e.Tag {
			continue
		}
		out = append(out, e)
	}
	return out
}

type decoder struct {
	b        []byte
	maxDepth int
}

// header is a data element header whose value starts at b[value]. A defined
// length has been checked to fit in b; the caller checks that it is even
// where it must be (see odd).
type header struct {
	tag    Tag
	vr     VR
	length uint32
	value  int
}

// odd reports whether h has an odd defined length, which PS3.5 §7.1.1 forbids.
func (h header) odd() bool { return h.length != undefinedLength && h.length%2 != 0 }

// oddError is the error of an odd length in a header read at off.
func (h header) oddError(off int) error {
	return fmt.Errorf("decode %v at offset %d: odd length %d: %w", h.tag, off, h.length, ErrMalformed)
}

func (d *decoder) tag(off int) Tag {
	return Tag(binary.LittleEndian.Uint16(d.b[off:]))<<16 | Tag(binary.LittleEndian.Uint16(d.b[off+2:]))
}

// header reads the data element header at off (PS3.5 §7.1.2, §7.1.3).
func (d *decoder) header(off int, explicit bool) (header, error) {
	le := binary.LittleEndian
	if len(d.b)-off < 8 {
		return header{}, fmt.Errorf("decode element header at offset %d: %d bytes left: %w", off, len(d.b)-off, ErrTruncated)
	}
	h := header{tag: d.tag(off)}
	if h.tag.Group() == 0xFFFE {
		return header{}, fmt.Errorf("decode %v at offset %d: item or delimiter outside a sequence: %w", h.tag, off, ErrMalformed)
	}
	switch {
	case !explicit:
		h.vr = LookupVR(h.tag)
		h.length = le.Uint32(d.b[off+4:])
		h.value = off + 8
	default:
		h.vr = VR(d.b[off+4])<<8 | VR(d.b[off+5])
		if !h.vr.known() {
			return header{}, fmt.Errorf("decode %v at offset %d: unknown VR %#04x: %w", h.tag, off, uint16(h.vr), ErrMalformed)
		}
		if !h.vr.HasLongLength() {
			h.length = uint32(le.Uint16(d.b[off+6:]))
			h.value = off + 8
			break
		}
		if len(d.b)-off < 12 {
			return header{}, fmt.Errorf("decode %v header at offset %d: %w", h.tag, off, ErrTruncated)
		}
		h.length = le.Uint32(d.b[off+8:]) // after two reserved bytes
		h.value = off + 12
	}
	switch {
	case h.length == undefinedLength:
		if h.vr != VRSQ && h.vr != VRUN && h.vr != VROB {
			return header{}, fmt.Errorf("decode %v at offset %d: undefined length on VR %v: %w", h.tag, off, h.vr, ErrMalformed)
		}
	case uint64(h.length) > uint64(len(d.b)-h.value):
		return header{}, fmt.Errorf("decode %v at offset %d: length %d, %d bytes left: %w", h.tag, off, h.length, len(d.b)-h.value, ErrTruncated)
	}
	return h, nil
}

// sequence walks the items of a value of undefined length starting at off
// (PS3.5 §7.5.2) and returns the offsets of its Sequence Delimitation Item and
// of the byte after it. The items' elements are in Explicit VR if explicit.
// Odd lengths of items and their elements are an error unless lenient (the
// value is being skipped).
func (d *decoder) sequence(off int, explicit, lenient bool, depth int) (end, next int, err error) {
	if depth > d.maxDepth {
		return 0, 0, fmt.Errorf("depth %d at offset %d: %w", depth, off, ErrTooDeep)
	}
	for {
		t, length, err := d.itemHeader(off)
		if err != nil {
			return 0, 0, err
		}
		switch {
		case t == SequenceDelimitationItem:
			return off, off + 8, nil
		case t != Item:
			return 0, 0, fmt.Errorf("%v at offset %d in a sequence: %w", t, off, ErrMalformed)
		case length == undefinedLength:
			if off, err = d.item(off+8, explicit, lenient, depth); err != nil {
				return 0, 0, err
			}
		case length%2 != 0 && !lenient:
			return 0, 0, fmt.Errorf("item at offset %d: odd length %d: %w", off, length, ErrMalformed)
		case uint64(length) > uint64(len(d.b)-off-8):
			return 0, 0, fmt.Errorf("item at offset %d: length %d, %d bytes left: %w", off, length, len(d.b)-off-8, ErrTruncated)
		default:
			off += 8 + int(length)
		}
	}
}

// item walks the elements of an item of undefined length starting at off
// (PS3.5 §7.5.1) and returns the offset after its Item Delimitation Item.
// Odd lengths are an error unless lenient, as in sequence.
func (d *decoder) item(off int, explicit, lenient bool, depth int) (next int, err error) {
	for {
		if len(d.b)-off >= 8 && d.tag(off) == ItemDelimitationItem {
			if _, _, err := d.itemHeader(off); err != nil {
				return 0, err
			}
			return off + 8, nil
		}
		h, err := d.header(off, explicit)
		if err != nil {
			return 0, err
		}
		if h.odd() && !lenient {
			return 0, h.oddError(off)
		}
		if h.length != undefinedLength {
			off = h.value + int(h.length)
			continue
		}
		if _, off, err = d.sequence(h.value, explicit && h.vr != VRUN, lenient, depth+1); err != nil {
			return 0, err
		}
	}
}

// itemHeader reads an item or delimitation tag and its 32-bit length, which
// no transfer syntax precedes with a VR (PS3.5 §7.5). Delimiters must have
// length 0.
func (d *decoder) itemHeader(off int) (Tag, uint32, error) {
	if len(d.b)-off < 8 {
		return 0, 0, fmt.Errorf("item header at offset %d: %d bytes left: %w", off, len(d.b)-off, ErrTruncated)
	}
	t, length := d.tag(off), binary.LittleEndian.Uint32(d.b[off+4:])
	if (t == ItemDelimitationItem || t == SequenceDelimitationItem) && length != 0 {
		return 0, 0, fmt.Errorf("%v at offset %d: length %d: %w", t, off, length, ErrMalformed)
	}
	return t, length, nil
}
