package audit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// Format is an output format of a report.
type Format string

// Formats (SPEC audit --format).
const (
	FormatText  Format = "text"  // for a person: what is open, how bad, what to change
	FormatJSON  Format = "json"  // the full record
	FormatJUnit Format = "junit" // JUnit XML, one test case per check, for CI gates
	FormatSARIF Format = "sarif" // SARIF 2.1.0, one result per check at pacs/HOST_PORT/CHECK_ID
)

// ParseFormat parses a --format value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatText, FormatJSON, FormatJUnit, FormatSARIF:
		return f, nil
	}
	return "", fmt.Errorf("--format: %q is not text, json, junit or sarif", s)
}

// Write writes the report in format f.
func (r *Report) Write(w io.Writer, f Format) error {
	switch f {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false) // placeholders such as <USER> read as written
		return enc.Encode(r)
	case FormatJUnit:
		return r.writeJUnit(w)
	case FormatSARIF:
		return r.writeSARIF(w)
	}
	bw := bufio.NewWriter(w)
	r.writeText(bw)
	return bw.Flush()
}

// textWidth is the width text output wraps at.
const textWidth = 78

// byStatus returns the findings with status st in checklist order; failed ones worst first.
func (r *Report) byStatus(st Status) []Finding {
	var out []Finding
	for _, f := range r.Checks {
		if f.Status == st {
			out = append(out, f)
		}
	}
	if st == Fail {
		slices.SortStableFunc(out, func(a, b Finding) int { return a.Severity.rank() - b.Severity.rank() })
	}
	return out
}

// writeText writes the report for a person, in the order they need it: what is open, how bad,
// what to change; then what passed and what was not checked.
func (r *Report) writeText(w *bufio.Writer) {
	total := len(r.Checks)
	switch {
	case r.Summary.Fail == 0:
		fmt.Fprintf(w, "pacswatch audit of %s: no check failed (%d passed, %d not checked)\n", r.Target, r.Summary.Pass, r.Summary.Skip)
	default:
		fmt.Fprintf(w, "pacswatch audit of %s: %d of %d checks failed\n", r.Target, r.Summary.Fail, total)
	}
	switch name := r.Product.Name; {
	case r.Product.Key == ProductGeneric && r.Product.Basis == basisNothing:
		fmt.Fprintf(w, "product: not recognised (remediation is generic; --product names it)\n")
	default:
		if r.Product.Version != "" {
			name += " " + r.Product.Version
		}
		fmt.Fprintf(w, "product: %s (named by %s)\n", name, r.Product.Basis)
	}
	fmt.Fprintf(w, "time: %s\n", r.Time.Format("2006-01-02 15:04:05 UTC"))

	failed := r.byStatus(Fail)
	if len(failed) > 0 {
		fmt.Fprintf(w, "\nWHAT IS OPEN\n")
		for _, f := range failed {
			writeLine(w, fmt.Sprintf("  %-9s %-18s ", strings.ToUpper(string(f.Severity)), f.ID), f.Evidence)
		}
		fmt.Fprintf(w, "\nWHAT TO CHANGE\n")
		for _, g := range groupByRemedy(failed) {
			writeRemedy(w, g)
		}
		if p := r.OrthancPatch(); p != nil && countOrthanc(failed) > 1 {
			fmt.Fprintf(w, "\n  All the Orthanc changes above in one patch of orthanc.json (then restart Orthanc):\n")
			for line := range strings.SplitSeq(patchText(p), "\n") {
				fmt.Fprintf(w, "    %s\n", line)
			}
		}
	}
	if passed := r.byStatus(Pass); len(passed) > 0 {
		fmt.Fprintf(w, "\nPASSED\n")
		for _, f := range passed {
			writeLine(w, fmt.Sprintf("  ok  %-18s ", f.ID), f.Evidence)
		}
	}
	if skipped := r.byStatus(Skip); len(skipped) > 0 {
		fmt.Fprintf(w, "\nNOT CHECKED\n")
		for _, f := range skipped {
			writeLine(w, fmt.Sprintf("  --  %-18s ", f.ID), f.Evidence)
		}
	}
}

