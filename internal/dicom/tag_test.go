package dicom_test

import (
	"testing"

	"github.com/pacswatch/pacswatch/internal/dicom"
)

func TestTag(t *testing.T) {
	tests := []struct {
		tag            dicom.Tag
		group, element uint16
		str, keyword   string
		vr             dicom.VR
	}{
		{dicom.QueryRetrieveLevel, 0x0008, 0x0052, "(0008,0052)", "QueryRetrieveLevel", dicom.VRCS},
		{dicom.CommandGroupLength, 0x0000, 0x0000, "(0000,0000)", "CommandGroupLength", dicom.VRUL},
		{dicom.OffendingElement, 0x0000, 0x0901, "(0000,0901)", "OffendingElement", dicom.VRAT},
		{dicom.SeriesDescription, 0x0008, 0x103E, "(0008,103E)", "SeriesDescription", dicom.VRLO},
		{dicom.NumberOfStudyRelatedInstances, 0x0020, 0x1208, "(0020,1208)", "NumberOfStudyRelatedInstances", dicom.VRIS},
		{dicom.TransferSyntaxUID, 0x0002, 0x0010, "(0002,0010)", "TransferSyntaxUID", dicom.VRUI},
		{dicom.PixelData, 0x7FE0, 0x0010, "(7FE0,0010)", "PixelData", dicom.VROW},
		{dicom.NewTag(0x0010, 0x0000), 0x0010, 0x0000, "(0010,0000)", "", dicom.VRUL}, // group length
		{dicom.NewTag(0x0009, 0x1010), 0x0009, 0x1010, "(0009,1010)", "", dicom.VRUN}, // private
		{dicom.Item, 0xFFFE, 0xE000, "(FFFE,E000)", "Item", dicom.VRUN},               // no VR
		{dicom.NewTag(0xFFFE, 0x0000), 0xFFFE, 0x0000, "(FFFE,0000)", "", dicom.VRUN}, // not a group length
	}
	for _, tt := range tests {
		t.Run(tt.str, func(t *testing.T) {
			if got := dicom.NewTag(tt.group, tt.element); got != tt.tag {
				t.Errorf("NewTag = %#08x, want %#08x", uint32(got), uint32(tt.tag))
			}
			if got := tt.tag.Group(); got != tt.group {
				t.Errorf("Group() = %#04x, want %#04x", got, tt.group)
			}
			if got := tt.tag.Element(); got != tt.element {
				t.Errorf("Element() = %#04x, want %#04x", got, tt.element)
			}
			if got := tt.tag.String(); got != tt.str {
				t.Errorf("String() = %q, want %q", got, tt.str)
			}
			if got := dicom.Keyword(tt.tag); got != tt.keyword {
				t.Errorf("Keyword = %q, want %q", got, tt.keyword)
			}
			if got := dicom.LookupVR(tt.tag); got != tt.vr {
				t.Errorf("LookupVR = %v, want %v", got, tt.vr)
			}
		})
	}
}

func TestVR(t *testing.T) {
	tests := []struct {
		vr   dicom.VR
		str  string
		long bool
	}{
		{dicom.VRAE, "AE", false},
		{dicom.VRPN, "PN", false},
		{dicom.VRUS, "US", false},
		{dicom.VRUL, "UL", false},
		{dicom.VRFD, "FD", false},
		{dicom.VROB, "OB", true},
		{dicom.VROW, "OW", true},
		{dicom.VRSQ, "SQ", true},
		{dicom.VRUN, "UN", true},
		{dicom.VRUT, "UT", true},
		{dicom.VRUC, "UC", true},
		{dicom.VRUR, "UR", true},
		{dicom.VRSV, "SV", true},
		{dicom.VRUV, "UV", true},
		{dicom.VROV, "OV", true},
		{0, "VR(0x0000)", false},
		{'Z'<<8 | 'Z', "VR(0x5a5a)", false},
	}
	for _, tt := range tests {
		if got := tt.vr.String(); got != tt.str {
			t.Errorf("VR(%#04x).String() = %q, want %q", uint16(tt.vr), got, tt.str)
		}
		if got := tt.vr.HasLongLength(); got != tt.long {
			t.Errorf("%v.HasLongLength() = %v, want %v", tt.vr, got, tt.long)
		}
	}
}
