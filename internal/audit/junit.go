package audit

import (
	"encoding/xml"
	"io"
	"strings"
)

// JUnit XML, in the layout CI servers read (Jenkins' junit plugin, GitLab, GitHub actions'
// test reporters): a testsuites root, one testsuite per audited system, one testcase per
// check; a failed check is a failure (its type the severity), a skipped one skipped.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Hostname   string          `xml:"hostname,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure"`
	Skipped   *junitSkipped `xml:"skipped"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

// slug is the target as a name part: 127.0.0.1:4242 → 127.0.0.1_4242, [::1]:104 → ::1_104.
func (r *Report) slug() string {
	i := strings.LastIndexByte(r.Target, ':')
	if i < 0 {
		return r.Target
	}
	host := strings.Trim(r.Target[:i], "[]")
	return host + "_" + r.Target[i+1:]
}

func (r *Report) writeJUnit(w io.Writer) error {
	s := junitSuite{
		Name: "pacswatch audit " + r.Target, Tests: len(r.Checks), Failures: r.Summary.Fail, Skipped: r.Summary.Skip,
		Time: "0", Timestamp: r.Time.UTC().Format("2006-01-02T15:04:05"), Hostname: r.Target,
		Properties: []junitProperty{{"product", r.Product.Name}, {"product_basis", r.Product.Basis}, {"pacswatch_version", r.Pacswatch}},
	}
	for _, f := range r.Checks {
		c := junitCase{Name: f.ID + ": " + f.Title, Classname: "pacs." + r.slug(), Time: "0"}
		switch f.Status {
		case Fail:
			text := f.Evidence
			if rm := f.Remediation; rm != nil {
				text += "\n\nWhat to change: " + rm.Text
				if rm.Config != nil && rm.Config.Format == FormatMergePatch {
					text += "\nIn " + rm.Config.File + ":\n" + patchText(rm.Config.Patch)
				}
			}
			c.Failure = &junitFailure{Message: f.Evidence, Type: string(f.Severity), Text: text}
		case Skip:
			c.Skipped = &junitSkipped{Message: f.Evidence}
		}
		s.Cases = append(s.Cases, c)
	}
	root := junitSuites{Name: "pacswatch audit", Tests: s.Tests, Failures: s.Failures, Skipped: s.Skipped, Time: "0", Suites: []junitSuite{s}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(root); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
