package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/browsertest"
	"github.com/pacswatch/pacswatch/internal/dicom/dicomtest"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/probe/dicomprobe"
	"github.com/pacswatch/pacswatch/internal/report"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/sqlite"
	"github.com/pacswatch/pacswatch/internal/targets"
)

// TestHTMLOfScannedHostileStrings scans a simulated PACS whose identity strings are markup — its
// Implementation Class UID's version name is "<script>alert(1)", the 16 characters the field holds —
// stores the result, writes the HTML report and opens it in Chromium: the strings show as text and
// no element comes of them.
func TestHTMLOfScannedHostileStrings(t *testing.T) {
	bin := browsertest.Require(t)
	const hostile = "<script>alert(1)"
	s := dicomtest.Start(t, dicomtest.Config{
		ImplementationVersionName: hostile,
		Tree:                      dicomtest.NewTree(5, 4),
		ComputedCounts:            true,
	})
	ap := netip.MustParseAddrPort(s.Addr())
	r := dicomprobe.New(dicomprobe.Config{Depth: dicomprobe.DepthQuery, Timeout: 2 * time.Second}).
		Probe(context.Background(), targets.Target{Addr: ap.Addr(), Port: ap.Port()})
	if r.DICOM == nil || r.DICOM.ImplementationVersion != hostile || r.Level() < probe.LevelQuery {
		js, _ := json.Marshal(r)
		t.Fatalf("the probe did not read the hostile version name: %s", js)
	}

	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sc, err := st.CreateScan(ctx, store.Scan{Name: "hostile strings", Targets: []string{s.Addr()}, Total: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutResults(ctx, sc.ID, []probe.Result{r}, store.Progress{Done: 1}); err != nil {
		t.Fatal(err)
	}
	rep, err := report.Build(ctx, st, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := rep.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), hostile) {
		t.Errorf("the raw string %q is in the HTML source, unescaped", hostile)
	}
	path := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	got := load(t, browsertest.Start(t, bin), path)
	if len(got.problems) > 0 {
		t.Errorf("problems in Chromium:\n%s", strings.Join(got.problems, "\n"))
	}
	var dom struct {
		Scripts, Images int
		Text            string
	}
	if err := json.Unmarshal([]byte(got.dom), &dom); err != nil {
		t.Fatal(err)
	}
	if dom.Scripts != 0 || dom.Images != 0 {
		t.Errorf("%d script and %d img elements came of a server's strings", dom.Scripts, dom.Images)
	}
	if !strings.Contains(dom.Text, hostile) {
		t.Errorf("the page does not show %q as text", hostile)
	}
}
