package dicom_test

import (
	"bytes"
	"encoding/binary"

	"github.com/pacswatch/pacswatch/internal/dicom"
)

// Byte builders for hand-made fixtures, written from PS3.5 §7.1.2, §7.1.3
// and §7.5 independently of the encoder under test.

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func tagLE(t dicom.Tag) []byte {
	return binary.LittleEndian.AppendUint16(binary.LittleEndian.AppendUint16(nil, t.Group()), t.Element())
}

func u16(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// implicitEl is an Implicit VR element (PS3.5 §7.1.3) with the given length.
func implicitEl(t dicom.Tag, length uint32, val string) []byte {
	return cat(tagLE(t), u32(length), []byte(val))
}

// explicitEl is an Explicit VR element (PS3.5 §7.1.2) whose length is
// len(val), in the 16- or 32-bit form the VR calls for.
func explicitEl(t dicom.Tag, vr, val string) []byte {
	switch vr {
	case "OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV":
		return cat(tagLE(t), []byte(vr), []byte{0, 0}, u32(uint32(len(val))), []byte(val))
	}
	return cat(tagLE(t), []byte(vr), u16(uint16(len(val))), []byte(val))
}

// explicitUndefined is the header of an Explicit VR element of undefined
// length.
func explicitUndefined(t dicom.Tag, vr string) []byte {
	return cat(tagLE(t), []byte(vr), []byte{0, 0}, u32(0xFFFFFFFF))
}

// itemHdr is an item or delimitation header (PS3.5 §7.5).
func itemHdr(t dicom.Tag, length uint32) []byte { return cat(tagLE(t), u32(length)) }

var (
	itemUndefined = itemHdr(dicom.Item, 0xFFFFFFFF)
	itemDelim     = itemHdr(dicom.ItemDelimitationItem, 0)
	seqDelim      = itemHdr(dicom.SequenceDelimitationItem, 0)
)

// cEchoRQ is the C-ECHO-RQ command set of PS3.7 §9.3.5.1 as Implicit VR
// Little Endian, written out byte by byte.
var cEchoRQ = []byte{
	0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x38, 0x00, 0x00, 0x00, // (0000,0000) UL 56
	0x00, 0x00, 0x02, 0x00, 0x12, 0x00, 0x00, 0x00, // (0000,0002) UI, 18 bytes
	'1', '.', '2', '.', '8', '4', '0', '.', '1', '0', '0', '0', '8', '.', '1', '.', '1', 0x00,
	0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x30, 0x00, // (0000,0100) US 0x0030 C-ECHO-RQ
	0x00, 0x00, 0x10, 0x01, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, // (0000,0110) US 1
	0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01, // (0000,0800) US 0x0101 no data set
}

// findResponse is a study-level C-FIND response identifier of the kind
// Orthanc returns (PS3.4 §C.6.1.1.2, synthetic values), with a patient-level
// key the allow-list drops.
func findResponse() dicom.Dataset {
	var ds dicom.Dataset
	for _, e := range []dicom.Element{
		dicom.NewString(dicom.SpecificCharacterSet, "ISO_IR 100"),
		dicom.NewString(dicom.StudyDate, "20190412"),
		dicom.NewString(dicom.QueryRetrieveLevel, "STUDY"),
		dicom.NewString(dicom.RetrieveAETitle, "ORTHANC"),
		dicom.NewString(dicom.ModalitiesInStudy, "CT", "SR"),
		dicom.NewString(dicom.PatientName, "FAKE^JOHN"),
		dicom.NewString(dicom.StudyInstanceUID, "2.25.112233445566778899001122334455667788"),
		dicom.NewString(dicom.NumberOfStudyRelatedSeries, "2"),
		dicom.NewString(dicom.NumberOfStudyRelatedInstances, "120"),
	} {
		ds.Set(e)
	}
	return ds
}

// allowed is the SPEC's allow-list of keys pacswatch may keep.
func allowed(t dicom.Tag) bool {
	switch t {
	case dicom.QueryRetrieveLevel, dicom.StudyInstanceUID, dicom.SeriesInstanceUID,
		dicom.SOPInstanceUID, dicom.ModalitiesInStudy, dicom.Modality, dicom.StudyDate,
		dicom.NumberOfStudyRelatedSeries, dicom.NumberOfStudyRelatedInstances,
		dicom.NumberOfSeriesRelatedInstances, dicom.RetrieveAETitle, dicom.SpecificCharacterSet:
		return true
	}
	return false
}

// Sequence fixtures: a referenced-study sequence of undefined length whose
// item of undefined length holds a name and a nested sequence, between two
// allowed elements.
const (
	referencedStudySequence = dicom.Tag(0x00081110)
	referencedSeriesSeq     = dicom.Tag(0x00081115)
	privateTag              = dicom.Tag(0x00091010)
)

func explicitWithSequences() []byte {
	return cat(
		explicitEl(dicom.QueryRetrieveLevel, "CS", "STUDY "),
		explicitUndefined(referencedStudySequence, "SQ"),
		itemUndefined,
		explicitEl(dicom.PatientName, "PN", "FAKE^INSEQ"),
		explicitUndefined(referencedSeriesSeq, "SQ"),
		itemHdr(dicom.Item, 10), explicitEl(dicom.Modality, "CS", "CT"),
		itemUndefined, itemDelim,
		seqDelim,
		itemDelim,
		itemHdr(dicom.Item, 0),
		seqDelim,
		explicitUndefined(privateTag, "UN"), // items in Implicit VR (PS3.5 §6.2.2)
		itemUndefined, implicitEl(dicom.PatientID, 8, "FAKE0001"), itemDelim,
		seqDelim,
		explicitEl(dicom.StudyInstanceUID, "UI", "1.2.3.4\x00"),
		explicitUndefined(dicom.PixelData, "OB"), // encapsulated (PS3.5 §A.4)
		itemHdr(dicom.Item, 0), itemHdr(dicom.Item, 4), []byte{1, 2, 3, 4},
		seqDelim,
	)
}

func implicitWithSequences() []byte {
	return cat(
		implicitEl(dicom.QueryRetrieveLevel, 6, "STUDY "),
		implicitEl(privateTag, 0xFFFFFFFF, ""), // unknown tag, undefined length: a sequence
		itemUndefined,
		implicitEl(dicom.PatientName, 12, "FAKE^INSEQ  "),
		implicitEl(referencedSeriesSeq, 0xFFFFFFFF, ""),
		itemHdr(dicom.Item, 8), implicitEl(dicom.Modality, 0, ""),
		seqDelim,
		itemDelim,
		seqDelim,
		implicitEl(dicom.StudyInstanceUID, 8, "1.2.3.4\x00"),
	)
}
