package audit

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/probe/dicomprobe"
	"github.com/pacswatch/pacswatch/internal/version"
)

// Check IDs (stable).
const (
	CheckCalledAE        = "called-ae"
	CheckCalledAEDefault = "called-ae-default"
	CheckCallingAE       = "calling-ae"
	CheckQuery           = "query"
	CheckRetrieve        = "retrieve"
	CheckStorage         = "storage"
	CheckTLS             = "tls"
	CheckTLSCert         = "tls-cert"
	CheckWebAuth         = "web-auth"
	CheckDefaultCreds    = "default-creds"
	CheckVersion         = "version"
	CheckHoneypot        = "honeypot"
)

// Checks is the checklist of SPEC "audit", in the order reports show it.
var Checks = []Check{
	{CheckCalledAE, "The archive refuses a called AE title that is not its own", Medium,
		"an archive that answers to any called AE title is found by every scanner's first guess"},
	{CheckCalledAEDefault, "The archive's AE title is not a vendor default", Low,
		"a vendor's default AE title is the second guess of every scanner"},
	{CheckCallingAE, "Unknown calling AE titles are refused at association", High,
		"an archive that associates with any calling AE lets anyone try every service it offers"},
	{CheckQuery, "C-FIND is refused to unknown callers", Critical,
		"a readable index lists every study the archive holds, and the patients' identities with them"},
	{CheckRetrieve, "C-GET and C-MOVE are refused to unknown callers", Critical,
		"retrieval hands out the images themselves, with every identifier they carry"},
	{CheckStorage, "Storage is refused to unknown callers", High,
		"an archive that takes images from anyone lets records be added or overwritten (record tampering)"},
	{CheckTLS, "DICOM runs over TLS 1.2 or later (PS3.15 Annex B.1)", Medium,
		"DICOM in clear carries identifiers and images readable by anyone on the path"},
	{CheckTLSCert, "The DICOM TLS certificate is valid for more than 14 days", Medium,
		"an expired certificate breaks the modalities' connections or teaches them to ignore errors"},
	{CheckWebAuth, "The web front end asks for credentials", Critical,
		"a web API without authentication hands out studies and images to anyone who finds it"},
	{CheckDefaultCreds, "The web front end refuses the product's documented default login", Critical,
		"a documented default login is the first one anyone tries"},
	{CheckVersion, "The software has no known vulnerability in pacswatch's list", High,
		"published vulnerabilities are what attackers try first"},
	{CheckHoneypot, "The system shows no sign of being a honeypot", Info,
		"a decoy's figures are not an archive's: a scan's count of it should be discarded"},
}

// certWarnDays is how close to expiry a certificate fails CheckTLSCert.
const certWarnDays = 14

// Input is what Evaluate judges: a probe record and how it was made.
type Input struct {
	Record probe.Result
	Host   string // the hostname the user named, if any

	CalledAE        string // the archive's own called AE title, when the user gave it (--called-ae)
	StorageProposed bool   // a storage context proposal ran (dicomprobe.Session.ProposeStorage)
	WebChecked      bool   // web front ends were probed (--web)
	DefaultCreds    bool   // the web prober tried the documented default logins (--default-creds)
	Product         string // a product key that overrides the one recognised (--product)
	Now             time.Time
	Dict            dicomprobe.Dict // the AE dictionary vendor defaults are judged by; nil: the built-in one
}

// facts are what the checks read of an input, worked out once.
type facts struct {
	in       *Input
	r        *probe.Result
	d        *probe.DICOM // nil when no DICOM service answered
	accepted bool         // an association was accepted
	tlsOnly  bool         // a DICOM TLS peer refused us for want of a client certificate
	calledOK bool         // d.CalledAE is the archive's own title: accepted, or refused only for our calling AE
	product  Product
	software []software // product versions learned
}

