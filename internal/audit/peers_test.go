package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/audit"
	"github.com/pacswatch/pacswatch/internal/peertest"
)

// jsonReport is what these tests read of `audit --format json`: they work from the JSON a user
// gets, not from the Go values, so that the remediation applied is the one printed.
type jsonReport struct {
	Target string
	Checks []struct {
		ID, Status, Evidence string
		Remediation          *jsonRemedy
	}
}

type jsonRemedy struct {
	Product      string
	Text         string
	Config       json.RawMessage
	Placeholders map[string]string
}

type jsonChange struct {
	File, Format, Restart string
	Patch                 map[string]any
	Tables                []struct{ Table, Entry, Column, Value string }
}

func (r jsonReport) statuses() map[string]string {
	out := map[string]string{}
	for _, c := range r.Checks {
		out[c.ID] = c.Status
	}
	return out
}

// auditJSON audits cfg and returns its JSON output, parsed.
func auditJSON(t *testing.T, cfg audit.Config) jsonReport {
	t.Helper()
	cfg.Timeout = 5 * time.Second
	rep, err := audit.Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("audit %s: %v", cfg.Target, err)
	}
	var buf bytes.Buffer
	if err := rep.Write(&buf, audit.FormatJSON); err != nil {
		t.Fatal(err)
	}
	var out jsonReport
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		t.Fatalf("audit JSON: %v\n%s", err, buf.String())
	}
	return out
}

// wantStatuses fails unless r has, for every check, the status the lists give (the rest skip).
func wantStatuses(t *testing.T, r jsonReport, fail, pass string) {
	t.Helper()
	got := r.statuses()
	for _, c := range audit.Checks {
		want := "skip"
		switch {
		case slices.Contains(strings.Fields(fail), c.ID):
			want = "fail"
		case slices.Contains(strings.Fields(pass), c.ID):
			want = "pass"
		}
		if got[c.ID] != want {
			ev := ""
			for _, f := range r.Checks {
				if f.ID == c.ID {
					ev = f.Evidence
				}
			}
			t.Errorf("%s: %s is %s (%s), want %s", r.Target, c.ID, got[c.ID], ev, want)
		}
	}
}

// fill replaces each placeholder of rm's configuration change with the test's value for it, and
// decodes the change. A placeholder the test does not know fails it.
func fill(t *testing.T, rm *jsonRemedy, values map[string]string) jsonChange {
	t.Helper()
	text := string(rm.Config)
	for p := range rm.Placeholders {
		v, ok := values[p]
		if !ok {
			t.Fatalf("the audit asks for %s (%s), which this test does not know", p, rm.Placeholders[p])
		}
		text = strings.ReplaceAll(text, p, v)
	}
	if strings.Contains(text, "<") {
		t.Fatalf("placeholders left unexplained in %s", text)
	}
	var c jsonChange
	if err := json.Unmarshal([]byte(text), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// mergePatch applies a JSON merge patch (RFC 7386) to target and returns the result.
func mergePatch(target any, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
		} else {
			t[k] = mergePatch(t[k], v)
		}
	}
	return t
}

// dicomwebPlugin is where Debian's orthanc-dicomweb puts the plugin (peertest loads it there).
const dicomwebPlugin = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"

