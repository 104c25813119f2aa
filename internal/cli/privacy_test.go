package cli_test

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pacswatch/pacswatch/internal/dicom/dicomtest"
	"github.com/pacswatch/pacswatch/internal/geo"
	"github.com/pacswatch/pacswatch/internal/geo/geotest"
	"github.com/pacswatch/pacswatch/internal/peertest"
)

// TestNoPatientData scans every kind of peer loaded with known fake patients, with every option on
// and debug logging, then searches every output — the store file, the JSON Lines, the log, the
// reports in every format, the letters to network owners, and audits of each peer in every
// format with their logs — for each patient name, patient ID, accession number, institution,
// description and raw study UID. SPEC: no patient data, ever.
func TestNoPatientData(t *testing.T) {
	a, b, c := peertest.Generate(11, 8, "71"), peertest.Generate(12, 6, "72"), peertest.Generate(13, 5, "73")
	open := peertest.StartOrthanc(t, peertest.OrthancConfig{Open: true, DICOMweb: true})
	open.Upload(t, a)
	locked := peertest.StartOrthanc(t, peertest.OrthancConfig{Open: true, DICOMweb: true, Users: map[string]string{"orthanc": "orthanc"}})
	locked.Upload(t, b)
	qr := peertest.StartDcmqrscp(t, []peertest.QRAE{{Title: "DCM4CHEE"}}, nil)
	qr.Store(t, "DCM4CHEE", "LOADER", c)
	tree := dicomtest.NewTree(99, 7)
	chatty := dicomtest.Start(t, dicomtest.Config{Tree: tree, Chatty: true, ComputedCounts: true})
	_, chattyPort, _ := net.SplitHostPort(chatty.Addr())

	var secrets []string
	for _, corpus := range []peertest.Corpus{a, b, c} {
		secrets = append(secrets, corpus.Secrets()...)
		for _, in := range corpus.Instances {
			secrets = append(secrets, in.StudyUID, in.SeriesUID, in.SOPUID)
		}
	}
	for i := range tree.Len() {
		st := tree.Study(i)
		secrets = append(secrets, st.PatientName, st.PatientID, st.UID)
	}

	dir := t.TempDir()
	db := filepath.Join(dir, "privacy.db")
	jsonl := filepath.Join(dir, "privacy.jsonl")
	dicomPorts := fmt.Sprintf("%d,%d,%d,%s", open.DICOMPort, locked.DICOMPort, qr.Port, chattyPort)
	webPorts := fmt.Sprintf("%d,%d", open.HTTPPort, locked.HTTPPort)
	_, logs, code := pacswatchIn(t, dir, "", "scan", "127.0.0.1", "-p", dicomPorts, "--web", "--web-ports", webPorts,
		"--default-creds", "--verify-retrieve", "-vv", "--log-format", "json", "--db", db, "-o", jsonl)
	if code > 1 {
		t.Fatalf("scan exited %d: %s", code, logs)
	}
	outputs := map[string][]byte{"log (stderr)": []byte(logs)}
	for _, name := range []string{"privacy.db", "privacy.db-wal", "privacy.jsonl"} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
			outputs[name] = b
		}
	}
	if len(outputs["privacy.jsonl"]) == 0 || len(outputs["privacy.db"]) == 0 {
		t.Fatal("the scan wrote no JSON Lines or no store")
	}
	// Reports, when the report command exists (issue 6).
	if _, _, code := pacswatchIn(t, dir, "", "report", "--help"); code == 0 {
		for _, format := range []string{"html", "md", "csv", "json"} {
			out := filepath.Join(dir, "report."+format)
			if _, stderr, code := pacswatchIn(t, dir, "", "report", "--db", db, "--format", format, "-o", out); code != 0 {
				t.Fatalf("report --format %s exited %d: %s", format, code, stderr)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			outputs["report."+format] = b
		}
	}
	// Letters to network owners (report --letters), from the same store.
	asnPath := filepath.Join(dir, "asn.mmdb")
	if err := geotest.WriteASN(asnPath, "GeoLite2-ASN", []geotest.AS{
		{Prefix: netip.MustParsePrefix("127.0.0.0/8"), ASN: geo.ASN{Number: 64500, Org: "Loopback Hospital Network"}},
	}); err != nil {
		t.Fatal(err)
	}
	lettersDir := filepath.Join(dir, "letters")
	if _, stderr, code := pacswatchIn(t, dir, "", "report", "--db", db, "--asn", asnPath, "--letters", lettersDir); code != 0 {
		t.Fatalf("report --letters exited %d: %s", code, stderr)
	}
	for _, name := range []string{"AS64500.md", "AS64500.txt"} {
		b, err := os.ReadFile(filepath.Join(lettersDir, name))
		if err != nil || !bytes.Contains(b, []byte("How to close it")) {
			t.Fatalf("letter %s: %v\n%s", name, err, b)
		}
		outputs["letter "+name] = b
	}
	// Audits of each peer, every format, debug logging, default logins tried.
	for _, a := range []struct {
		name string
		args []string
	}{
		{"open Orthanc", []string{fmt.Sprintf("127.0.0.1:%d", open.DICOMPort), "--web", open.URL}},
		{"locked Orthanc", []string{fmt.Sprintf("127.0.0.1:%d", locked.DICOMPort), "--web", locked.URL}},
		{"dcmqrscp", []string{fmt.Sprintf("127.0.0.1:%d", qr.Port), "--called-ae", "DCM4CHEE"}},
		{"chatty SCP", []string{"127.0.0.1:" + chattyPort}},
	} {
		for _, format := range []string{"text", "json", "junit", "sarif"} {
			args := append([]string{"audit", "--default-creds", "-vv", "--log-format", "json", "--format", format}, a.args...)
			out, logs, code := pacswatchIn(t, dir, "", args...)
			if code > 1 {
				t.Fatalf("audit of %s exited %d: %s", a.name, code, logs)
			}
			outputs["audit "+a.name+" "+format] = []byte(out)
			outputs["audit log "+a.name+" "+format] = []byte(logs)
		}
	}
	if !bytes.Contains(outputs["audit open Orthanc json"], []byte(`"id": "query"`)) {
		t.Errorf("the audit of the open Orthanc judged no query:\n%s", outputs["audit open Orthanc json"])
	}
	// The scan really saw the archives: studies were counted.
	if !strings.Contains(string(outputs["privacy.jsonl"]), `"level":"retrieve"`) {
		t.Errorf("no archive reached level retrieve: the test would prove nothing\n%s", outputs["privacy.jsonl"])
	}
	hits := 0
	for name, content := range outputs {
		for _, s := range secrets {
			if s != "" && bytes.Contains(content, []byte(s)) {
				if hits++; hits <= 10 {
					t.Errorf("%s contains %q", name, s)
				}
			}
		}
	}
	t.Logf("JSON Lines:\n%s", outputs["privacy.jsonl"])
	t.Logf("searched %d outputs (%v) for %d secrets: %d hits", len(outputs), keys(outputs), len(secrets), hits)
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, fmt.Sprintf("%s %dB", k, len(m[k])))
	}
	return out
}
