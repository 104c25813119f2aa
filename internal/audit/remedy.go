package audit

import (
	"fmt"
	"strings"
)

// Remediation says how to close a failed check on the product found: a text for a person and,
// where the product has a configuration file that carries the fix, the change itself, in a
// form a program can apply (the audit's own tests apply it to real peers and audit again).
type Remediation struct {
	Product string        `json:"product"` // the product key it is written for
	Text    string        `json:"text"`
	Config  *ConfigChange `json:"config,omitempty"`
	// Placeholders maps each <NAME> that Text or Config holds to what to put in its place.
	Placeholders map[string]string `json:"placeholders,omitempty"`
}

// Configuration change formats.
const (
	// FormatMergePatch is a JSON merge patch (RFC 7386) of a JSON configuration file: objects
	// merge key by key, null removes a key, any other value replaces it.
	FormatMergePatch = "json-merge-patch"
	// FormatDcmqrscp edits the tables of dcmqrscp's configuration file (DCMTK dcmqrcnf.txt).
	FormatDcmqrscp = "dcmqrscp-tables"
)

// ConfigChange is a configuration change that closes a check, and what to restart after it.
type ConfigChange struct {
	File    string         `json:"file"`             // the file, by its usual name
	Format  string         `json:"format"`           // FormatMergePatch or FormatDcmqrscp
	Patch   map[string]any `json:"patch,omitempty"`  // FormatMergePatch
	Tables  []TableEdit    `json:"tables,omitempty"` // FormatDcmqrscp
	Restart string         `json:"restart"`          // what to restart for the change to take effect
}

// Where says where the change goes and what to restart after it, as a sentence's start.
func (c *ConfigChange) Where() string {
	if c.Format == FormatMergePatch {
		return fmt.Sprintf("In %s (merge these keys), then restart %s", c.File, c.Restart)
	}
	return fmt.Sprintf("In %s, then restart %s", c.File, c.Restart)
}

// Lines renders the change for a person: the merge patch as indented JSON, or one line per
// table edit.
func (c *ConfigChange) Lines() []string {
	if c.Format == FormatMergePatch {
		return strings.Split(patchText(c.Patch), "\n")
	}
	var out []string
	for _, t := range c.Tables {
		if t.Table == "HostTable" {
			out = append(out, fmt.Sprintf("HostTable: add   %s = %s", t.Entry, t.Value))
		} else {
			out = append(out, fmt.Sprintf("AETable:   in the line of %s, set %s to %s", t.Entry, t.Column, t.Value))
		}
	}
	return out
}

// TableEdit is one edit of a dcmqrscp configuration table.
type TableEdit struct {
	Table  string `json:"table"`            // HostTable or AETable
	Entry  string `json:"entry"`            // HostTable: the symbolic name to add; AETable: the AE title of the line to change
	Column string `json:"column,omitempty"` // AETable: the column to set: AETitle or Peers
	Value  string `json:"value"`            // HostTable: the entry, "(AE, host, port)"; AETable: the column's new value
}

// Placeholders the remediations use, and what goes in their place.
var placeholders = map[string]string{
	"<MODALITY_NAME>":            "a name of your choice for a modality or workstation that must reach the archive",
	"<MODALITY_AE>":              "that modality's own AE title",
	"<MODALITY_HOST>":            "that modality's IP address or host name",
	"<NEW_AE_TITLE>":             "a new AE title of your own for the archive (up to 16 characters, no vendor default); give it to every modality too",
	"<USER>":                     "a user name of your own for the web front end",
	"<PASSWORD>":                 "a long random password for that user",
	"<CERTIFICATE_PEM>":          "the path of the archive's TLS certificate (PEM)",
	"<PRIVATE_KEY_PEM>":          "the path of its private key (PEM)",
	"<TRUSTED_CERTIFICATES_PEM>": "the path of a PEM file with the certificates of the modalities (or their CA) that may connect",
	"<ARCHIVE_AE>":               "the archive's AE title (the AETable line to change)",
}

// orthancModality and orthancNoAlways are Orthanc configuration patches (orthanc.json), new
// each time: a report's patches share nothing.
func orthancModality() map[string]any {
	return map[string]any{"DicomModalities": map[string]any{"<MODALITY_NAME>": []any{"<MODALITY_AE>", "<MODALITY_HOST>", 104}}}
}

func orthancNoAlways() map[string]any {
	return map[string]any{
		"DicomAlwaysAllowEcho": false, "DicomAlwaysAllowStore": false, "DicomAlwaysAllowFind": false,
		"DicomAlwaysAllowFindWorklist": false, "DicomAlwaysAllowGet": false, "DicomAlwaysAllowMove": false,
		"DicomCheckModalityHost": true,
	}
}

