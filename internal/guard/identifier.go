package guard

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/guard/policy"
)

// maxItemDepth caps how deep inspectIdentifier looks into sequence items.
const maxItemDepth = 4

// Keys that say how to match, not what: they never restrict a query (PS3.4 §C.4.1.1.3).
var notMatchingKeys = map[dicom.Tag]bool{
	dicom.QueryRetrieveLevel:   true,
	dicom.SpecificCharacterSet: true,
	0x00080053:                 true, // Query/Retrieve View
	0x00080201:                 true, // Timezone Offset From UTC
}

var errIdentifier = errors.New("guard: malformed identifier")

// inspectIdentifier reads a C-FIND, C-GET or C-MOVE identifier: its Query/Retrieve Level
// (upper case, trimmed) and whether every key in it matches universally (PS3.4 §C.2.2.2.3): an
// empty value or only '*' wildcards, in every value of every key, in sequence items too. Private
// keys are ignored (an archive does not match on them); an item whose keys the guard cannot
// read (one of undefined length) counts as universal, so that the doubt goes to refusal. The
// identifier's values go no further than this function.
func inspectIdentifier(b []byte, explicit bool) (policy.Level, bool, error) {
	ds, err := dicom.Decode(b, dicom.DecodeOptions{Explicit: explicit, MaxBytes: maxIdentifier})
	if err != nil {
		return "", false, errIdentifier
	}
	level, _ := ds.String(dicom.QueryRetrieveLevel)
	return policy.Level(strings.ToUpper(strings.TrimSpace(level))), universal(&ds, explicit, 0), nil
}

func universal(ds *dicom.Dataset, explicit bool, depth int) bool {
	for e := range ds.All() {
		if notMatchingKeys[e.Tag] || e.Tag.Group()%2 == 1 || e.Tag.Element() == 0 {
			continue
		}
		if e.VR == dicom.VRSQ {
			if !itemsUniversal(e.Value, explicit, depth+1) {
				return false
			}
			continue
		}
		for _, v := range bytes.Split(e.Value, []byte{'\\'}) {
			if len(bytes.Trim(bytes.Trim(v, " \x00"), "*")) > 0 {
				return false
			}
		}
	}
	return true
}

// itemsUniversal reports whether every item of a sequence value matches universally.
func itemsUniversal(b []byte, explicit bool, depth int) bool {
	if depth > maxItemDepth {
		return true
	}
	for len(b) >= 8 {
		tag := dicom.Tag(binary.LittleEndian.Uint16(b))<<16 | dicom.Tag(binary.LittleEndian.Uint16(b[2:]))
		n := binary.LittleEndian.Uint32(b[4:])
		if tag != 0xFFFEE000 || n == 0xFFFFFFFF || uint64(n) > uint64(len(b)-8) {
			return true // not an item the guard can read: the doubt goes to refusal
		}
		ds, err := dicom.Decode(b[8:8+n], dicom.DecodeOptions{Explicit: explicit, MaxBytes: maxIdentifier})
		if err == nil && !universal(&ds, explicit, depth) {
			return false
		}
		b = b[8+n:]
	}
	return true
}