// Evaluate judges every check of Checks on in's record and returns the report. It reads no
// network and no clock but in.Now.
func Evaluate(in Input) *Report {
	if in.Dict == nil {
		in.Dict = dicomprobe.DefaultDict()
	}
	r := in.Record
	r.Sanitize()
	f := &facts{in: &in, r: &r, d: r.DICOM}
	if d := f.d; d != nil {
		f.accepted = d.Association == probe.AssociationAccepted || d.ImplementationClassUID != ""
		f.tlsOnly = r.Error == dicomprobe.TextClientCertRequired
		refusedCalling := d.Reject != nil && d.Reject.Source == 1 && d.Reject.Reason == 3
		// With --called-ae the prober tries the generic title, then the archive's own: a record
		// refused for every title (which names no called AE) was refused the own title too.
		ownTried := in.CalledAE != "" && (d.CalledAE == in.CalledAE || d.CalledAE == "" && d.Association == probe.AssociationRejected)
		f.calledOK = (f.accepted || refusedCalling) && d.CalledAE != dicomprobe.GenericAE || ownTried
	}
	f.software = learned(&r)
	f.product = recognise(f)
	rep := &Report{
		Target: netTarget(&r), Host: in.Host, Time: in.Now.UTC(), Pacswatch: version.Version,
		Product: f.product, Record: r,
	}
	judges := map[string]func(*facts) (Status, string){
		CheckCalledAE: calledAE, CheckCalledAEDefault: calledAEDefault, CheckCallingAE: callingAE,
		CheckQuery: query, CheckRetrieve: retrieve, CheckStorage: storage,
		CheckTLS: tlsCheck, CheckTLSCert: tlsCert, CheckWebAuth: webAuth, CheckDefaultCreds: defaultCreds,
		CheckVersion: versionCheck, CheckHoneypot: honeypot,
	}
	for _, c := range Checks {
		st, ev := judges[c.ID](f)
		fd := Finding{ID: c.ID, Title: c.Title, Severity: c.Severity, Status: st, Evidence: ev}
		switch st {
		case Pass:
			rep.Summary.Pass++
		case Fail:
			rep.Summary.Fail++
			fd.Remediation = remedy(c.ID, f)
		default:
			rep.Summary.Skip++
		}
		rep.Checks = append(rep.Checks, fd)
	}
	return rep
}

// netTarget is the record's address:port, or "" for a record without an address.
func netTarget(r *probe.Result) string {
	if !r.IP.IsValid() {
		return ""
	}
	return netip.AddrPortFrom(r.IP, r.Port).String()
}

// notDICOM is the skip of the DICOM checks when no DICOM service answered.
const notDICOM = "no DICOM service answered"

// refusedUs words why no association was accepted.
func (f *facts) refusedUs() string {
	d := f.d
	switch {
	case f.tlsOnly:
		return "the DICOM TLS layer refuses any caller without a trusted client certificate"
	case d.Reject != nil:
		return fmt.Sprintf("association refused (%s) with every called AE title tried, the last %s", d.Reject.Meaning, d.CalledAE)
	case d.Association == probe.AssociationAborted:
		return "association aborted with every called AE title tried"
	}
	return "no association accepted"
}

func calledAE(f *facts) (Status, string) {
	d := f.d
	switch {
	case d == nil:
		return Skip, notDICOM
	case f.tlsOnly:
		return Pass, f.refusedUs()
	case d.AECheck == probe.AECheckNone:
		return Fail, fmt.Sprintf("accepted the called AE title %s, which names no archive: any title is accepted", dicomprobe.GenericAE)
	case d.AECheck == probe.AECheckCalled || d.CalledAE != "" && d.CalledAE != dicomprobe.GenericAE:
		// The probe tries another called AE title only after GenericAE was refused as
		// called-AE-title-not-recognized.
		return Pass, fmt.Sprintf("refused the called AE title %s (called-AE-title-not-recognized)", dicomprobe.GenericAE)
	}
	return Skip, "not determined: the archive refused us before judging the called AE title (" + f.refusedUs() + ")"
}

func calledAEDefault(f *facts) (Status, string) {
	d := f.d
	switch {
	case d == nil:
		return Skip, notDICOM
	case d.AECheck == probe.AECheckNone:
		return Skip, "the called AE title is not checked (see " + CheckCalledAE + ")"
	case f.calledOK:
		if p := f.vendorOf(d.CalledAE); p != "" {
			return Fail, fmt.Sprintf("the archive answers to %s, a default AE title of %s", d.CalledAE, p)
		}
		return Pass, fmt.Sprintf("the archive's AE title %s is no vendor default in pacswatch's dictionary", d.CalledAE)
	case d.AECheck == probe.AECheckCalled || f.tlsOnly:
		return Pass, "no vendor default AE title in pacswatch's dictionary was accepted"
	}
	return Skip, "not determined: " + f.refusedUs()
}

// vendorOf returns the product whose default AE title ae is, or "".
func (f *facts) vendorOf(ae string) string {
	if ae == dicomprobe.GenericAE {
		return ""
	}
	for _, e := range f.in.Dict {
		if strings.EqualFold(e.Title, ae) {
			return e.Product
		}
	}
	return ""
}

func callingAE(f *facts) (Status, string) {
	d := f.d
	switch {
	case d == nil:
		return Skip, notDICOM
	case f.tlsOnly:
		return Pass, f.refusedUs()
	case f.accepted:
		return Fail, fmt.Sprintf("accepted an association from the calling AE title %s, which the archive cannot know", d.CallingAE)
	case d.AECheck == probe.AECheckCalling:
		return Pass, fmt.Sprintf("refused the calling AE title %s (calling-AE-title-not-recognized)", d.CallingAE)
	case f.calledOK:
		own := d.CalledAE
		if own == "" {
			own = f.in.CalledAE
		}
		return Pass, fmt.Sprintf("refused %s calling the archive's own AE title %s (%s)", d.CallingAE, own, f.refusedUs())
	}
	return Skip, "not determined: no called AE title was accepted; give --called-ae with the archive's AE title"
}

