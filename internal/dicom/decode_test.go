package dicom_test

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"testing"

	"github.com/pacswatch/pacswatch/internal/dicom"
)

// dump lists a data set as "tag VR value" lines for comparisons in tests.
func dump(ds dicom.Dataset) []string {
	var out []string
	for e := range ds.All() {
		out = append(out, fmt.Sprintf("%v %v %q", e.Tag, e.VR, e.Value))
	}
	return out
}

func tags(ds dicom.Dataset) []dicom.Tag {
	var out []dicom.Tag
	for e := range ds.All() {
		out = append(out, e.Tag)
	}
	return out
}

func TestDecodeCEchoRQ(t *testing.T) {
	ds, err := dicom.Decode(cEchoRQ, dicom.DecodeOptions{})
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	tests := []struct {
		tag  dicom.Tag
		want int64
	}{
		{dicom.CommandGroupLength, 56},
		{dicom.CommandField, 0x0030},
		{dicom.MessageID, 1},
		{dicom.CommandDataSetType, 0x0101},
	}
	for _, tt := range tests {
		if got, ok := ds.Int(tt.tag); !ok || got != tt.want {
			t.Errorf("Int(%v) = %d, %v; want %d, true", tt.tag, got, ok, tt.want)
		}
	}
	if got, ok := ds.String(dicom.AffectedSOPClassUID); got != "1.2.840.10008.1.1" || !ok {
		t.Errorf("String(AffectedSOPClassUID) = %q, %v; want 1.2.840.10008.1.1, true", got, ok)
	}
	if got, want := ds.Len(), 5; got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
}

func TestRoundTrip(t *testing.T) {
	var ds dicom.Dataset
	for _, e := range []dicom.Element{
		dicom.NewUint16(dicom.CommandField, 0x8020),
		dicom.NewUint32(dicom.NewTag(0x0008, 0x0000), 1234), // a group length
		{Tag: dicom.FileMetaInformationVersion, VR: dicom.VROB, Value: []byte{0, 1}},
		dicom.NewString(dicom.SpecificCharacterSet, "ISO_IR 192"),
		dicom.NewString(dicom.QueryRetrieveLevel, "STUDY"),
		dicom.NewString(dicom.ModalitiesInStudy, "CT", "MR", "SR"),
		dicom.NewString(dicom.PatientName, "FAKE^Jörg"),
		dicom.NewString(dicom.StudyInstanceUID, "1.2.3"),
		dicom.NewString(dicom.NumberOfStudyRelatedInstances, "7"),
		dicom.NewString(dicom.AccessionNumber), // zero length: universal matching
		{Tag: privateTag, VR: dicom.VRUN, Value: []byte{1, 2, 3, 4}},
		{Tag: dicom.PixelData, VR: dicom.VROW, Value: make([]byte, 70000)}, // beyond a 16-bit length
	} {
		ds.Set(e)
	}
	for _, explicit := range []bool{false, true} {
		t.Run(fmt.Sprintf("explicit=%v", explicit), func(t *testing.T) {
			b, err := dicom.Encode(ds, explicit)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, err := dicom.Decode(b, dicom.DecodeOptions{Explicit: explicit})
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if g, w := dump(got), dump(ds); !slices.Equal(g, w) {
				t.Errorf("round trip:\n got %q\nwant %q", g, w)
			}
		})
	}
}

func TestDecodeAllowList(t *testing.T) {
	for _, explicit := range []bool{false, true} {
		t.Run(fmt.Sprintf("explicit=%v", explicit), func(t *testing.T) {
			b, err := dicom.Encode(findResponse(), explicit)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			input := bytes.Clone(b)
			ds, err := dicom.Decode(input, dicom.DecodeOptions{Explicit: explicit, Allow: allowed})
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			want := []dicom.Tag{
				dicom.SpecificCharacterSet, dicom.StudyDate, dicom.QueryRetrieveLevel,
				dicom.RetrieveAETitle, dicom.ModalitiesInStudy, dicom.StudyInstanceUID,
				dicom.NumberOfStudyRelatedSeries, dicom.NumberOfStudyRelatedInstances,
			}
			if got := tags(ds); !slices.Equal(got, want) {
				t.Errorf("tags = %v, want %v", got, want)
			}
			for e := range ds.All() {
				if bytes.Contains(e.Value, []byte("FAKE^JOHN")) {
					t.Errorf("%v holds the patient name", e.Tag)
				}
			}
			// Values are copies: scribbling over the input changes nothing.
			before := dump(ds)
			for i := range input {
				input[i] = 'X'
			}
			if got := dump(ds); !slices.Equal(got, before) {
				t.Errorf("values alias the input:\n got %q\nwant %q", got, before)
			}
		})
	}
}

