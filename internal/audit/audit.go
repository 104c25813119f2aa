// Package audit checks one PACS as its administrator would want it checked (SPEC "audit"): it
// drives the same probe steps as a scan (dicomprobe.Session: connect, associate, C-ECHO, C-FIND
// counts, retrieval tests, a storage context proposal that never sends an object) and the web
// prober, then judges every check the SPEC lists, each with a stable id, a severity, evidence
// without patient data, and, when it fails, remediation written for the product found: Orthanc
// configuration keys (as a JSON merge patch, RFC 7386), dcmtk dcmqrscp's HostTable and AETable,
// dcm4chee-arc-light's LDAP attributes, Conquest, or generic advice. Known-vulnerable versions
// come from a data file shipped with the package (data/vulnerable.csv), each row with its source.
//
// Run does the I/O; Evaluate is a pure function of what the probes recorded, so that reports
// (report --letters) judge stored scan records with the same checks and texts. Report writes
// text for a person, JSON (the full record), JUnit XML for CI gates and SARIF 2.1.0 with stable
// synthetic locations pacs/HOST_PORT/CHECK_ID.
package audit

import (
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
)

// Status is a check's outcome.
type Status string

// Outcomes. A check that could not be judged, or does not apply, is skipped with the reason.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	Skip Status = "skip"
)

// Severity is how bad a failed check is.
type Severity string

// Severities, worst first.
const (
	Critical Severity = "critical"
	High     Severity = "high"
	Medium   Severity = "medium"
	Low      Severity = "low"
	Info     Severity = "info"
)

// rank orders severities, worst first.
func (s Severity) rank() int {
	switch s {
	case Critical:
		return 0
	case High:
		return 1
	case Medium:
		return 2
	case Low:
		return 3
	}
	return 4
}

// A Check is one item of the checklist. Its ID is stable: CI gates, SARIF rules and letters name
// checks by it.
type Check struct {
	ID       string
	Title    string // what passing means, as a short sentence
	Severity Severity
	Risk     string // why it matters, in one sentence
}

// Finding is a check's outcome on one system.
type Finding struct {
	ID          string       `json:"id"`
	Title       string       `json:"title"`
	Severity    Severity     `json:"severity"`
	Status      Status       `json:"status"`
	Evidence    string       `json:"evidence"`              // what was seen, no patient data
	Remediation *Remediation `json:"remediation,omitempty"` // failed checks only
}

// Summary counts a report's findings.
type Summary struct {
	Pass int `json:"pass"`
	Fail int `json:"fail"`
	Skip int `json:"skip"`
}

// Product is the product remediation is written for, and how it was recognised.
type Product struct {
	Key     string `json:"key"`               // orthanc, dcmqrscp, dcm4chee-arc, conquest or generic
	Name    string `json:"name"`              // as the product calls itself
	Version string `json:"version,omitempty"` // when a version was learned
	Basis   string `json:"basis"`             // what named it: --product, web front end, called AE title, DICOM implementation, nothing
}

// Report is an audit of one system: the checklist, and the probe record it was judged from.
type Report struct {
	Target    string       `json:"target"`         // address:port audited
	Host      string       `json:"host,omitempty"` // the hostname the user gave, if any
	Time      time.Time    `json:"time"`
	Pacswatch string       `json:"pacswatch_version"`
	Product   Product      `json:"product"`
	Summary   Summary      `json:"summary"`
	Checks    []Finding    `json:"checks"`
	Record    probe.Result `json:"record"` // the probe's SPEC record (sanitized)
}

// Failed reports whether any check failed: `pacswatch audit` exits 1.
func (r *Report) Failed() bool { return r.Summary.Fail > 0 }

// Finding returns the finding of the check with id, and whether there is one.
func (r *Report) Finding(id string) (Finding, bool) {
	for _, f := range r.Checks {
		if f.ID == id {
			return f, true
		}
	}
	return Finding{}, false
}
