package cli_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/peertest"
)

// TestAuditExit: `pacswatch audit` exits 1 when a check fails (dcmqrscp serving anyone), 0 when
// every check passes or could not apply (Orthanc closed, with DICOM TLS), 2 when it could not run,
// with one line on stderr; -o writes the chosen format.
func TestAuditExit(t *testing.T) {
	q := peertest.StartDcmqrscp(t, []peertest.QRAE{{Title: "ARCHIVE"}}, nil)
	q.Store(t, "ARCHIVE", "LOADER", peertest.Generate(51, 2, "51"))
	target := fmt.Sprintf("127.0.0.1:%d", q.Port)

	out, stderr, code := pacswatch(t, "", "audit", target, "--called-ae", "ARCHIVE", "--format", "json")
	if code != 1 || stderr != "" {
		t.Fatalf("audit of dcmqrscp: exit %d, stderr %q; want 1 and nothing", code, stderr)
	}
	var rep struct {
		Target  string
		Summary struct{ Pass, Fail, Skip int }
		Product struct{ Key string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("JSON: %v\n%s", err, out)
	}
	if rep.Target != target || rep.Summary.Fail == 0 || rep.Product.Key != "dcmqrscp" {
		t.Errorf("report %+v", rep)
	}

	dir := t.TempDir()
	_, stderr, code = pacswatchIn(t, dir, "", "audit", target, "--called-ae", "ARCHIVE", "--format", "sarif", "-o", "audit.sarif")
	if b, err := os.ReadFile(filepath.Join(dir, "audit.sarif")); code != 1 || err != nil || !strings.Contains(string(b), `"version": "2.1.0"`) {
		t.Errorf("-o audit.sarif: exit %d, %v, stderr %q", code, err, stderr)
	}
	if !strings.Contains(stderr, "written to audit.sarif") {
		t.Errorf("stderr %q does not say where the report went", stderr)
	}

	text, _, code := pacswatch(t, "", "audit", target, "--called-ae", "ARCHIVE")
	for _, want := range []string{"WHAT IS OPEN", "WHAT TO CHANGE", "trusted_modality", "PASSED"} {
		if code != 1 || !strings.Contains(text, want) {
			t.Errorf("text output (exit %d) lacks %q:\n%s", code, want, text)
		}
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	for _, args := range [][]string{
		{"audit", closed},
		{"audit", target, "--format", "xml"},
		{"audit"},
		{"audit", target, "--web", "http://127.0.0.1:8042/some/path"},
	} {
		_, stderr, code := pacswatch(t, "", args...)
		if code != 2 || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and one line", args, code, stderr)
		}
	}
}

// TestAuditAllPass: an Orthanc with every door closed and DICOM TLS audits to exit 0.
func TestAuditAllPass(t *testing.T) {
	cert := peertest.SelfSignedFor(t, 400*24*time.Hour)
	o := peertest.StartOrthanc(t, peertest.OrthancConfig{CheckCalledAET: true, AET: "HOSP_ARCH_7", Strict: true,
		Modalities: map[string]string{"ct": "CT_SCANNER"}, Users: map[string]string{"pacsadmin": "b7f2-long-random-secret"},
		TLS: &peertest.OrthancTLS{CertFile: cert.CertFile, KeyFile: cert.KeyFile, TrustedFile: cert.CertFile, RequireClientCert: true}})
	out, stderr, code := pacswatch(t, "", "audit", fmt.Sprintf("127.0.0.1:%d", o.DICOMPort), "--web", o.URL,
		"--called-ae", "HOSP_ARCH_7", "--default-creds", "--format", "junit")
	if code != 0 || stderr != "" || !strings.Contains(out, `failures="0"`) {
		t.Errorf("exit %d, stderr %q, want 0:\n%s", code, stderr, out)
	}
}