func TestDecodeSequences(t *testing.T) {
	explicit := explicitWithSequences()
	implicit := implicitWithSequences()
	// The kept SQ value: everything between its header and its delimiter.
	sqStart := len(explicitEl(dicom.QueryRetrieveLevel, "CS", "STUDY ")) + 12
	sqEnd := bytes.Index(explicit, explicitUndefined(privateTag, "UN")) - 8
	unStart := sqEnd + 8 + 12
	unEnd := bytes.Index(explicit, explicitEl(dicom.StudyInstanceUID, "UI", "1.2.3.4\x00")) - 8
	implicitSeqStart := len(implicitEl(dicom.QueryRetrieveLevel, 6, "STUDY ")) + 8
	implicitSeqEnd := bytes.Index(implicit, implicitEl(dicom.StudyInstanceUID, 8, "1.2.3.4\x00")) - 8

	tests := []struct {
		name string
		in   []byte
		opt  dicom.DecodeOptions
		want []string
	}{
		{
			name: "explicit allow-list",
			in:   explicit,
			opt:  dicom.DecodeOptions{Explicit: true, Allow: allowed},
			want: []string{`(0008,0052) CS "STUDY "`, `(0020,000D) UI "1.2.3.4\x00"`},
		},
		{
			name: "explicit keep all",
			in:   explicit,
			opt:  dicom.DecodeOptions{Explicit: true},
			want: []string{
				`(0008,0052) CS "STUDY "`,
				fmt.Sprintf("(0008,1110) SQ %q", explicit[sqStart:sqEnd]),
				fmt.Sprintf("(0009,1010) UN %q", explicit[unStart:unEnd]),
				`(0020,000D) UI "1.2.3.4\x00"`,
				// encapsulated PixelData is never kept
			},
		},
		{
			name: "implicit allow-list",
			in:   implicit,
			opt:  dicom.DecodeOptions{Allow: allowed},
			want: []string{`(0008,0052) CS "STUDY "`, `(0020,000D) UI "1.2.3.4\x00"`},
		},
		{
			name: "implicit keep all",
			in:   implicit,
			opt:  dicom.DecodeOptions{},
			want: []string{
				`(0008,0052) CS "STUDY "`,
				fmt.Sprintf("(0009,1010) UN %q", implicit[implicitSeqStart:implicitSeqEnd]),
				`(0020,000D) UI "1.2.3.4\x00"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds, err := dicom.Decode(tt.in, tt.opt)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got := dump(ds); !slices.Equal(got, tt.want) {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
			// Kept sequences re-encode with a defined length and decode the same.
			b, err := dicom.Encode(ds, tt.opt.Explicit)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			again, err := dicom.Decode(b, tt.opt)
			if err != nil {
				t.Fatalf("Decode(Encode): %v", err)
			}
			if got := dump(again); !slices.Equal(got, tt.want) {
				t.Errorf("after re-encoding:\n got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// nested returns an Explicit VR SQ of undefined length nested depth deep.
func nested(depth int) []byte {
	if depth == 0 {
		return explicitEl(dicom.Modality, "CS", "CT")
	}
	return cat(explicitUndefined(referencedStudySequence, "SQ"), itemUndefined, nested(depth-1), itemDelim, seqDelim)
}

func TestDecodeErrors(t *testing.T) {
	name := explicitEl(dicom.PatientName, "PN", "FAKE^A")
	tests := []struct {
		name string
		in   []byte
		opt  dicom.DecodeOptions
		want error
	}{
		{"trailing 4 bytes", cat(name, []byte{1, 2, 3, 4}), dicom.DecodeOptions{Explicit: true}, dicom.ErrTruncated},
		{"trailing 7 bytes implicit", cat(implicitEl(dicom.PatientName, 2, "AB"), make([]byte, 7)), dicom.DecodeOptions{}, dicom.ErrTruncated},
		{"value past end", explicitEl(dicom.PatientName, "PN", "FAKE^A")[:12], dicom.DecodeOptions{Explicit: true}, dicom.ErrTruncated},
		{"value past end implicit", implicitEl(dicom.PatientName, 10, "FAKE"), dicom.DecodeOptions{}, dicom.ErrTruncated},
		{"long header cut", explicitEl(dicom.PatientName, "UT", "")[:10], dicom.DecodeOptions{Explicit: true}, dicom.ErrTruncated},
		{"odd length", explicitEl(dicom.PatientName, "PN", "ODD"), dicom.DecodeOptions{Explicit: true}, dicom.ErrMalformed},
		{"odd length implicit", implicitEl(dicom.PatientName, 3, "ODD"), dicom.DecodeOptions{}, dicom.ErrMalformed},
		{"unknown VR", explicitEl(dicom.PatientName, "ZZ", "AB"), dicom.DecodeOptions{Explicit: true}, dicom.ErrMalformed},
		{"undefined length on UT", cat(explicitUndefined(dicom.PatientName, "UT"), seqDelim), dicom.DecodeOptions{Explicit: true}, dicom.ErrMalformed},
		{"undefined length on OW", cat(explicitUndefined(dicom.PixelData, "OW"), seqDelim), dicom.DecodeOptions{Explicit: true}, dicom.ErrMalformed},
		{"undefined length on PN implicit", cat(implicitEl(dicom.PatientName, 0xFFFFFFFF, ""), seqDelim), dicom.DecodeOptions{}, dicom.ErrMalformed},
		{"item at top level", cat(itemHdr(dicom.Item, 0)), dicom.DecodeOptions{}, dicom.ErrMalformed},
		{"delimiter at top level", cat(name, seqDelim), dicom.DecodeOptions{Explicit: true}, dicom.ErrMalformed},
		{"sequence never ends", cat(explicitUndefined(referencedStudySequence, "SQ"), itemHdr(dicom.Item, 0)), dicom.DecodeOptions{Explicit: true}, dicom.ErrTruncated},
		{"item never ends", cat(explicitUndefined(referencedStudySequence, "SQ"), itemUndefined, name), dicom.DecodeOptions{Explicit: true}, dicom.ErrTruncated},
		{"element in sequence", cat(explicitUndefined(referencedStudySequence, "SQ"), name, seqDelim), dicom.DecodeOptions{Explicit: true}, dicom.ErrMalformed},
		{"delimiter with length", cat(explicitUndefined(referencedStudySequence, "SQ"), itemHdr(dicom.SequenceDelimitationItem, 2), []byte{0, 0}), dicom.DecodeOptions{Explicit: true}, dicom.ErrMalformed},
		{"item delimiter with length", cat(explicitUndefined(referencedStudySequence, "SQ"), itemUndefined, itemHdr(dicom.ItemDelimitationItem, 4), seqDelim), dicom.DecodeOptions{Explicit: true}, dicom.ErrMalformed},
		{"odd item length", cat(explicitUndefined(referencedStudySequence, "SQ"), itemHdr(dicom.Item, 1), []byte{0}, seqDelim), dicom.DecodeOptions{Explicit: true}, dicom.ErrMalformed},
		{"item past end", cat(explicitUndefined(referencedStudySequence, "SQ"), itemHdr(dicom.Item, 100), seqDelim), dicom.DecodeOptions{Explicit: true}, dicom.ErrTruncated},
		{"bad element in item", cat(explicitUndefined(referencedStudySequence, "SQ"), itemUndefined, explicitEl(dicom.PatientName, "PN", "ODD"), itemDelim, seqDelim), dicom.DecodeOptions{Explicit: true}, dicom.ErrMalformed},
		{"depth 3 of 2", nested(3), dicom.DecodeOptions{Explicit: true, MaxDepth: 2}, dicom.ErrTooDeep},
		{"depth over default", nested(dicom.DefaultMaxDepth + 1), dicom.DecodeOptions{Explicit: true}, dicom.ErrTooDeep},
		{"over MaxBytes", make([]byte, 1024), dicom.DecodeOptions{MaxBytes: 1000}, dicom.ErrTooLarge},
		{"over DefaultMaxBytes", make([]byte, dicom.DefaultMaxBytes+8), dicom.DecodeOptions{}, dicom.ErrTooLarge},
		{"over MaxElements", cat(name, name, name), dicom.DecodeOptions{Explicit: true, MaxElements: 2}, dicom.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds, err := dicom.Decode(tt.in, tt.opt)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode error = %v, want %v", err, tt.want)
			}
			if ds.Len() != 0 {
				t.Errorf("Decode returned %d elements with an error", ds.Len())
			}
		})
	}
}

func TestDecodeLimitsAtTheEdge(t *testing.T) {
	name := explicitEl(dicom.PatientName, "PN", "FAKE^A")
	tests := []struct {
		name string
		in   []byte
		opt  dicom.DecodeOptions
	}{
		{"MaxBytes exactly", name, dicom.DecodeOptions{Explicit: true, MaxBytes: len(name)}},
		{"MaxElements exactly", cat(name, name), dicom.DecodeOptions{Explicit: true, MaxElements: 2}},
		{"MaxDepth exactly", nested(2), dicom.DecodeOptions{Explicit: true, MaxDepth: 2}},
		{"empty input", nil, dicom.DecodeOptions{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := dicom.Decode(tt.in, tt.opt); err != nil {
				t.Errorf("Decode: %v", err)
			}
		})
	}
}

func TestDecodeHugeLengthAllocatesLittle(t *testing.T) {
	const gigabyte = 1 << 30
	tests := []struct {
		name string
		in   []byte
		opt  dicom.DecodeOptions
	}{
		{"explicit UT", cat(explicitEl(dicom.PatientName, "UT", "")[:8], u32(gigabyte), []byte("FAKE^ABC")), dicom.DecodeOptions{Explicit: true}},
		{"implicit", cat(implicitEl(dicom.PatientName, gigabyte, ""), []byte("FAKE^ABCDEFG")), dicom.DecodeOptions{}},
		{"item in sequence", cat(explicitUndefined(referencedStudySequence, "SQ"), itemHdr(dicom.Item, gigabyte)), dicom.DecodeOptions{Explicit: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.in) != 20 {
				t.Fatalf("fixture is %d bytes, want 20", len(tt.in))
			}
			if _, err := dicom.Decode(tt.in, tt.opt); !errors.Is(err, dicom.ErrTruncated) {
				t.Fatalf("Decode error = %v, want %v", err, dicom.ErrTruncated)
			}
			const runs = 100
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for range runs {
				dicom.Decode(tt.in, tt.opt)
			}
			runtime.ReadMemStats(&after)
			if perRun := (after.TotalAlloc - before.TotalAlloc) / runs; perRun > 1024 {
				t.Errorf("Decode allocated %d bytes per run, want at most 1024", perRun)
			}
		})
	}
}

func TestDecodeDuplicatesAndOrder(t *testing.T) {
	in := cat(
		explicitEl(dicom.StudyInstanceUID, "UI", "1.2\x00"),
		explicitEl(dicom.QueryRetrieveLevel, "CS", "SERIES"),
		explicitEl(dicom.StudyInstanceUID, "UI", "1.3\x00"),
		explicitEl(dicom.QueryRetrieveLevel, "CS", "STUDY "),
		explicitEl(dicom.SpecificCharacterSet, "CS", "ISO_IR 100"),
	)
	ds, err := dicom.Decode(in, dicom.DecodeOptions{Explicit: true})
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	want := []string{
		`(0008,0005) CS "ISO_IR 100"`,
		`(0008,0052) CS "STUDY "`,
		`(0020,000D) UI "1.3\x00"`,
	}
	if got := dump(ds); !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func BenchmarkDecodeFindResponse(b *testing.B) {
	in, err := dicom.Encode(findResponse(), false)
	if err != nil {
		b.Fatal(err)
	}
	opt := dicom.DecodeOptions{Allow: allowed}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dicom.Decode(in, opt); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDecodeOddLengthNobodyAskedFor: an element the allow-list refuses may
// have an odd length, as dcmtk tolerates; it is skipped by that length and the
// elements around it are kept. A kept element with an odd length still fails.
func TestDecodeOddLengthNobodyAskedFor(t *testing.T) {
	level := explicitEl(dicom.QueryRetrieveLevel, "CS", "STUDY ")
	uid := explicitEl(dicom.StudyInstanceUID, "UI", "1.2\x00")
	want := []string{`(0008,0052) CS "STUDY "`, `(0020,000D) UI "1.2\x00"`}
	oddSeq := cat(explicitUndefined(referencedStudySequence, "SQ"), itemUndefined,
		explicitEl(dicom.PatientName, "PN", "ODD"), itemDelim, itemHdr(dicom.Item, 3), []byte("abc"), seqDelim)
	tests := []struct {
		name string
		in   []byte
		opt  dicom.DecodeOptions
		want []string // nil: ErrMalformed
	}{
		{"explicit", cat(level, explicitEl(dicom.PatientName, "PN", "ODD"), uid), dicom.DecodeOptions{Explicit: true, Allow: allowed}, want},
		{"implicit", cat(implicitEl(dicom.QueryRetrieveLevel, 6, "STUDY "), implicitEl(dicom.PatientName, 3, "ODD"), implicitEl(dicom.StudyInstanceUID, 4, "1.2\x00")), dicom.DecodeOptions{Allow: allowed}, want},
		{"long length", cat(level, explicitEl(dicom.PatientName, "UT", "ODD"), uid), dicom.DecodeOptions{Explicit: true, Allow: allowed}, want},
		{"last element", cat(level, uid, explicitEl(dicom.PatientName, "PN", "ODD")), dicom.DecodeOptions{Explicit: true, Allow: allowed}, want},
		{"in a skipped sequence", cat(level, oddSeq, uid), dicom.DecodeOptions{Explicit: true, Allow: allowed}, want},
		{"kept", cat(level, explicitEl(dicom.StudyInstanceUID, "UI", "1.2"), uid), dicom.DecodeOptions{Explicit: true, Allow: allowed}, nil},
		{"kept sequence", cat(level, oddSeq, uid), dicom.DecodeOptions{Explicit: true}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds, err := dicom.Decode(tt.in, tt.opt)
			if tt.want == nil {
				if !errors.Is(err, dicom.ErrMalformed) {
					t.Fatalf("Decode error = %v, want %v", err, dicom.ErrMalformed)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got := dump(ds); !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}
