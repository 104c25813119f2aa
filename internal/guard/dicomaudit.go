package guard

import (
	"encoding/base64"
	"encoding/xml"
	"net/netip"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/guard/syslog"
)

// DICOM audit messages (PS3.15 Annex A.5) for the guard's audit records. They say what the JSON
// Lines records say, and no more: no patient, study or instance participant objects, whose
// identifiers the guard never keeps, and a ParticipantObjectQuery that holds the Query/Retrieve
// Level alone instead of the client's whole identifier.

// code is a coded value (PS3.15 A.5.1: csd-code, codeSystemName, originalText).
type code struct {
	Code   string `xml:"csd-code,attr"`
	System string `xml:"codeSystemName,attr"`
	Text   string `xml:"originalText,attr"`
}

func dcm(c, text string) *code { return &code{Code: c, System: "DCM", Text: text} }

type auditMessage struct {
	XMLName xml.Name     `xml:"AuditMessage"`
	Event   eventIdent   `xml:"EventIdentification"`
	Actors  []participan `xml:"ActiveParticipant"`
	Source  auditSource  `xml:"AuditSourceIdentification"`
	Objects []object     `xml:"ParticipantObjectIdentification,omitempty"`
}

type eventIdent struct {
	Action   string `xml:"EventActionCode,attr"`
	Time     string `xml:"EventDateTime,attr"`
	Outcome  int    `xml:"EventOutcomeIndicator,attr"`
	ID       *code  `xml:"EventID"`
	Type     *code  `xml:"EventTypeCode,omitempty"`
	Describe string `xml:"EventOutcomeDescription,omitempty"`
}

type participan struct {
	UserID    string `xml:"UserID,attr"`
	AltUserID string `xml:"AlternativeUserID,attr,omitempty"`
	Requestor bool   `xml:"UserIsRequestor,attr"`
	NAP       string `xml:"NetworkAccessPointID,attr,omitempty"`
	NAPType   string `xml:"NetworkAccessPointTypeCode,attr,omitempty"`
	Role      *code  `xml:"RoleIDCode"`
}

type auditSource struct {
	ID   string `xml:"AuditSourceID,attr"`
	Type *code  `xml:"AuditSourceTypeCode"`
}

type object struct {
	ID       string `xml:"ParticipantObjectID,attr"`
	Type     int    `xml:"ParticipantObjectTypeCode,attr"`
	Role     int    `xml:"ParticipantObjectTypeCodeRole,attr"`
	IDType   *code  `xml:"ParticipantObjectIDTypeCode"`
	Query    string `xml:"ParticipantObjectQuery,omitempty"`
	Describe string `xml:"ParticipantObjectDescription,omitempty"`
}

// Outcomes (PS3.15 A.5.1, EventOutcomeIndicator).
const (
	outcomeSuccess = 0
	outcomeMinor   = 4
	outcomeSerious = 8
)

// DICOMAudit returns the DICOM audit message for r, or ok false when r calls for none: refused
// associations and requests become Security Alerts (110113) of type Node Authentication (110126)
// or Use of Restricted Function (110132); forwarded C-FINDs Query (110112); forwarded C-GETs,
// C-MOVEs and C-STOREs DICOM Instances Transferred (110104). sourceID names the guard
// (AuditSourceID) and upstream the archive (the destination participant). alert reports a
// Security Alert, which deserves a higher syslog severity.
func DICOMAudit(r Record, sourceID, upstream string) (msg []byte, alert, ok bool) {
	m := auditMessage{
		Event:  eventIdent{Time: r.Time},
		Source: auditSource{ID: sourceID, Type: dcm("4", "Application Server Process tier in a multi-tier system")},
	}
	switch {
	case r.Event == EventAssociation && r.Result == "rejected" && r.By == "guard":
		m.Event.Action, m.Event.Outcome = "E", outcomeMinor
		m.Event.ID, m.Event.Type = dcm("110113", "Security Alert"), dcm("110126", "Node Authentication")
		m.Event.Describe = "association refused by the guard's policy: " + r.Refusal
		alert = true
	case r.Event == EventRequest && r.Decision == "refused":
		m.Event.Action, m.Event.Outcome = "E", outcomeMinor
		m.Event.ID, m.Event.Type = dcm("110113", "Security Alert"), dcm("110132", "Use of Restricted Function")
		m.Event.Describe = r.Command + " refused by the guard's policy: " + r.Refusal
		alert = true
	case r.Event == EventRequest && r.Service == "find":
		m.Event.Action, m.Event.ID = "E", dcm("110112", "Query")
		m.Objects = append(m.Objects, object{ID: r.SOPClass, Type: 2, Role: 3, IDType: dcm("110181", "SOP Class UID"), Query: levelOnly(r.Level)})
	case r.Event == EventRequest && (r.Service == "get" || r.Service == "move" || r.Service == "store"):
		m.Event.Action, m.Event.ID = "R", dcm("110104", "DICOM Instances Transferred")
		if r.Service == "store" {
			m.Event.Action = "C"
		}
	default:
		return nil, false, false
	}
	if !alert && r.StatusClass != "success" && r.StatusClass != "warning" {
		m.Event.Outcome = outcomeMinor
		if r.Outcome == "incomplete" {
			m.Event.Outcome = outcomeSerious
		}
		m.Event.Describe = "status " + r.Status + " " + r.Outcome
	}
	src := r.Source
	if ap, err := netip.ParseAddrPort(r.Source); err == nil {
		src = ap.Addr().String()
	}
	m.Actors = []participan{
		{UserID: r.Calling, AltUserID: "AETITLES=" + r.Calling, Requestor: true, NAP: src, NAPType: "2", Role: dcm("110153", "Source Role ID")},
		{UserID: r.CalledAE, AltUserID: "AETITLES=" + r.CalledAE, NAP: hostOf(upstream), NAPType: napType(hostOf(upstream)), Role: dcm("110152", "Destination Role ID")},
	}
	b, err := xml.Marshal(m)
	if err != nil {
		return nil, false, false
	}
	return append([]byte(xml.Header), b...), alert, true
}

// levelOnly is the ParticipantObjectQuery the guard can give: the base64 of an identifier that
// holds the Query/Retrieve Level alone.
func levelOnly(level string) string {
	var ds dicom.Dataset
	ds.Set(dicom.NewString(dicom.QueryRetrieveLevel, level))
	b, err := dicom.Encode(ds, true)
	if err != nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(b)
}

func hostOf(hostport string) string {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return ap.Addr().String()
	}
	for i := len(hostport) - 1; i >= 0; i-- {
		if hostport[i] == ':' {
			return hostport[:i]
		}
	}
	return hostport
}

// napType is 2 for an IP address and 1 for a machine name (PS3.15 A.5.2.1).
func napType(host string) string {
	if _, err := netip.ParseAddr(host); err == nil {
		return "2"
	}
	return "1"
}

// SyslogEvents returns a Config.Events that sends the DICOM audit message of each record that
// calls for one to w (facility authpriv; Security Alerts at severity warning, the rest notice;
// MSGID "DICOM+RFC3881").
func SyslogEvents(w *syslog.Writer, sourceID, upstream string) func(Record) {
	return func(r Record) {
		msg, alert, ok := DICOMAudit(r, sourceID, upstream)
		if !ok {
			return
		}
		sev := syslog.SeverityNotice
		if alert {
			sev = syslog.SeverityWarning
		}
		w.Send(syslog.FacilityAuthPriv, sev, "DICOM+RFC3881", msg)
	}
}