func query(f *facts) (Status, string) {
	d, e := f.d, f.r.Exposure
	switch {
	case d == nil:
		return Skip, notDICOM
	case e != nil && (e.Level >= probe.LevelQuery || d.Services.FindStudy || d.Services.FindPatient):
		return Fail, "C-FIND answered " + d.CallingAE + ": " + counted(e)
	case f.accepted:
		why := "refused"
		if f.r.Error != "" {
			why = "refused (" + f.r.Error + ")"
		}
		return Pass, "C-FIND " + why
	}
	return Pass, f.refusedUs()
}

// counted words what a C-FIND showed: studies, images, modalities.
func counted(e *probe.Exposure) string {
	if e.Studies == 0 {
		return "the archive is empty now, but its index is open"
	}
	s := fmt.Sprintf("%d studies", e.Studies)
	if !e.StudiesExact {
		s = "at least " + s
	}
	if e.Instances > 0 {
		s += fmt.Sprintf(", %d images", e.Instances)
	}
	if len(e.Modalities) > 0 {
		keys := make([]string, 0, len(e.Modalities))
		for k := range e.Modalities {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s %d", k, e.Modalities[k])
		}
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	return s + " listed, identities with them"
}

func retrieve(f *facts) (Status, string) {
	d, e := f.d, f.r.Exposure
	switch {
	case d == nil:
		return Skip, notDICOM
	case e != nil && e.Retrieve == probe.RetrieveVerified:
		return Fail, "C-GET sent an instance's first bytes back (--verify-retrieve; nothing kept)"
	case e != nil && (e.Retrieve == probe.RetrieveAccepted || e.Level == probe.LevelRetrieve):
		return Fail, fmt.Sprintf("retrieval accepted for %s (C-MOVE %s, C-GET %s); tested without moving an image", d.CallingAE, yesNo(d.Services.Move), yesNo(d.Services.Get))
	case e != nil && e.Retrieve == probe.RetrieveRefused:
		return Pass, "C-GET and C-MOVE refused"
	case f.accepted && e != nil && (e.Level >= probe.LevelQuery || d.Services.FindStudy || d.Services.FindPatient):
		return Skip, "not tested: the query found no study to test retrieval with"
	case f.accepted:
		return Pass, "no study could be queried, so none could be asked for"
	}
	return Pass, f.refusedUs()
}

func yesNo(b bool) string {
	if b {
		return "accepted"
	}
	return "refused"
}

func storage(f *facts) (Status, string) {
	d := f.d
	switch {
	case d == nil:
		return Skip, notDICOM
	case !f.in.StorageProposed && !d.Services.Store:
		return Skip, "not tested (a scan does not propose storage; pacswatch audit does)"
	case d.Services.Store:
		return Fail, fmt.Sprintf("accepted a storage presentation context from %s (images could be added or overwritten); no object was sent", d.CallingAE)
	case f.accepted:
		return Pass, "every storage presentation context refused"
	}
	return Pass, f.refusedUs()
}

func tlsCheck(f *facts) (Status, string) {
	d := f.d
	switch {
	case d == nil:
		return Skip, notDICOM
	case !d.TLS:
		return Fail, "DICOM answered in clear, without TLS"
	case d.TLSCert == nil || d.TLSCert.Version == "":
		return Pass, "DICOM over TLS"
	case d.TLSCert.Version == "TLS 1.0" || d.TLSCert.Version == "TLS 1.1" || strings.HasPrefix(d.TLSCert.Version, "SSL"):
		return Fail, "DICOM over " + d.TLSCert.Version + ", older than the TLS 1.2 PS3.15 asks for"
	}
	return Pass, "DICOM over " + d.TLSCert.Version
}

func tlsCert(f *facts) (Status, string) {
	d := f.d
	if d == nil || !d.TLS || d.TLSCert == nil || d.TLSCert.NotAfter.IsZero() {
		return Skip, "no DICOM TLS certificate seen"
	}
	c := d.TLSCert
	signed := "issued by " + c.Issuer
	if c.SelfSigned {
		signed = "self-signed (peers must pin it)"
	}
	left := c.NotAfter.Sub(f.in.Now)
	switch {
	case left <= 0:
		return Fail, fmt.Sprintf("certificate %s expired on %s", c.Subject, c.NotAfter.Format(time.DateOnly))
	case left < certWarnDays*24*time.Hour:
		days := int(left.Hours() / 24)
		return Fail, fmt.Sprintf("certificate %s expires on %s, in %d day%s", c.Subject, c.NotAfter.Format(time.DateOnly), days, map[bool]string{true: "", false: "s"}[days == 1])
	}
	return Pass, fmt.Sprintf("certificate %s valid until %s, %s", c.Subject, c.NotAfter.Format(time.DateOnly), signed)
}
