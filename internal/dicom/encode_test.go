package dicom_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/pacswatch/pacswatch/internal/dicom"
)

func TestEncodeCommandCEchoRQ(t *testing.T) {
	var ds dicom.Dataset
	// Set out of order, with a stale group length that must be replaced.
	ds.Set(dicom.NewUint16(dicom.CommandDataSetType, 0x0101))
	ds.Set(dicom.NewUint32(dicom.CommandGroupLength, 999))
	ds.Set(dicom.NewString(dicom.AffectedSOPClassUID, "1.2.840.10008.1.1"))
	ds.Set(dicom.NewUint16(dicom.MessageID, 1))
	ds.Set(dicom.NewUint16(dicom.CommandField, 0x0030))
	got, err := dicom.EncodeCommand(ds)
	if err != nil {
		t.Fatalf("EncodeCommand: %v", err)
	}
	if !bytes.Equal(got, cEchoRQ) {
		t.Errorf("EncodeCommand =\n% x\nwant\n% x", got, cEchoRQ)
	}
}

func TestEncodeBytes(t *testing.T) {
	tests := []struct {
		name     string
		elems    []dicom.Element
		explicit bool
		want     []byte
	}{
		{
			name:     "explicit short form, space padding",
			elems:    []dicom.Element{{Tag: dicom.QueryRetrieveLevel, VR: dicom.VRCS, Value: []byte("STUDY")}},
			explicit: true,
			want:     []byte{0x08, 0x00, 0x52, 0x00, 'C', 'S', 0x06, 0x00, 'S', 'T', 'U', 'D', 'Y', ' '},
		},
		{
			name:     "explicit long form, NUL padding",
			elems:    []dicom.Element{{Tag: dicom.FileMetaInformationVersion, VR: dicom.VROB, Value: []byte{0x01}}},
			explicit: true,
			want:     []byte{0x02, 0x00, 0x01, 0x00, 'O', 'B', 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00},
		},
		{
			name:     "explicit UI pads with NUL",
			elems:    []dicom.Element{{Tag: dicom.StudyInstanceUID, VR: dicom.VRUI, Value: []byte("1.2.3")}},
			explicit: true,
			want:     []byte{0x20, 0x00, 0x0D, 0x00, 'U', 'I', 0x06, 0x00, '1', '.', '2', '.', '3', 0x00},
		},
		{
			name:  "implicit, padding from the dictionary when VR is unset",
			elems: []dicom.Element{{Tag: dicom.PatientID, Value: []byte("ABC")}},
			want:  []byte{0x10, 0x00, 0x20, 0x00, 0x04, 0x00, 0x00, 0x00, 'A', 'B', 'C', ' '},
		},
		{
			name: "implicit, ascending tag order",
			elems: []dicom.Element{
				dicom.NewUint16(dicom.Rows, 512),
				dicom.NewString(dicom.Modality, "CT"),
			},
			want: []byte{
				0x08, 0x00, 0x60, 0x00, 0x02, 0x00, 0x00, 0x00, 'C', 'T',
				0x28, 0x00, 0x10, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ds dicom.Dataset
			for _, e := range tt.elems {
				ds.Set(e)
			}
			prefix := []byte("prefix")
			got, err := dicom.AppendDataset(prefix, ds, tt.explicit)
			if err != nil {
				t.Fatalf("AppendDataset: %v", err)
			}
			if want := cat(prefix, tt.want); !bytes.Equal(got, want) {
				t.Errorf("AppendDataset =\n% x\nwant\n% x", got, want)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name     string
		elem     dicom.Element
		explicit bool
		want     error
	}{
		{"16-bit length overflow", dicom.Element{Tag: dicom.PatientName, VR: dicom.VRPN, Value: make([]byte, 65536)}, true, dicom.ErrTooLarge},
		{"unknown VR explicit", dicom.Element{Tag: dicom.PatientName, Value: []byte("AB")}, true, dicom.ErrMalformed},
		{"item tag", dicom.Element{Tag: dicom.Item, VR: dicom.VRSQ}, false, dicom.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ds dicom.Dataset
			ds.Set(dicom.NewString(dicom.Modality, "CT"))
			ds.Set(tt.elem)
			got, err := dicom.AppendDataset([]byte("keep"), ds, tt.explicit)
			if !errors.Is(err, tt.want) {
				t.Fatalf("AppendDataset error = %v, want %v", err, tt.want)
			}
			if string(got) != "keep" {
				t.Errorf("AppendDataset returned %q on error, want the input buffer", got)
			}
		})
	}
}

func TestEncodeCommandRejectsDataElements(t *testing.T) {
	var ds dicom.Dataset
	ds.Set(dicom.NewUint16(dicom.CommandField, 0x0020))
	ds.Set(dicom.NewString(dicom.QueryRetrieveLevel, "STUDY"))
	if _, err := dicom.EncodeCommand(ds); !errors.Is(err, dicom.ErrMalformed) {
		t.Errorf("EncodeCommand error = %v, want %v", err, dicom.ErrMalformed)
	}
}
