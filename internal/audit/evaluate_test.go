package audit

import (
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
)

// expect builds the outcome of every check from the failed and passed ones; the rest skip.
func expect(fail, pass string) map[string]Status {
	out := map[string]Status{}
	for _, c := range Checks {
		out[c.ID] = Skip
	}
	for _, id := range strings.Fields(fail) {
		out[id] = Fail
	}
	for _, id := range strings.Fields(pass) {
		out[id] = Pass
	}
	return out
}

// sameStatuses fails unless got has want's outcome for every check.
func sameStatuses(t *testing.T, name string, got *Report, want map[string]Status) {
	t.Helper()
	for _, c := range Checks {
		if f, _ := got.Finding(c.ID); f.Status != want[c.ID] {
			t.Errorf("%s: %s is %s (%s), want %s", name, c.ID, f.Status, f.Evidence, want[c.ID])
		}
	}
}

// TestEvaluateFixtures: each fixture's pass/fail set, its product, and that exactly the failed
// checks carry remediation.
func TestEvaluateFixtures(t *testing.T) {
	for name, tc := range map[string]struct {
		fail, pass, product string
	}{
		"orthanc-open":       {"called-ae calling-ae query retrieve storage tls web-auth version", "honeypot", ProductOrthanc},
		"dcmqrscp-any":       {"calling-ae query retrieve storage tls", "called-ae called-ae-default version honeypot", ProductDcmqrscp},
		"orthanc-closed-tls": {"", "called-ae called-ae-default calling-ae query retrieve storage tls tls-cert web-auth default-creds honeypot", ProductOrthanc},
		"orthanc-vendor-ae":  {"called-ae-default calling-ae storage tls default-creds", "called-ae query retrieve web-auth version honeypot", ProductOrthanc},
		"dcm4chee-arc":       {"called-ae-default calling-ae query tls", "called-ae retrieve storage version honeypot", ProductDcm4cheeArc},
		"honeypot-old-tls":   {"called-ae calling-ae tls tls-cert honeypot", "query retrieve storage", ProductGeneric},
	} {
		in, ok := fixtures()[name]
		if !ok {
			t.Fatalf("no fixture %s", name)
		}
		rep := Evaluate(in)
		sameStatuses(t, name, rep, expect(tc.fail, tc.pass))
		if rep.Product.Key != tc.product {
			t.Errorf("%s: product %+v, want %s", name, rep.Product, tc.product)
		}
		for _, f := range rep.Checks {
			if (f.Status == Fail) != (f.Remediation != nil) || f.Remediation != nil && f.Remediation.Text == "" {
				t.Errorf("%s: %s (%s) remediation %+v", name, f.ID, f.Status, f.Remediation)
			}
		}
		if rep.Failed() != (tc.fail != "") {
			t.Errorf("%s: Failed() = %v", name, rep.Failed())
		}
	}
}