// TestOrthancConfigurations audits real Orthanc servers, each in its own configuration, and
// asserts the outcome of every check. Then, for each check that failed with an Orthanc
// configuration change, it applies the change the audit printed (read from its JSON) to the
// server's configuration file, alone and then all together, restarts Orthanc, and audits again:
// each such check must pass.
func TestOrthancConfigurations(t *testing.T) {
	peertest.Require(t, "Orthanc", "echoscu")
	_, err := os.Stat(dicomwebPlugin)
	dicomweb := err == nil
	if !dicomweb && peertest.Required() {
		t.Fatalf("%s missing and %s=1 (apt-get install orthanc-dicomweb)", dicomwebPlugin, peertest.RequireEnv)
	}
	if !dicomweb {
		t.Logf("%s not installed: DICOMweb is not exercised here (CI installs orthanc-dicomweb)", dicomwebPlugin)
	}
	corpus := peertest.Generate(41, 3, "41")
	cert := peertest.SelfSignedFor(t, 400*24*time.Hour)
	values := map[string]string{
		"<MODALITY_NAME>": "ct", "<MODALITY_AE>": "CT_SCANNER", "<MODALITY_HOST>": "127.0.0.1",
		"<NEW_AE_TITLE>": "HOSP_ARCH_7", "<USER>": "pacsadmin", "<PASSWORD>": "b7f2-long-random-secret",
		"<CERTIFICATE_PEM>": cert.CertFile, "<PRIVATE_KEY_PEM>": cert.KeyFile, "<TRUSTED_CERTIFICATES_PEM>": cert.CertFile,
	}
	closed := peertest.OrthancConfig{CheckCalledAET: true, AET: "HOSP_ARCH_7", Strict: true,
		Modalities: map[string]string{"ct": "CT_SCANNER"}, Users: map[string]string{"pacsadmin": "b7f2-long-random-secret"}}
	closedTLS, closedTLSNoClient := closed, closed
	closedTLS.TLS = &peertest.OrthancTLS{CertFile: cert.CertFile, KeyFile: cert.KeyFile, TrustedFile: cert.CertFile, RequireClientCert: true}
	closedTLSNoClient.TLS = &peertest.OrthancTLS{CertFile: cert.CertFile, KeyFile: cert.KeyFile, TrustedFile: cert.CertFile}
	for _, tc := range []struct {
		name       string
		cfg        peertest.OrthancConfig
		calledAE   string
		fail, pass string
	}{
		{"defaults", peertest.OrthancConfig{},
			"", "called-ae calling-ae storage tls web-auth version", "query retrieve honeypot"},
		{"wide open", peertest.OrthancConfig{Open: true, DICOMweb: true},
			"", "called-ae calling-ae query retrieve storage tls web-auth version", "honeypot"},
		{"called-AE check, vendor default AE and login", peertest.OrthancConfig{CheckCalledAET: true, Users: map[string]string{"orthanc": "orthanc"}},
			"", "called-ae-default calling-ae storage tls default-creds version", "called-ae query retrieve web-auth honeypot"},
		{"everything closed, DICOM TLS with client certificates", closedTLS,
			"HOSP_ARCH_7", "", "called-ae called-ae-default calling-ae query retrieve storage tls tls-cert web-auth default-creds honeypot"},
		{"everything closed, DICOM TLS without client certificates", closedTLSNoClient,
			"HOSP_ARCH_7", "", "called-ae called-ae-default calling-ae query retrieve storage tls tls-cert web-auth default-creds honeypot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := peertest.StartOrthanc(t, tc.cfg)
			o.Upload(t, corpus)
			cfg := audit.Config{Target: fmt.Sprintf("127.0.0.1:%d", o.DICOMPort), Web: []string{o.URL}, DefaultCreds: true, CalledAE: tc.calledAE}
			rep := auditJSON(t, cfg)
			wantStatuses(t, rep, tc.fail, tc.pass)
			if tc.cfg.DICOMweb && dicomweb && !strings.Contains(evidence(rep, audit.CheckWebAuth), "DICOMweb") {
				t.Errorf("web-auth evidence does not name DICOMweb: %s", evidence(rep, audit.CheckWebAuth))
			}
			remediateOrthanc(t, o, cfg, rep, values)
		})
	}
}

func evidence(r jsonReport, id string) string {
	for _, c := range r.Checks {
		if c.ID == id {
			return c.Evidence
		}
	}
	return ""
}

