package dicom

import "fmt"

// Tag identifies a data element: the group number in the high 16 bits and
// the element number in the low 16 bits (PS3.5 §7.1.1).
type Tag uint32

// NewTag returns the tag (group,element).
func NewTag(group, element uint16) Tag { return Tag(group)<<16 | Tag(element) }

// Group returns the tag's group number.
func (t Tag) Group() uint16 { return uint16(t >> 16) }

// Element returns the tag's element number.
func (t Tag) Element() uint16 { return uint16(t) }

// String returns the tag in the standard's notation, e.g. "(0008,0052)".
func (t Tag) String() string { return fmt.Sprintf("(%04X,%04X)", t.Group(), t.Element()) }

// Command elements (PS3.7 Annex E.1).
const (
	CommandGroupLength                   Tag = 0x00000000
	AffectedSOPClassUID                  Tag = 0x00000002
	RequestedSOPClassUID                 Tag = 0x00000003
	CommandField                         Tag = 0x00000100
	MessageID                            Tag = 0x00000110
	MessageIDBeingRespondedTo            Tag = 0x00000120
	MoveDestination                      Tag = 0x00000600
	Priority                             Tag = 0x00000700
	CommandDataSetType                   Tag = 0x00000800
	Status                               Tag = 0x00000900
	OffendingElement                     Tag = 0x00000901
	ErrorComment                         Tag = 0x00000902
	ErrorID                              Tag = 0x00000903
	AffectedSOPInstanceUID               Tag = 0x00001000
	RequestedSOPInstanceUID              Tag = 0x00001001
	NumberOfRemainingSuboperations       Tag = 0x00001020
	NumberOfCompletedSuboperations       Tag = 0x00001021
	NumberOfFailedSuboperations          Tag = 0x00001022
	NumberOfWarningSuboperations         Tag = 0x00001023
	MoveOriginatorApplicationEntityTitle Tag = 0x00001030
	MoveOriginatorMessageID              Tag = 0x00001031
)

// File Meta Information elements (PS3.10 §7.1).
const (
	FileMetaInformationGroupLength Tag = 0x00020000
	FileMetaInformationVersion     Tag = 0x00020001
	MediaStorageSOPClassUID        Tag = 0x00020002
	MediaStorageSOPInstanceUID     Tag = 0x00020003
	TransferSyntaxUID              Tag = 0x00020010
	ImplementationClassUID         Tag = 0x00020012
	ImplementationVersionName      Tag = 0x00020013
)

// Data elements used in query identifiers and instance headers (PS3.6 §6).
const (
	SpecificCharacterSet           Tag = 0x00080005
	SOPClassUID                    Tag = 0x00080016
	SOPInstanceUID                 Tag = 0x00080018
	StudyDate                      Tag = 0x00080020
	SeriesDate                     Tag = 0x00080021
	StudyTime                      Tag = 0x00080030
	AccessionNumber                Tag = 0x00080050
	QueryRetrieveLevel             Tag = 0x00080052
	RetrieveAETitle                Tag = 0x00080054
	Modality                       Tag = 0x00080060
	ModalitiesInStudy              Tag = 0x00080061
	InstitutionName                Tag = 0x00080080
	ReferringPhysicianName         Tag = 0x00080090
	StudyDescription               Tag = 0x00081030
	SeriesDescription              Tag = 0x0008103E
	PatientName                    Tag = 0x00100010
	PatientID                      Tag = 0x00100020
	PatientBirthDate               Tag = 0x00100030
	PatientSex                     Tag = 0x00100040
	StudyInstanceUID               Tag = 0x0020000D
	SeriesInstanceUID              Tag = 0x0020000E
	StudyID                        Tag = 0x00200010
	SeriesNumber                   Tag = 0x00200011
	InstanceNumber                 Tag = 0x00200013
	NumberOfPatientRelatedStudies  Tag = 0x00201200
	NumberOfStudyRelatedSeries     Tag = 0x00201206
	NumberOfStudyRelatedInstances  Tag = 0x00201208
	NumberOfSeriesRelatedInstances Tag = 0x00201209
	SamplesPerPixel                Tag = 0x00280002
	PhotometricInterpretation      Tag = 0x00280004
	Rows                           Tag = 0x00280010
	Columns                        Tag = 0x00280011
	BitsAllocated                  Tag = 0x00280100
	BitsStored                     Tag = 0x00280101
	HighBit                        Tag = 0x00280102
	PixelRepresentation            Tag = 0x00280103
	PixelData                      Tag = 0x7FE00010
)

// Item and delimitation tags (PS3.5 §7.5). They carry no VR in any transfer
// syntax and are not data elements.
const (
	Item                     Tag = 0xFFFEE000
	ItemDelimitationItem     Tag = 0xFFFEE00D
	SequenceDelimitationItem Tag = 0xFFFEE0DD
)

type dictEntry struct {
	vr      VR
	keyword string
}