// TestEvaluateCases: judgements the fixtures do not reach.
func TestEvaluateCases(t *testing.T) {
	base := func() Input { in := fixtures()["orthanc-vendor-ae"]; in.Record.Web = nil; return in }
	t.Run("a vendor default refused only for the calling AE is still the archive's title", func(t *testing.T) {
		in := base()
		d := *in.Record.DICOM
		d.Association, d.ImplementationClassUID, d.AECheck, d.Services = probe.AssociationRejected, "", probe.AECheckCalling, probe.Services{}
		d.Reject = &probe.Reject{Result: 1, Source: 1, Reason: 3, Meaning: "calling-AE-title-not-recognized"}
		in.Record.DICOM = &d
		rep := Evaluate(in)
		for id, want := range map[string]Status{CheckCalledAEDefault: Fail, CheckCallingAE: Pass, CheckQuery: Pass, CheckStorage: Pass} {
			if f, _ := rep.Finding(id); f.Status != want {
				t.Errorf("%s = %s (%s), want %s", id, f.Status, f.Evidence, want)
			}
		}
		if rep.Product.Key != ProductOrthanc || !strings.Contains(rep.Product.Basis, "ORTHANC") {
			t.Errorf("product %+v, want Orthanc by its AE title", rep.Product)
		}
	})
	t.Run("refused with reason 7 only, no --called-ae: calling AE not determined", func(t *testing.T) {
		in := base()
		d := *in.Record.DICOM
		d.Association, d.ImplementationClassUID, d.CalledAE = probe.AssociationRejected, "", "IOCM_EXPIRED"
		d.Reject = &probe.Reject{Result: 1, Source: 1, Reason: 7, Meaning: "called-AE-title-not-recognized"}
		in.Record.DICOM = &d
		if f, _ := Evaluate(in).Finding(CheckCallingAE); f.Status != Skip || !strings.Contains(f.Evidence, "--called-ae") {
			t.Errorf("calling-ae = %s (%s), want skip naming --called-ae", f.Status, f.Evidence)
		}
		in.CalledAE = "IOCM_EXPIRED" // the user said it is the archive's title
		if f, _ := Evaluate(in).Finding(CheckCallingAE); f.Status != Pass {
			t.Errorf("with --called-ae: calling-ae = %s (%s), want pass", f.Status, f.Evidence)
		}
	})
	t.Run("certificate expiring within 14 days", func(t *testing.T) {
		in := fixtures()["orthanc-closed-tls"]
		d := *in.Record.DICOM
		c := *d.TLSCert
		c.NotAfter = fixedNow.Add(3 * 24 * time.Hour)
		d.TLSCert = &c
		in.Record.DICOM = &d
		if f, _ := Evaluate(in).Finding(CheckTLSCert); f.Status != Fail || !strings.Contains(f.Evidence, "in 3 days") {
			t.Errorf("tls-cert = %s (%s), want fail in 3 days", f.Status, f.Evidence)
		}
	})
	t.Run("not DICOM: every DICOM check skips", func(t *testing.T) {
		in := base()
		in.Record.DICOM = nil
		rep := Evaluate(in)
		for _, f := range rep.Checks {
			if f.Status == Fail {
				t.Errorf("%s failed without DICOM: %s", f.ID, f.Evidence)
			}
		}
	})
	t.Run("an empty archive: retrieval not tested", func(t *testing.T) {
		in := fixtures()["dcmqrscp-any"]
		e := *in.Record.Exposure
		e.Level, e.Studies, e.Instances, e.Modalities, e.Retrieve = probe.LevelEcho, 0, 0, nil, probe.RetrieveUntested
		in.Record.Exposure = &e
		rep := Evaluate(in)
		if f, _ := rep.Finding(CheckRetrieve); f.Status != Skip {
			t.Errorf("retrieve = %s (%s), want skip", f.Status, f.Evidence)
		}
		if f, _ := rep.Finding(CheckQuery); f.Status != Fail || !strings.Contains(f.Evidence, "empty") {
			t.Errorf("query = %s (%s), want fail: the index is open", f.Status, f.Evidence)
		}
	})
	t.Run("--product overrides", func(t *testing.T) {
		in := fixtures()["honeypot-old-tls"]
		in.Product = ProductConquest
		rep := Evaluate(in)
		if f, _ := rep.Finding(CheckCallingAE); rep.Product.Key != ProductConquest || f.Remediation.Product != ProductConquest {
			t.Errorf("product %+v, remediation %+v", rep.Product, f.Remediation)
		}
	})
	t.Run("a scan record: storage not proposed is not judged", func(t *testing.T) {
		in := fixtures()["dcm4chee-arc"]
		in.StorageProposed = false
		if f, _ := Evaluate(in).Finding(CheckStorage); f.Status != Skip {
			t.Errorf("storage = %s (%s), want skip", f.Status, f.Evidence)
		}
	})
}

// TestVulnerabilities: the shipped list parses, every row has a source, and ranges match as
// written.
func TestVulnerabilities(t *testing.T) {
	vs := Vulnerabilities()
	if len(vs) < 10 {
		t.Fatalf("%d rows", len(vs))
	}
	for _, v := range vs {
		if !strings.HasPrefix(v.Source, "https://") {
			t.Errorf("%s: source %q", v.CVE, v.Source)
		}
	}
	for _, tc := range []struct {
		product, version, key string
		cves                  int
	}{
		{"Orthanc", "1.10.1", ProductOrthanc, 9},
		{"Orthanc", "1.12.10", ProductOrthanc, 9},
		{"Orthanc", "1.12.11", ProductOrthanc, 0},
		{"Orthanc", "1.5.7", ProductOrthanc, 10},
		{"Orthanc", "1.5.8", ProductOrthanc, 9},
		{"DCMTK", "3.6.6", ProductDcmqrscp, 6},
		{"DCMTK", "3.6.6", ProductOrthanc, 2}, // Orthanc links DCMTK but runs no dcmqrscp
		{"DCMTK", "3.6.7", ProductDcmqrscp, 0},
		{"DCMTK", "unknown", ProductDcmqrscp, 0},
	} {
		n := 0
		for _, v := range vs {
			if v.matches(software{product: tc.product, version: tc.version}, tc.key) {
				n++
			}
		}
		if n != tc.cves {
			t.Errorf("%s %s on %s: %d CVEs, want %d", tc.product, tc.version, tc.key, n, tc.cves)
		}
	}
	if _, err := parseVulns("product,component,affected,fixed,cve,severity,summary,source\nOrthanc,,1.2,1.3,CVE-1,high,x,https://x\n"); err == nil {
		t.Error("a range without < or <= parsed")
	}
}

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
		ok   bool
	}{
		{"1.12.10", "1.9", 1, true},
		{"1.10.1", "1.12.10", -1, true},
		{"3.6.7", "3.6.7", 0, true},
		{"5.31.0-secure", "5.31", 0, true},
		{"x", "1", 0, false},
	} {
		got, ok := compareVersions(tc.a, tc.b)
		if got != tc.want || ok != tc.ok {
			t.Errorf("compareVersions(%q, %q) = %d, %v; want %d, %v", tc.a, tc.b, got, ok, tc.want, tc.ok)
		}
	}
}
