package dicom_test

import (
	"slices"
	"testing"

	"github.com/pacswatch/pacswatch/internal/dicom"
)

func TestNewElements(t *testing.T) {
	tests := []struct {
		name string
		got  dicom.Element
		want dicom.Element
	}{
		{"UI pads with NUL", dicom.NewString(dicom.StudyInstanceUID, "1.2.3"), dicom.Element{Tag: dicom.StudyInstanceUID, VR: dicom.VRUI, Value: []byte("1.2.3\x00")}},
		{"CS pads with space", dicom.NewString(dicom.QueryRetrieveLevel, "STUDY"), dicom.Element{Tag: dicom.QueryRetrieveLevel, VR: dicom.VRCS, Value: []byte("STUDY ")}},
		{"even needs no pad", dicom.NewString(dicom.Modality, "CT"), dicom.Element{Tag: dicom.Modality, VR: dicom.VRCS, Value: []byte("CT")}},
		{"values joined", dicom.NewString(dicom.ModalitiesInStudy, "CT", "MR", "SR"), dicom.Element{Tag: dicom.ModalitiesInStudy, VR: dicom.VRCS, Value: []byte(`CT\MR\SR`)}},
		{"values joined and padded", dicom.NewString(dicom.ModalitiesInStudy, "CT", "MR"), dicom.Element{Tag: dicom.ModalitiesInStudy, VR: dicom.VRCS, Value: []byte(`CT\MR `)}},
		{"no value", dicom.NewString(dicom.PatientName), dicom.Element{Tag: dicom.PatientName, VR: dicom.VRPN, Value: []byte{}}},
		{"unknown tag is UN", dicom.NewString(privateTag, "X"), dicom.Element{Tag: privateTag, VR: dicom.VRUN, Value: []byte("X ")}},
		{"US", dicom.NewUint16(dicom.MessageID, 0x1234), dicom.Element{Tag: dicom.MessageID, VR: dicom.VRUS, Value: []byte{0x34, 0x12}}},
		{"UL", dicom.NewUint32(dicom.CommandGroupLength, 0x01020304), dicom.Element{Tag: dicom.CommandGroupLength, VR: dicom.VRUL, Value: []byte{4, 3, 2, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got.Tag != tt.want.Tag || tt.got.VR != tt.want.VR || string(tt.got.Value) != string(tt.want.Value) {
				t.Errorf("got %v %v %q, want %v %v %q", tt.got.Tag, tt.got.VR, tt.got.Value, tt.want.Tag, tt.want.VR, tt.want.Value)
			}
		})
	}
}

func TestDatasetSetGet(t *testing.T) {
	var ds dicom.Dataset
	ds.Set(dicom.NewString(dicom.StudyInstanceUID, "1.2"))
	ds.Set(dicom.NewString(dicom.QueryRetrieveLevel, "STUDY"))
	ds.Set(dicom.NewUint16(dicom.Rows, 1))
	ds.Set(dicom.NewString(dicom.SpecificCharacterSet, "ISO_IR 100"))
	ds.Set(dicom.NewString(dicom.StudyInstanceUID, "1.3")) // replaces
	want := []dicom.Tag{dicom.SpecificCharacterSet, dicom.QueryRetrieveLevel, dicom.StudyInstanceUID, dicom.Rows}
	if got := tags(ds); !slices.Equal(got, want) {
		t.Errorf("tags = %v, want %v", got, want)
	}
	if got, want := ds.Len(), 4; got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
	if e, ok := ds.Get(dicom.StudyInstanceUID); !ok || string(e.Value) != "1.3\x00" {
		t.Errorf("Get(StudyInstanceUID) = %q, %v; want \"1.3\\x00\", true", e.Value, ok)
	}
	if _, ok := ds.Get(dicom.PatientName); ok {
		t.Error("Get(PatientName) found an element never set")
	}
	n := 0
	for range ds.All() {
		n++
		break
	}
	if n != 1 {
		t.Errorf("All() yielded %d elements after break, want 1", n)
	}
}

func TestDatasetStrings(t *testing.T) {
	var ds dicom.Dataset
	for _, e := range []dicom.Element{
		{Tag: dicom.QueryRetrieveLevel, VR: dicom.VRCS, Value: []byte(" STUDY ")},
		{Tag: dicom.StudyInstanceUID, VR: dicom.VRUI, Value: []byte("1.2.3\x00")},
		{Tag: dicom.ModalitiesInStudy, VR: dicom.VRCS, Value: []byte(`CT\ MR\SR `)},
		{Tag: dicom.ErrorComment, VR: dicom.VRLO, Value: []byte(`a\b`)},
		{Tag: dicom.NewTag(0x0008, 0x4000), VR: dicom.VRLT, Value: []byte(`  keep\this  `)},
		{Tag: dicom.Rows, VR: dicom.VRUS, Value: []byte{1, 0}},
		{Tag: dicom.StudyID, VR: dicom.VRSH, Value: nil},
		{Tag: dicom.RetrieveAETitle, VR: dicom.VRUN, Value: []byte("ORTHANC ")}, // read as AE
	} {
		ds.Set(e)
	}
	tests := []struct {
		tag     dicom.Tag
		str     string
		ok      bool
		strings []string
	}{
		{dicom.QueryRetrieveLevel, "STUDY", true, []string{"STUDY"}},
		{dicom.StudyInstanceUID, "1.2.3", true, []string{"1.2.3"}},
		{dicom.ModalitiesInStudy, `CT\ MR\SR`, true, []string{"CT", "MR", "SR"}},
		{dicom.ErrorComment, `a\b`, true, []string{"a", "b"}},
		{dicom.NewTag(0x0008, 0x4000), `  keep\this`, true, []string{`  keep\this`}},
		{dicom.StudyID, "", true, nil},
		{dicom.RetrieveAETitle, "ORTHANC", true, []string{"ORTHANC"}},
		{dicom.Rows, "", false, nil},
		{dicom.PatientName, "", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.tag.String(), func(t *testing.T) {
			if got, ok := ds.String(tt.tag); got != tt.str || ok != tt.ok {
				t.Errorf("String = %q, %v; want %q, %v", got, ok, tt.str, tt.ok)
			}
			if got := ds.Strings(tt.tag); !slices.Equal(got, tt.strings) {
				t.Errorf("Strings = %q, want %q", got, tt.strings)
			}
		})
	}
}

func TestDatasetCharsets(t *testing.T) {
	tests := []struct {
		name    string
		charset []string // values of Specific Character Set; nil means absent
		elem    dicom.Element
		want    string
	}{
		{"Latin-1 name", []string{"ISO_IR 100"}, dicom.Element{Tag: dicom.PatientName, VR: dicom.VRPN, Value: []byte("M\xfcller^J\xf6rg ")}, "Müller^Jörg"},
		{"ISO 2022 Latin-1 name", []string{"ISO 2022 IR 100"}, dicom.Element{Tag: dicom.PatientName, VR: dicom.VRPN, Value: []byte("Fran\xe7ois")}, "François"},
		{"UTF-8 name", []string{"ISO_IR 192"}, dicom.Element{Tag: dicom.PatientName, VR: dicom.VRPN, Value: []byte("Müller^Jörg ")}, "Müller^Jörg"},
		{"UTF-8 invalid bytes", []string{"ISO_IR 192"}, dicom.Element{Tag: dicom.PatientName, VR: dicom.VRPN, Value: []byte("A\xffB ")}, "A\uFFFDB"},
		{"no character set", nil, dicom.Element{Tag: dicom.PatientName, VR: dicom.VRPN, Value: []byte("M\xfcller")}, "M\uFFFDller"},
		{"unsupported, best effort", []string{"ISO_IR 144"}, dicom.Element{Tag: dicom.InstitutionName, VR: dicom.VRLO, Value: []byte("\xbc\xbe ABC")}, "\uFFFD\uFFFD ABC"},
		{"CS keeps the default repertoire", []string{"ISO_IR 100"}, dicom.Element{Tag: dicom.Modality, VR: dicom.VRCS, Value: []byte("C\xe9")}, "C\uFFFD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ds dicom.Dataset
			if tt.charset != nil {
				ds.Set(dicom.NewString(dicom.SpecificCharacterSet, tt.charset...))
			}
			ds.Set(tt.elem)
			if got, ok := ds.String(tt.elem.Tag); got != tt.want || !ok {
				t.Errorf("String = %q, %v; want %q, true", got, ok, tt.want)
			}
		})
	}
}