const (
	orthancFile    = "orthanc.json"
	orthancRestart = "Orthanc"
	dcmqrscpFile   = "dcmqrscp.cfg"
	// trustedName is the HostTable entry the dcmqrscp remediations add.
	trustedName = "trusted_modality"
	// guardHint offers pacswatch guard where a product cannot restrict its peers itself.
	// dcmqrscpAnyPeer says why dcmqrscp serves anyone; one text for every check it opens.
	dcmqrscpAnyPeer = "dcmqrscp associates with any calling AE, and answers queries, retrievals and (on Access RW) storage, when an AETable line's Peers column is ANY."
	guardHint       = "or put pacswatch guard in front of it, with a policy that admits only your modalities' calling AE titles and addresses"
)

func orthancPatch(text string, patches ...map[string]any) *Remediation {
	p := map[string]any{}
	for _, q := range patches {
		mergePatches(p, q)
	}
	return &Remediation{Product: ProductOrthanc, Text: text,
		Config: &ConfigChange{File: orthancFile, Format: FormatMergePatch, Patch: p, Restart: orthancRestart}}
}

// archiveAE is the AETable line the dcmqrscp edits change: the AE title the archive answered
// to, or a placeholder.
func (f *facts) archiveAE() string {
	if f.calledOK {
		return f.d.CalledAE
	}
	return "<ARCHIVE_AE>"
}

// dcmqrscpPeers restricts an archive AE of dcmqrscp to a HostTable entry of trusted peers.
func dcmqrscpPeers(f *facts, text string) *Remediation {
	ae := f.archiveAE()
	return &Remediation{Product: ProductDcmqrscp, Text: text + fmt.Sprintf(
		" In dcmqrscp.cfg, add the modalities that may use it to the HostTable as %s = (AE title, host, port), and set the Peers column of %s's AETable line to %s instead of ANY; then restart dcmqrscp (run it with -dhl, or host names in the HostTable must resolve).",
		trustedName, ae, trustedName),
		Config: &ConfigChange{File: dcmqrscpFile, Format: FormatDcmqrscp, Restart: "dcmqrscp", Tables: []TableEdit{
			{Table: "HostTable", Entry: trustedName, Value: "(<MODALITY_AE>, <MODALITY_HOST>, 104)"},
			{Table: "AETable", Entry: ae, Column: "Peers", Value: trustedName},
		}}}
}

// remedy returns the remediation of failed check id on the product found.
func remedy(id string, f *facts) *Remediation {
	key := f.product.Key
	var rm *Remediation
	switch id {
	case CheckCalledAE, CheckCalledAEDefault, CheckCallingAE:
		rm = remedyAE(id, f, key)
	case CheckQuery, CheckRetrieve, CheckStorage:
		rm = remedyServices(id, f, key)
	case CheckTLS, CheckTLSCert:
		rm = remedyTLS(id, f, key)
	case CheckWebAuth, CheckDefaultCreds:
		rm = remedyWeb(id, key)
	case CheckVersion:
		rm = remedyVersion(f, key)
	default:
		rm = &Remediation{Text: "This system shows a honeypot's signs: if it is yours, its figures are a decoy's; if it is not, leave it alone and keep it out of any count."}
	}
	if rm.Product == "" {
		rm.Product = ProductGeneric
	}
	rm.Placeholders = usedPlaceholders(rm)
	return rm
}

