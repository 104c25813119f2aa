package audit

import (
	_ "embed"
	"encoding/csv"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

//go:embed data/vulnerable.csv
var vulnerableCSV string

// A Vuln is one row of the known-vulnerable list (data/vulnerable.csv): a product's version
// range, the CVE, and the public source it was taken from.
type Vuln struct {
	Product   string   // as pacswatch names it: Orthanc, DCMTK, dcm4che, Conquest
	Component string   // only this product's part is affected (dcmqrscp); "" for all of it
	Affected  string   // "<V" or "<=V"
	Fixed     string   // the first fixed version
	CVE       string   // CVE id
	Severity  Severity // as the source rates it
	Summary   string
	Source    string
}

// Vulnerabilities returns the known-vulnerable list shipped in the binary. It is read-only.
var Vulnerabilities = sync.OnceValue(func() []Vuln {
	vs, err := parseVulns(vulnerableCSV)
	if err != nil {
		panic(err) // embedded: a test parses it
	}
	return vs
})

// parseVulns reads the CSV layout of data/vulnerable.csv: '#' comment lines, a header, rows.
func parseVulns(text string) ([]Vuln, error) {
	rd := csv.NewReader(strings.NewReader(text))
	rd.Comment = '#'
	rows, err := rd.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("audit: vulnerable.csv: %w", err)
	}
	if len(rows) == 0 || strings.Join(rows[0], ",") != "product,component,affected,fixed,cve,severity,summary,source" {
		return nil, fmt.Errorf("audit: vulnerable.csv: unexpected header")
	}
	var out []Vuln
	for i, row := range rows[1:] {
		v := Vuln{row[0], row[1], row[2], row[3], row[4], Severity(row[5]), row[6], row[7]}
		if _, _, ok := parseRange(v.Affected); !ok || !strings.HasPrefix(v.CVE, "CVE-") || v.Source == "" ||
			v.Fixed == "" || !validSeverity(v.Severity) {
			return nil, fmt.Errorf("audit: vulnerable.csv: row %d (%s) is malformed", i+2, v.CVE)
		}
		out = append(out, v)
	}
	return out, nil
}

// matches reports whether the row applies to s on a system recognised as product key.
func (v Vuln) matches(s software, key string) bool {
	if !strings.EqualFold(v.Product, s.product) || v.Component != "" && v.Component != key {
		return false
	}
	op, bound, _ := parseRange(v.Affected)
	c, ok := compareVersions(s.version, bound)
	return ok && (c < 0 || op == "<=" && c == 0)
}

// parseRange splits "<V" or "<=V".
func parseRange(r string) (op, bound string, ok bool) {
	if b, ok := strings.CutPrefix(r, "<="); ok {
		return "<=", b, b != ""
	}
	if b, ok := strings.CutPrefix(r, "<"); ok {
		return "<", b, b != ""
	}
	return "", "", false
}

// compareVersions compares dotted numeric versions ("1.12.10" > "1.9"), reading the leading
// digits of each part ("5.31.0-secure" is 5.31.0). It reports false when a has no number.
func compareVersions(a, b string) (int, bool) {
	pa, pb := versionParts(a), versionParts(b)
	if len(pa) == 0 || len(pb) == 0 {
		return 0, false
	}
	for i := range max(len(pa), len(pb)) {
		x, y := 0, 0
		if i < len(pa) {
			x = pa[i]
		}
		if i < len(pb) {
			y = pb[i]
		}
		if x != y {
			if x < y {
				return -1, true
			}
			return 1, true
		}
	}
	return 0, true
}

func versionParts(v string) []int {
	var out []int
	for _, p := range strings.Split(v, ".") {
		end := 0
		for end < len(p) && p[end] >= '0' && p[end] <= '9' {
			end++
		}
		n, err := strconv.Atoi(p[:end])
		if err != nil {
			break
		}
		out = append(out, n)
		if end < len(p) {
			break // "0-secure": the rest is no version part
		}
	}
	return out
}

// maxVersion returns the later of two versions ("" is earlier than any).
func maxVersion(a, b string) string {
	if c, ok := compareVersions(a, b); a == "" || ok && c < 0 {
		return b
	}
	return a
}

func validSeverity(s Severity) bool {
	switch s {
	case Critical, High, Medium, Low, Info:
		return true
	}
	return false
}
