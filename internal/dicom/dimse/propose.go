package dimse

import (
	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

// ProposeQR returns the presentation contexts of a query association:
// Verification, Study Root Query/Retrieve FIND, GET and MOVE, and Patient
// Root FIND, each with Explicit and Implicit VR Little Endian. Put them in
// ul.Config.Contexts.
func ProposeQR() []ul.ContextProposal {
	classes := []string{Verification, StudyRootFind, StudyRootGet, StudyRootMove, PatientRootFind}
	return appendProposals(make([]ul.ContextProposal, 0, len(classes)+len(StorageClasses)), classes...)
}

// ProposeGet returns ProposeQR's contexts followed by one for each of
// StorageClasses, and the role selections (PS3.7 §D.3.3.4) that ask to be
// SCP for those storage classes, without which a peer may not send a C-GET's
// instances back as C-STORE sub-operations (PS3.4 §C.4.3.3). Put them in
// ul.Config.Contexts and ul.Config.Roles.
func ProposeGet() ([]ul.ContextProposal, []ul.RoleSelection) {
	contexts := appendProposals(ProposeQR(), StorageClasses...)
	roles := make([]ul.RoleSelection, len(StorageClasses))
	for i, c := range StorageClasses {
		roles[i] = ul.RoleSelection{SOPClassUID: c, SCU: false, SCP: true}
	}
	return contexts, roles
}

// Propose returns a presentation context for each SOP class, in the order
// given, with the transfer syntaxes this package's codec reads (Explicit VR
// Little Endian, then Implicit). Put them in ul.Config.Contexts.
func Propose(classes ...string) []ul.ContextProposal {
	return appendProposals(make([]ul.ContextProposal, 0, len(classes)), classes...)
}

// appendProposals appends Propose's context for each class to dst.
func appendProposals(dst []ul.ContextProposal, classes ...string) []ul.ContextProposal {
	for _, c := range classes {
		dst = append(dst, ul.ContextProposal{
			AbstractSyntax:   c,
			TransferSyntaxes: []string{dicom.ExplicitVRLittleEndian, dicom.ImplicitVRLittleEndian},
		})
	}
	return dst
}

// AllowTags returns an allow-list function, as FindOptions.Allow takes, that
// keeps exactly the given tags.
func AllowTags(tags ...dicom.Tag) func(dicom.Tag) bool {
	set := make(map[dicom.Tag]bool, len(tags))
	for _, t := range tags {
		set[t] = true
	}
	return func(t dicom.Tag) bool { return set[t] }
}
