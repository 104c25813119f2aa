// Package version holds pacswatch's version and the identity it shows to the systems it
// probes: the Implementation Class UID and Implementation Version Name of its DICOM
// associations (PS3.7 §D.3.3.2), its default calling AE title (PS3.8 §9.3.2) and the
// User-Agent of its HTTP requests (RFC 9110 §10.1.5). pacswatch never impersonates another
// product. Each fact is written here once; the packages that put it on the wire name it.
package version

// Version is pacswatch's version.
const Version = "0.1.0"

const (
	// ImplementationClassUID is pacswatch's Implementation Class UID: the "2.25." form
	// (PS3.5 §B.2) of a random UUID generated once for the project.
	ImplementationClassUID = "2.25.100136836083436646986395485767375892871"
	// ImplementationVersionName is "PACSWATCH_" + Version: at most 16 characters (PS3.7
	// §D.3.3.2.2).
	ImplementationVersionName = "PACSWATCH_" + Version
	// CallingAE is the calling AE title pacswatch sends unless told otherwise (--calling-ae).
	CallingAE = "PACSWATCH"
	// UserAgent is the User-Agent header of pacswatch's HTTP requests.
	UserAgent = "pacswatch/" + Version
)