// dictionary holds the tags above with their VR (PS3.6 §6, PS3.7 Annex E).
// It is read only.
var dictionary = map[Tag]dictEntry{
	CommandGroupLength:                   {VRUL, "CommandGroupLength"},
	AffectedSOPClassUID:                  {VRUI, "AffectedSOPClassUID"},
	RequestedSOPClassUID:                 {VRUI, "RequestedSOPClassUID"},
	CommandField:                         {VRUS, "CommandField"},
	MessageID:                            {VRUS, "MessageID"},
	MessageIDBeingRespondedTo:            {VRUS, "MessageIDBeingRespondedTo"},
	MoveDestination:                      {VRAE, "MoveDestination"},
	Priority:                             {VRUS, "Priority"},
	CommandDataSetType:                   {VRUS, "CommandDataSetType"},
	Status:                               {VRUS, "Status"},
	OffendingElement:                     {VRAT, "OffendingElement"},
	ErrorComment:                         {VRLO, "ErrorComment"},
	ErrorID:                              {VRUS, "ErrorID"},
	AffectedSOPInstanceUID:               {VRUI, "AffectedSOPInstanceUID"},
	RequestedSOPInstanceUID:              {VRUI, "RequestedSOPInstanceUID"},
	NumberOfRemainingSuboperations:       {VRUS, "NumberOfRemainingSuboperations"},
	NumberOfCompletedSuboperations:       {VRUS, "NumberOfCompletedSuboperations"},
	NumberOfFailedSuboperations:          {VRUS, "NumberOfFailedSuboperations"},
	NumberOfWarningSuboperations:         {VRUS, "NumberOfWarningSuboperations"},
	MoveOriginatorApplicationEntityTitle: {VRAE, "MoveOriginatorApplicationEntityTitle"},
	MoveOriginatorMessageID:              {VRUS, "MoveOriginatorMessageID"},

	FileMetaInformationGroupLength: {VRUL, "FileMetaInformationGroupLength"},
	FileMetaInformationVersion:     {VROB, "FileMetaInformationVersion"},
	MediaStorageSOPClassUID:        {VRUI, "MediaStorageSOPClassUID"},
	MediaStorageSOPInstanceUID:     {VRUI, "MediaStorageSOPInstanceUID"},
	TransferSyntaxUID:              {VRUI, "TransferSyntaxUID"},
	ImplementationClassUID:         {VRUI, "ImplementationClassUID"},
	ImplementationVersionName:      {VRSH, "ImplementationVersionName"},

	SpecificCharacterSet:           {VRCS, "SpecificCharacterSet"},
	SOPClassUID:                    {VRUI, "SOPClassUID"},
	SOPInstanceUID:                 {VRUI, "SOPInstanceUID"},
	StudyDate:                      {VRDA, "StudyDate"},
	SeriesDate:                     {VRDA, "SeriesDate"},
	StudyTime:                      {VRTM, "StudyTime"},
	AccessionNumber:                {VRSH, "AccessionNumber"},
	QueryRetrieveLevel:             {VRCS, "QueryRetrieveLevel"},
	RetrieveAETitle:                {VRAE, "RetrieveAETitle"},
	Modality:                       {VRCS, "Modality"},
	ModalitiesInStudy:              {VRCS, "ModalitiesInStudy"},
	InstitutionName:                {VRLO, "InstitutionName"},
	ReferringPhysicianName:         {VRPN, "ReferringPhysicianName"},
	StudyDescription:               {VRLO, "StudyDescription"},
	SeriesDescription:              {VRLO, "SeriesDescription"},
	PatientName:                    {VRPN, "PatientName"},
	PatientID:                      {VRLO, "PatientID"},
	PatientBirthDate:               {VRDA, "PatientBirthDate"},
	PatientSex:                     {VRCS, "PatientSex"},
	StudyInstanceUID:               {VRUI, "StudyInstanceUID"},
	SeriesInstanceUID:              {VRUI, "SeriesInstanceUID"},
	StudyID:                        {VRSH, "StudyID"},
	SeriesNumber:                   {VRIS, "SeriesNumber"},
	InstanceNumber:                 {VRIS, "InstanceNumber"},
	NumberOfPatientRelatedStudies:  {VRIS, "NumberOfPatientRelatedStudies"},
	NumberOfStudyRelatedSeries:     {VRIS, "NumberOfStudyRelatedSeries"},
	NumberOfStudyRelatedInstances:  {VRIS, "NumberOfStudyRelatedInstances"},
	NumberOfSeriesRelatedInstances: {VRIS, "NumberOfSeriesRelatedInstances"},
	SamplesPerPixel:                {VRUS, "SamplesPerPixel"},
	PhotometricInterpretation:      {VRCS, "PhotometricInterpretation"},
	Rows:                           {VRUS, "Rows"},
	Columns:                        {VRUS, "Columns"},
	BitsAllocated:                  {VRUS, "BitsAllocated"},
	BitsStored:                     {VRUS, "BitsStored"},
	HighBit:                        {VRUS, "HighBit"},
	PixelRepresentation:            {VRUS, "PixelRepresentation"},
	PixelData:                      {VROW, "PixelData"}, // OB or OW; OW in Implicit VR (PS3.5 §A.1)

	Item:                     {0, "Item"},
	ItemDelimitationItem:     {0, "ItemDelimitationItem"},
	SequenceDelimitationItem: {0, "SequenceDelimitationItem"},
}

// LookupVR returns the VR of t for Implicit VR decoding: the dictionary's VR
// for the tags this package names, UL for any other group length
// (gggg,0000), and UN otherwise, including for item and delimitation tags.
func LookupVR(t Tag) VR {
	if e, ok := dictionary[t]; ok && e.vr != 0 {
		return e.vr
	}
	if t.Element() == 0 && t.Group() != 0xFFFE {
		return VRUL
	}
	return VRUN
}

// Keyword returns the standard's keyword for the tags this package names
// (e.g. "QueryRetrieveLevel"), or "" for any other tag.
func Keyword(t Tag) string { return dictionary[t].keyword }