func countOrthanc(fs []Finding) int {
	n := 0
	for _, f := range fs {
		if rm := f.Remediation; rm != nil && rm.Config != nil && rm.Product == ProductOrthanc {
			n++
		}
	}
	return n
}

// groupByRemedy groups failed findings that share one remediation (several checks closed by
// one change), in the order of their first finding.
func groupByRemedy(failed []Finding) [][]Finding {
	var (
		groups [][]Finding
		keys   []string
	)
	for _, f := range failed {
		b, _ := json.Marshal(f.Remediation)
		if i := slices.Index(keys, string(b)); i >= 0 {
			groups[i] = append(groups[i], f)
			continue
		}
		keys = append(keys, string(b))
		groups = append(groups, []Finding{f})
	}
	return groups
}

// writeRemedy writes the remediation that closes a group of failed checks: its text, its
// configuration change, and what each placeholder stands for.
func writeRemedy(w *bufio.Writer, group []Finding) {
	f, rm := group[0], group[0].Remediation
	if len(group) == 1 {
		fmt.Fprintf(w, "\n  %s: %s\n", f.ID, f.Title)
	} else {
		ids := make([]string, len(group))
		for i, g := range group {
			ids[i] = g.ID
		}
		fmt.Fprintf(w, "\n  %s (one change closes them all)\n", strings.Join(ids, ", "))
	}
	if rm == nil {
		return
	}
	for _, line := range wrap(rm.Text, textWidth-4) {
		fmt.Fprintf(w, "    %s\n", line)
	}
	if c := rm.Config; c != nil {
		fmt.Fprintf(w, "    %s:\n", c.Where())
		for _, line := range c.Lines() {
			fmt.Fprintf(w, "      %s\n", line)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(rm.Placeholders)) {
		writeLine(w, fmt.Sprintf("    %s: ", k), rm.Placeholders[k])
	}
}

// patchText renders a merge patch as the JSON object it is, keys sorted.
func patchText(p map[string]any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(p) // maps of JSON values: cannot fail
	return strings.TrimSuffix(b.String(), "\n")
}

// writeLine writes head then text, wrapped, its continuation lines aligned under text's start.
func writeLine(w *bufio.Writer, head, text string) {
	width := max(textWidth-len(head), 30)
	for i, line := range wrap(text, width) {
		if i == 0 {
			fmt.Fprintf(w, "%s%s\n", head, line)
		} else {
			fmt.Fprintf(w, "%s%s\n", strings.Repeat(" ", len(head)), line)
		}
	}
}

// wrap breaks text into lines of at most width bytes at spaces (a longer word stands alone).
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		switch {
		case line == "":
			line = word
		case len(line)+1+len(word) <= width:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
	}
	if line != "" || len(lines) == 0 {
		lines = append(lines, line)
	}
	return lines
}

// OrthancPatch merges the Orthanc configuration patches of every failed check into one (JSON
// merge patch, RFC 7386), or returns nil when there are none.
func (r *Report) OrthancPatch() map[string]any {
	var out map[string]any
	for _, f := range r.Checks {
		if rm := f.Remediation; f.Status == Fail && rm != nil && rm.Config != nil && rm.Config.Format == FormatMergePatch {
			if out == nil {
				out = map[string]any{}
			}
			mergePatches(out, rm.Config.Patch)
		}
	}
	return out
}

// mergePatches merges merge patch b into merge patch a: objects key by key, anything else
// replaces.
func mergePatches(a, b map[string]any) {
	for k, v := range b {
		if bo, ok := v.(map[string]any); ok {
			ao, ok := a[k].(map[string]any)
			if !ok {
				ao = map[string]any{}
			}
			mergePatches(ao, bo)
			a[k] = ao
			continue
		}
		a[k] = v
	}
}
