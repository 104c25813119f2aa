package report_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/report"
)

// hostileStore holds one accessible host whose server strings are the given ones, and the scan
// name.
func hostileStore(scanName, ae, version, product string) *memStore {
	st := newMemStore()
	st.create("s1", scanName, "", true)
	st.put("s1", probe.Result{
		IP: netip.MustParseAddr("127.0.0.1"), Port: 104, Status: probe.StatusOpen,
		DICOM: &probe.DICOM{Association: probe.AssociationAccepted, CalledAE: ae, ImplementationVersion: version, Product: product},
		Exposure: &probe.Exposure{Level: probe.LevelQuery, Studies: 3, StudiesExact: true, Instances: 9,
			InstancesSource: probe.InstancesSourceStudyAttr, Retrieve: probe.RetrieveRefused},
	})
	return st
}

// FuzzRender renders a report whose server strings (AE title, version name, product) and scan
// name are arbitrary: JSON round-trips them, CSV parses, Markdown has no raw HTML, and HTML has
// exactly the markup it has with harmless strings.
func FuzzRender(f *testing.F) {
	f.Add("scan", "ANY-SCP", "OFFIS_DCMTK_367", "Orthanc")
	f.Add("<b>x</b>", "<script>alert(1)", "<script>alert(1)</script>", "</td><td>")
	f.Add("a|b", "|*_`[x](y)", "\x00\x1b[31m\u202e", "=cmd|' /C calc'!A0")
	f.Add("", "", "", "")
	f.Fuzz(func(t *testing.T, name, ae, version, product string) {
		ctx := context.Background()
		st := hostileStore(name, ae, version, product)
		r, err := report.Build(ctx, st, report.Options{})
		if err != nil {
			t.Fatal(err)
		}
		stored := st.stored("s1")[0].DICOM // as sanitized by the store

		var js bytes.Buffer
		if err := r.WriteJSON(&js); err != nil {
			t.Fatal(err)
		}
		var back report.Report
		if err := json.Unmarshal(js.Bytes(), &back); err != nil {
			t.Fatalf("JSON does not parse: %v", err)
		}
		if back.Scan.Name != r.Scan.Name || len(back.Products) != 1 || back.Products[0].Version != stored.ImplementationVersion {
			t.Errorf("JSON round trip: name %q → %q, products %+v (version %q)", r.Scan.Name, back.Scan.Name, back.Products, stored.ImplementationVersion)
		}
		if stored.CalledAE != "" && (len(back.CalledAEs) != 1 || back.CalledAEs[0].Name != stored.CalledAE) {
			t.Errorf("JSON round trip: called AE %q → %+v", stored.CalledAE, back.CalledAEs)
		}

		var cs bytes.Buffer
		if err := r.WriteCSV(&cs); err != nil {
			t.Fatal(err)
		}
		if _, err := csv.NewReader(&cs).ReadAll(); err != nil {
			t.Errorf("CSV does not parse: %v", err)
		}

		var md bytes.Buffer
		if err := r.WriteMarkdown(&md); err != nil {
			t.Fatal(err)
		}
		if strings.ContainsAny(md.String(), "<>") {
			t.Errorf("Markdown has raw < or >:\n%s", md.String())
		}
		cells := -1 // separators in the current table's header
		for _, line := range strings.Split(md.String(), "\n") {
			if !strings.HasPrefix(line, "| ") {
				cells = -1
				continue
			}
			if n := unescapedPipes(line); cells < 0 {
				cells = n
			} else if n != cells {
				t.Errorf("Markdown row has %d separators, its header %d: %q", n, cells, line)
			}
		}

		var html, plain bytes.Buffer
		if err := r.WriteHTML(&html); err != nil {
			t.Fatal(err)
		}
		placeholder := func(s string) string {
			if s == "" {
				return ""
			}
			return "a"
		}
		pr, err := report.Build(ctx, hostileStore(placeholder(r.Scan.Name), placeholder(stored.CalledAE),
			placeholder(stored.ImplementationVersion), placeholder(stored.Product)), report.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := pr.WriteHTML(&plain); err != nil {
			t.Fatal(err)
		}
		if got, want := strings.Count(html.String(), "<"), strings.Count(plain.String(), "<"); got != want {
			t.Errorf("HTML has %d tags with these strings, %d with harmless ones", got, want)
		}
	})
}

// unescapedPipes counts the cell separators of a Markdown table line.
func unescapedPipes(line string) int {
	n := 0
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			i++
		case '|':
			n++
		}
	}
	return n
}