// usedPlaceholders returns the placeholders that rm's text or change holds, with their meaning.
func usedPlaceholders(rm *Remediation) map[string]string {
	var b strings.Builder
	b.WriteString(rm.Text)
	if c := rm.Config; c != nil {
		fmt.Fprint(&b, c.Patch, c.Tables)
	}
	out := map[string]string{}
	for k, v := range placeholders {
		if strings.Contains(b.String(), k) {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func remedyAE(id string, f *facts, key string) *Remediation {
	switch id + "/" + key {
	case CheckCalledAE + "/" + ProductOrthanc:
		return orthancPatch("Orthanc answers to any called AE title: DicomCheckCalledAet is false by default. Set it to true; modalities must then call Orthanc by its DicomAet.",
			map[string]any{"DicomCheckCalledAet": true})
	case CheckCalledAEDefault + "/" + ProductOrthanc:
		return orthancPatch("Orthanc answers to its default AE title. Give it one of your own in DicomAet (and on every modality that calls it).",
			map[string]any{"DicomAet": "<NEW_AE_TITLE>"})
	case CheckCallingAE + "/" + ProductOrthanc:
		return orthancPatch("Orthanc associates with any calling AE title while any DicomAlwaysAllow… option is true (Echo and Store are by default). Turn them all off, check the modalities' addresses, and list each modality or workstation that must reach Orthanc in DicomModalities (AE title, address, port): Orthanc then refuses unknown calling AE titles at association.",
			orthancNoAlways(), orthancModality())
	case CheckCalledAEDefault + "/" + ProductDcmqrscp:
		return &Remediation{Product: ProductDcmqrscp, Text: fmt.Sprintf("The archive answers to %s, a vendor default. Rename it in its AETable line of dcmqrscp.cfg (and on every modality), then restart dcmqrscp.", f.archiveAE()),
			Config: &ConfigChange{File: dcmqrscpFile, Format: FormatDcmqrscp, Restart: "dcmqrscp", Tables: []TableEdit{
				{Table: "AETable", Entry: f.archiveAE(), Column: "AETitle", Value: "<NEW_AE_TITLE>"}}}}
	case CheckCallingAE + "/" + ProductDcmqrscp:
		return dcmqrscpPeers(f, dcmqrscpAnyPeer)
	case CheckCalledAEDefault + "/" + ProductDcm4cheeArc:
		return &Remediation{Product: key, Text: "dcm4chee-arc-light answers to its default AE title (DCM4CHEE). Rename the archive's Network AE (dicomAETitle; UI: Configuration → Devices → dcm4chee-arc → Network AEs) and configure the new title on every modality."}
	case CheckCallingAE + "/" + ProductDcm4cheeArc, CheckCalledAE + "/" + ProductDcm4cheeArc:
		return &Remediation{Product: key, Text: "Set Accepted Calling AE Title(s) (dcmAcceptedCallingAETitle) on the archive's Network AE to your modalities' AE titles: dcm4chee-arc-light then refuses associations from any other calling AE."}
	case CheckCalledAEDefault + "/" + ProductConquest:
		return &Remediation{Product: key, Text: "Conquest answers to its default AE title. Set MyACRNema in dicom.ini to a title of your own (and on every modality), then restart Conquest."}
	case CheckCallingAE + "/" + ProductConquest:
		return &Remediation{Product: key, Text: "Conquest associates with any calling AE title. Let only your modalities' addresses reach its DICOM port (TCPPort in dicom.ini) through the host's firewall, " + guardHint + "."}
	}
	switch id {
	case CheckCalledAE:
		return &Remediation{Text: "Configure the archive to refuse associations whose called AE title is not its own (the called AE title check), and give the modalities its exact title."}
	case CheckCalledAEDefault:
		return &Remediation{Text: "Rename the archive's AE title to one of your own (not a vendor default) and configure it on every modality."}
	}
	return &Remediation{Text: "Configure the archive to accept associations only from the calling AE titles (and addresses) of your modalities and workstations, " + guardHint + "."}
}

func remedyServices(id string, f *facts, key string) *Remediation {
	switch key {
	case ProductOrthanc:
		switch id {
		case CheckQuery:
			return orthancPatch("Orthanc answers C-FIND from any AE while DicomAlwaysAllowFind is true. Turn it off (and DicomAlwaysAllowFindWorklist), and list the workstations that must query in DicomModalities.",
				map[string]any{"DicomAlwaysAllowFind": false, "DicomAlwaysAllowFindWorklist": false}, orthancModality())
		case CheckRetrieve:
			return orthancPatch("Orthanc answers C-GET and C-MOVE from any AE while DicomAlwaysAllowGet or DicomAlwaysAllowMove is true. Turn both off, and list the workstations that must retrieve in DicomModalities.",
				map[string]any{"DicomAlwaysAllowGet": false, "DicomAlwaysAllowMove": false}, orthancModality())
		}
		return orthancPatch("Orthanc accepts storage from any AE it associates with, and judges the right to store only when an object arrives (DicomAlwaysAllowStore is true by default). Turn DicomAlwaysAllowStore off, and every other DicomAlwaysAllow… option, so that unknown AE titles are refused at association; list the modalities that send images in DicomModalities.",
			orthancNoAlways(), orthancModality())
	case ProductDcmqrscp:
		return dcmqrscpPeers(f, dcmqrscpAnyPeer)
	case ProductDcm4cheeArc:
		return &Remediation{Product: key, Text: "Set Accepted Calling AE Title(s) (dcmAcceptedCallingAETitle) on the archive's Network AE to your modalities' AE titles, and Accepted Move Destination(s) (dcmAcceptedMoveDestination) to the workstations that may receive C-MOVEs; Access Control IDs (dcmAccessControlID) narrow queries further."}
	case ProductConquest:
		return &Remediation{Product: key, Text: "Conquest serves every calling AE title. Let only your modalities' addresses reach its DICOM port (TCPPort in dicom.ini) through the host's firewall, " + guardHint + "."}
	}
	what := map[string]string{CheckQuery: "queries (C-FIND)", CheckRetrieve: "retrieval (C-GET, C-MOVE)", CheckStorage: "storage (C-STORE)"}[id]
	return &Remediation{Text: "Allow " + what + " only to the calling AE titles and addresses of your own modalities and workstations, " + guardHint + "."}
}

func remedyTLS(id string, f *facts, key string) *Remediation {
	if id == CheckTLSCert {
		if key == ProductOrthanc {
			return &Remediation{Product: key, Text: "Renew the certificate that DicomTlsCertificate names (and its key, DicomTlsPrivateKey), give the modalities the new one if they pin it, then restart Orthanc."}
		}
		return &Remediation{Text: "Renew the archive's DICOM TLS certificate before it expires, and give the modalities the new one if they pin it."}
	}
	if f.d != nil && f.d.TLS { // TLS, but older than 1.2
		return &Remediation{Product: key, Text: "Upgrade the archive (and the TLS library it links) to a version that negotiates TLS 1.2 or later, as PS3.15's BCP 195 profiles require, and turn off TLS 1.0 and 1.1."}
	}
	switch key {
	case ProductOrthanc:
		return orthancPatch("Orthanc 1.9.0 and later speak DICOM TLS (PS3.15 B.1) on DicomPort once DicomTlsEnabled is set: give it a certificate and key, and the certificates of the modalities that may connect (DicomTlsRemoteCertificateRequired keeps out any other). Every modality then connects with TLS.",
			map[string]any{"DicomTlsEnabled": true, "DicomTlsCertificate": "<CERTIFICATE_PEM>", "DicomTlsPrivateKey": "<PRIVATE_KEY_PEM>",
				"DicomTlsTrustedCertificates": "<TRUSTED_CERTIFICATES_PEM>", "DicomTlsRemoteCertificateRequired": true})
	case ProductDcmqrscp:
		return &Remediation{Product: key, Text: "dcmqrscp speaks no DICOM TLS: let only a TLS proxy reach its port (pacswatch guard with a TLS listener and certificate, or stunnel), and have the modalities connect to the proxy."}
	case ProductDcm4cheeArc:
		return &Remediation{Product: key, Text: "Use the archive's DICOM TLS connection (port 2762 in the default configuration: a dicomNetworkConnection with dicomTLSCipherSuite set) for every modality, and keep the plain port (11112) from outside peers."}
	}
	return &Remediation{Text: "Turn on DICOM TLS (PS3.15 B.1, TLS 1.2 or later) on the archive, or put a TLS proxy in front of it (pacswatch guard with a TLS listener), and let modalities connect only through TLS."}
}

func remedyWeb(id, key string) *Remediation {
	if key == ProductOrthanc {
		if id == CheckDefaultCreds {
			return orthancPatch("Orthanc accepts its documented default login (orthanc:orthanc, as in the public Docker image). Remove that user from RegisteredUsers and add one of your own with a strong password.",
				map[string]any{"RegisteredUsers": map[string]any{"orthanc": nil, "<USER>": "<PASSWORD>"}})
		}
		return orthancPatch("Orthanc's REST API (and DICOMweb, which it serves) answers without credentials. Turn on HTTP authentication with a user of your own; keep RemoteAccessAllowed false unless remote clients need it (Orthanc before 1.5.8 leaves authentication off even then: CVE-2025-0896).",
			map[string]any{"AuthenticationEnabled": true, "RegisteredUsers": map[string]any{"<USER>": "<PASSWORD>"}})
	}
	if key == ProductDcm4cheeArc {
		if id == CheckDefaultCreds {
			return &Remediation{Product: key, Text: "Change the passwords of the archive's default users (admin, user) in its Keycloak realm."}
		}
		return &Remediation{Product: key, Text: "Run the secured archive (the dcm4chee-arc-psql-secure image, with Keycloak) instead of the unsecured one, so that its UI, REST and DICOMweb ask for a login."}
	}
	if id == CheckDefaultCreds {
		return &Remediation{Text: "Change the web front end's documented default password, or remove that account."}
	}
	return &Remediation{Text: "Put the web front end behind authentication (its own, or a reverse proxy's), and expose it only where needed."}
}

func remedyVersion(f *facts, key string) *Remediation {
	var b strings.Builder
	for _, s := range f.software {
		fixed := ""
		for _, v := range Vulnerabilities() {
			if v.matches(s, key) {
				fixed = maxVersion(fixed, v.Fixed)
			}
		}
		if fixed != "" {
			if b.Len() > 0 {
				b.WriteString(" ")
			}
			fmt.Fprintf(&b, "Upgrade %s %s to %s or later.", s.product, s.version, fixed)
		}
	}
	if key == ProductOrthanc && strings.Contains(b.String(), "DCMTK") {
		b.WriteString(" (Orthanc links DCMTK: a newer Orthanc build brings a newer DCMTK.)")
	}
	return &Remediation{Product: key, Text: b.String()}
}