func TestDatasetNumbers(t *testing.T) {
	var ds dicom.Dataset
	for _, e := range []dicom.Element{
		dicom.NewUint16(dicom.Status, 0xFF00),
		dicom.NewUint32(dicom.CommandGroupLength, 0xFFFFFFFF),
		{Tag: dicom.NewTag(0x0018, 0x9219), VR: dicom.VRSS, Value: []byte{0xFE, 0xFF}},
		{Tag: dicom.NewTag(0x0018, 0x6020), VR: dicom.VRSL, Value: []byte{0xFE, 0xFF, 0xFF, 0xFF}},
		{Tag: dicom.NumberOfStudyRelatedInstances, VR: dicom.VRIS, Value: []byte(" 120 ")},
		{Tag: dicom.SeriesNumber, VR: dicom.VRIS, Value: []byte(`-3\4`)},
		{Tag: dicom.InstanceNumber, VR: dicom.VRIS, Value: []byte("x1")},
		{Tag: dicom.NumberOfStudyRelatedSeries, VR: dicom.VRUN, Value: []byte("7 ")}, // read as IS
		{Tag: dicom.MessageID, VR: dicom.VRUN, Value: []byte{9, 0}},                  // read as US
		{Tag: dicom.Rows, VR: dicom.VRUS, Value: []byte{1}},                          // short
		{Tag: dicom.StudyID, VR: dicom.VRSH, Value: []byte("12")},
	} {
		ds.Set(e)
	}
	tests := []struct {
		tag   dicom.Tag
		i     int64
		iok   bool
		u16   uint16
		u16ok bool
		u32   uint32
		u32ok bool
	}{
		{dicom.Status, 0xFF00, true, 0xFF00, true, 0, false},
		{dicom.CommandGroupLength, 0xFFFFFFFF, true, 0, false, 0xFFFFFFFF, true},
		{dicom.NewTag(0x0018, 0x9219), -2, true, 0, false, 0, false},
		{dicom.NewTag(0x0018, 0x6020), -2, true, 0, false, 0, false},
		{dicom.NumberOfStudyRelatedInstances, 120, true, 0, false, 0, false},
		{dicom.SeriesNumber, -3, true, 0, false, 0, false},
		{dicom.InstanceNumber, 0, false, 0, false, 0, false},
		{dicom.NumberOfStudyRelatedSeries, 7, true, 0, false, 0, false},
		{dicom.MessageID, 9, true, 9, true, 0, false},
		{dicom.Rows, 0, false, 0, false, 0, false},
		{dicom.StudyID, 0, false, 0, false, 0, false},
		{dicom.PatientName, 0, false, 0, false, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.tag.String(), func(t *testing.T) {
			if got, ok := ds.Int(tt.tag); got != tt.i || ok != tt.iok {
				t.Errorf("Int = %d, %v; want %d, %v", got, ok, tt.i, tt.iok)
			}
			if got, ok := ds.Uint16(tt.tag); got != tt.u16 || ok != tt.u16ok {
				t.Errorf("Uint16 = %d, %v; want %d, %v", got, ok, tt.u16, tt.u16ok)
			}
			if got, ok := ds.Uint32(tt.tag); got != tt.u32 || ok != tt.u32ok {
				t.Errorf("Uint32 = %d, %v; want %d, %v", got, ok, tt.u32, tt.u32ok)
			}
		})
	}
}

// TestCharsetWithTextVR: a server sent Specific Character Set with VR PN (in Explicit VR). Reading
// any text element used to decode the character set through itself, recursing until the stack
// overflowed: a fatal error no recover catches (found by dicomprobe's FuzzResponse).
func TestCharsetWithTextVR(t *testing.T) {
	var ds dicom.Dataset
	ds.Set(dicom.Element{Tag: dicom.SpecificCharacterSet, VR: dicom.VRPN, Value: []byte("ISO_IR 192")})
	ds.Set(dicom.Element{Tag: dicom.PatientName, VR: dicom.VRPN, Value: []byte("J\xc3\xb6rg")})
	if got, _ := ds.String(dicom.PatientName); got != "Jörg" {
		t.Errorf("PatientName = %q, want Jörg (decoded as ISO_IR 192)", got)
	}
	if got := ds.Strings(dicom.SpecificCharacterSet); len(got) != 1 || got[0] != "ISO_IR 192" {
		t.Errorf("SpecificCharacterSet = %q", got)
	}
}
