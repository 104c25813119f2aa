package dicom_test

import (
	"bytes"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/pacswatch/pacswatch/internal/dicom"
)

// FuzzDecode checks that Decode never panics and that whatever it accepts
// survives a round trip: encoding the result in the same transfer syntax and
// decoding it again gives the same data set. It also checks the allow-list
// and that no value aliases the input.
func FuzzDecode(f *testing.F) {
	for _, explicit := range []bool{false, true} {
		b, err := dicom.Encode(findResponse(), explicit)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, explicit, true)
	}
	f.Add(cEchoRQ, false, false)
	f.Add(explicitWithSequences(), true, false)
	f.Add(implicitWithSequences(), false, true)
	f.Add(nested(5), true, false)
	// An odd length on an element the allow-list skips (tolerated), and on one it keeps (not).
	f.Add(cat(explicitEl(dicom.PatientName, "PN", "ODD"), explicitEl(dicom.Modality, "CS", "CT")), true, true)
	f.Add(cat(implicitEl(dicom.PatientName, 3, "ODD"), implicitEl(dicom.Modality, 3, "CT ")), false, true)

	f.Fuzz(func(t *testing.T, data []byte, explicit, filter bool) {
		opt := dicom.DecodeOptions{Explicit: explicit, MaxDepth: 8}
		if filter {
			opt.Allow = allowed
		}
		input := bytes.Clone(data)
		ds, err := dicom.Decode(input, opt)
		if err != nil {
			if ds.Len() != 0 {
				t.Fatalf("Decode returned %d elements with error %v", ds.Len(), err)
			}
			return
		}
		first := dump(ds)
		for i := range input {
			input[i] ^= 0xFF
		}
		if got := dump(ds); !slices.Equal(got, first) {
			t.Fatalf("values alias the input:\n got %q\nwant %q", got, first)
		}
		var prev dicom.Tag
		for i, tag := range tags(ds) {
			if filter && !allowed(tag) {
				t.Fatalf("kept %v, not on the allow-list", tag)
			}
			if i > 0 && tag <= prev {
				t.Fatalf("tags out of order: %v after %v", tag, prev)
			}
			prev = tag
			// Every getter on every element: none may panic or recurse (the
			// character set is itself an element a server controls).
			if v, ok := ds.String(tag); ok && !utf8.ValidString(v) {
				t.Fatalf("String(%v) = %q, not valid UTF-8", tag, v)
			}
			ds.Strings(tag)
			ds.Int(tag)
			ds.Uint16(tag)
			ds.Uint32(tag)
		}

		enc, err := dicom.Encode(ds, explicit)
		if err != nil {
			t.Fatalf("Encode of a decoded data set: %v", err)
		}
		again, err := dicom.Decode(enc, opt)
		if err != nil {
			t.Fatalf("Decode(Encode(ds)): %v", err)
		}
		if got := dump(again); !slices.Equal(got, first) {
			t.Fatalf("round trip:\n got %q\nwant %q", got, first)
		}
	})
}

// FuzzDecodeString checks that DecodeString never panics, always returns
// valid UTF-8, and inverts EncodeString for Latin-1 text without escapes.
func FuzzDecodeString(f *testing.F) {
	f.Add([]byte("M\xfcller^J\xf6rg"), "ISO_IR 100")
	f.Add([]byte("Müller"), "ISO_IR 192")
	f.Add([]byte("\x1b$B0B\x1b(B"), "ISO 2022 IR 87")
	f.Add([]byte("\x1b-A\xe9\x1b"), "")
	f.Fuzz(func(t *testing.T, b []byte, charset string) {
		s, err := dicom.DecodeString(b, []string{"", charset})
		if !utf8.ValidString(s) {
			t.Fatalf("DecodeString(%q, %q) = %q, not valid UTF-8", b, charset, s)
		}
		if err != nil || bytes.IndexByte(b, 0x1B) >= 0 {
			return
		}
		latin1, err := dicom.DecodeString(b, []string{"ISO_IR 100"})
		if err != nil {
			t.Fatalf("DecodeString(%q, ISO_IR 100): %v", b, err)
		}
		back, err := dicom.EncodeString(latin1, "ISO_IR 100")
		if err != nil || !bytes.Equal(back, b) {
			t.Fatalf("EncodeString(DecodeString(%q)) = %q, %v", b, back, err)
		}
	})
}