// remediateOrthanc applies each Orthanc configuration change of rep's failed checks, alone and
// then all together, restarting o and auditing again each time. Every failed check must have
// such a change, but for the version (an upgrade).
func remediateOrthanc(t *testing.T, o *peertest.Orthanc, cfg audit.Config, rep jsonReport, values map[string]string) {
	t.Helper()
	orig, err := os.ReadFile(o.ConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	apply := func(changes ...jsonChange) string {
		var conf any
		if err := json.Unmarshal(orig, &conf); err != nil {
			t.Fatal(err)
		}
		for _, c := range changes {
			if c.File != "orthanc.json" || c.Format != audit.FormatMergePatch || c.Restart != "Orthanc" {
				t.Fatalf("an Orthanc change to %s as %s restarting %s", c.File, c.Format, c.Restart)
			}
			conf = mergePatch(conf, c.Patch)
		}
		b, _ := json.MarshalIndent(conf, "", "  ")
		if err := os.WriteFile(o.ConfigFile(), b, 0o644); err != nil {
			t.Fatal(err)
		}
		o.Restart(t)
		aet, _ := conf.(map[string]any)["DicomAet"].(string)
		return aet
	}
	var fixed []string
	var all []jsonChange
	for _, c := range rep.Checks {
		if c.Status != "fail" {
			continue
		}
		if c.Remediation == nil || c.Remediation.Product != audit.ProductOrthanc || len(c.Remediation.Config) == 0 {
			if c.ID != audit.CheckVersion {
				t.Errorf("%s failed without an Orthanc configuration change: %+v", c.ID, c.Remediation)
			}
			continue
		}
		change := fill(t, c.Remediation, values)
		all = append(all, change)
		fixed = append(fixed, c.ID)
		// Alone: this check passes after its own change. The archive's administrator knows its
		// AE title, so the audit after the change is given it.
		after := cfg
		after.CalledAE = apply(change)
		again := auditJSON(t, after)
		if s := again.statuses()[c.ID]; s != "pass" {
			t.Errorf("after its own change %s, %s is %s: %s", mustJSON(change.Patch), c.ID, s, evidence(again, c.ID))
		}
		if c.ID == audit.CheckCallingAE {
			// The modality the change lets in still gets in.
			if out, err := peertest.Run(t, "echoscu", "-aet", "CT_SCANNER", "-aec", after.CalledAE, "127.0.0.1", fmt.Sprint(o.DICOMPort)); err != nil {
				t.Errorf("echoscu from the modality the change admits: %v\n%s", err, out)
			}
		}
	}
	if len(all) == 0 {
		return
	}
	after := cfg
	after.CalledAE = apply(all...)
	again := auditJSON(t, after)
	for _, id := range fixed {
		if s := again.statuses()[id]; s != "pass" {
			t.Errorf("after every change, %s is %s: %s", id, s, evidence(again, id))
		}
	}
	t.Logf("%s: %d checks closed by the printed changes (%s), each alone and all together", rep.Target, len(fixed), strings.Join(fixed, ", "))
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestDcmqrscpAnyone audits dcmqrscp serving anyone (Peers ANY), asserts every check, then
// applies the AETable and HostTable edits the audit printed, restarts dcmqrscp and audits again:
// the checks they close pass, and the modality they admit still gets in.
func TestDcmqrscpAnyone(t *testing.T) {
	peertest.Require(t, "dcmqrscp", "storescu", "echoscu")
	q := peertest.StartDcmqrscp(t, []peertest.QRAE{{Title: "ARCHIVE"}}, nil)
	q.Store(t, "ARCHIVE", "LOADER", peertest.Generate(42, 3, "42"))
	cfg := audit.Config{Target: fmt.Sprintf("127.0.0.1:%d", q.Port), CalledAE: "ARCHIVE"}
	rep := auditJSON(t, cfg)
	wantStatuses(t, rep, "calling-ae query retrieve storage tls", "called-ae called-ae-default version honeypot")

	orig, err := os.ReadFile(q.ConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]string{"<MODALITY_AE>": "CT_SCANNER", "<MODALITY_HOST>": "127.0.0.1"}
	var fixed []string
	text := string(orig)
	applied := map[string]bool{}
	for _, c := range rep.Checks {
		if c.Status != "fail" || c.Remediation == nil || len(c.Remediation.Config) == 0 {
			continue
		}
		if c.Remediation.Product != audit.ProductDcmqrscp {
			t.Fatalf("%s: remediation for %s", c.ID, c.Remediation.Product)
		}
		fixed = append(fixed, c.ID)
		change := fill(t, c.Remediation, values)
		if key := mustJSON(change); !applied[key] { // checks closed by one change share it
			applied[key] = true
			if text, err = applyTables(text, change); err != nil {
				t.Fatal(err)
			}
		}
	}
	if want := []string{"calling-ae", "query", "retrieve", "storage"}; !slices.Equal(sorted(fixed), want) {
		t.Errorf("checks with a dcmqrscp configuration change: %v, want %v", fixed, want)
	}
	if err := os.WriteFile(q.ConfigFile(), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	q.Restart(t)
	again := auditJSON(t, cfg)
	for _, id := range fixed {
		if s := again.statuses()[id]; s != "pass" {
			t.Errorf("after the change, %s is %s: %s", id, s, evidence(again, id))
		}
	}
	if out, err := peertest.Run(t, "echoscu", "-aet", "CT_SCANNER", "-aec", "ARCHIVE", "127.0.0.1", fmt.Sprint(q.Port)); err != nil {
		t.Errorf("echoscu from the modality the change admits: %v\n%s", err, out)
	}
	t.Logf("dcmqrscp.cfg after the printed change:\n%s", text)
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// applyTables applies dcmqrscp table edits to a configuration file's text (DCMTK dcmqrcnf.txt):
// a HostTable entry is added before "HostTable END"; an AETable line's column (AETitle, the
// first; Peers, the last, after the quota's closing parenthesis) is set.
func applyTables(text string, c jsonChange) (string, error) {
	if c.File != "dcmqrscp.cfg" || c.Format != audit.FormatDcmqrscp || c.Restart != "dcmqrscp" {
		return "", fmt.Errorf("a dcmqrscp change to %s as %s restarting %s", c.File, c.Format, c.Restart)
	}
	lines := strings.Split(text, "\n")
	for _, e := range c.Tables {
		done := false
		for i, l := range lines {
			switch {
			case e.Table == "HostTable" && strings.TrimSpace(l) == "HostTable END":
				lines = slices.Insert(lines, i, e.Entry+" = "+e.Value)
				done = true
			case e.Table == "AETable" && strings.HasPrefix(l, e.Entry+" "):
				switch e.Column {
				case "Peers":
					end := strings.LastIndexByte(l, ')')
					lines[i] = l[:end+1] + " " + e.Value
				case "AETitle":
					lines[i] = e.Value + strings.TrimPrefix(l, e.Entry)
				default:
					return "", fmt.Errorf("AETable column %q", e.Column)
				}
				done = true
			}
			if done {
				break
			}
		}
		if !done {
			return "", fmt.Errorf("no place for %+v in:\n%s", e, text)
		}
	}
	return strings.Join(lines, "\n"), nil
}
