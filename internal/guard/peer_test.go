package guard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pacswatch/pacswatch/internal/peertest"
)

// orthancPolicy admits READER from loopback for everything, with C-MOVE pinned to DEST, and
// ECHOER for C-ECHO only.
const orthancPolicy = `
peers:
  - name: reading-room
    calling_ae: [READER]
    source: 127.0.0.1
    services: [echo, find, get, move, store]
    query_levels: [PATIENT, STUDY, SERIES, IMAGE]
    universal_find: true
    move_destinations: [DEST]
  - name: echo-only
    calling_ae: [ECHOER]
    source: 127.0.0.1
    services: [echo]
  - name: looker
    calling_ae: [LOOKER]
    source: 127.0.0.1
    services: [echo, find]
    query_levels: [STUDY]
`

// TestDcmtkThroughGuardToOrthanc is the acceptance: in front of an Orthanc with its
// default configuration (READER is a known modality there, as it would be for a reading room),
// dcmtk's echoscu, findscu, getscu, movescu and storescu work through the guard from an allowed
// AE and address; from any other AE they are refused cleanly; and the fake patients that pass
// leave no trace in the audit log.
// It runs with the guard reading every PDU and with Splice (whose path the corpus's small
// instances do not take: TestSpliceForwardsByteExact covers it).
func TestDcmtkThroughGuardToOrthanc(t *testing.T) {
	peertest.Require(t, "Orthanc", "echoscu", "findscu", "getscu", "movescu", "storescu", "storescp")
	for _, splice := range []bool{false, true} {
		t.Run(fmt.Sprintf("splice=%v", splice), func(t *testing.T) { dcmtkThroughGuard(t, splice) })
	}
}

func dcmtkThroughGuard(t *testing.T, splice bool) {
	corpus := peertest.Generate(17, 4, "17")
	o := peertest.StartOrthanc(t, peertest.OrthancConfig{Modalities: map[string]string{"reader": "READER"}})
	o.Upload(t, corpus)
	dest := peertest.StartStorescp(t, "DEST")
	orthancModality(t, o, "dest", "DEST", dest.Port)
	g := startGuard(t, fmt.Sprintf("127.0.0.1:%d", o.DICOMPort), orthancPolicy, func(c *Config) { c.Splice = splice })
	host, port, _ := strings.Cut(g.Addr, ":")
	study := corpus.Instances[0].StudyUID

	run := func(args ...string) (string, error) {
		t.Helper()
		return peertest.Run(t, args...)
	}
	ok := func(name string, out string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s through the guard: %v\n%s", name, err, out)
		}
	}
	out, err := run("echoscu", "-aet", "READER", "-aec", "ORTHANC", host, port)
	ok("echoscu", out, err)
	out, err = run("findscu", "-S", "-aet", "READER", "-aec", "ORTHANC", "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID", "-k", "PatientName", host, port)
	ok("findscu", out, err)
	findRec := g.Audit.wait(t, func(r Record) bool { return r.Event == EventRequest && r.Service == "find" })
	if findRec.Results == nil || *findRec.Results != corpus.Studies || findRec.Status != "0x0000" {
		t.Errorf("findscu's audit record = %+v, want %d results", findRec, corpus.Studies)
	}
	getDir := t.TempDir()
	out, err = run("getscu", "-S", "-aet", "READER", "-aec", "ORTHANC", "-od", getDir, "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID="+study, host, port)
	ok("getscu", out, err)
	if n := countFiles(t, getDir); n == 0 {
		t.Errorf("getscu retrieved nothing through the guard:\n%s", out)
	}
	out, err = run("movescu", "-S", "-aet", "READER", "-aec", "ORTHANC", "-aem", "DEST", "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID="+study, host, port)
	ok("movescu", out, err)
	if dest.Received(t) == 0 {
		t.Errorf("movescu moved nothing to DEST through the guard:\n%s", out)
	}
	_, before := o.Statistics(t)
	extra := peertest.Generate(18, 1, "18").WriteFiles(t, t.TempDir())
	out, err = run(append([]string{"storescu", "-aet", "READER", "-aec", "ORTHANC", host, port}, extra...)...)
	ok("storescu", out, err)
	if _, after := o.Statistics(t); after != before+len(extra) {
		t.Errorf("Orthanc holds %d instances after storescu, want %d", after, before+len(extra))
	}

	// Refused cleanly: an A-ASSOCIATE-RJ, or a failure status, never a reset.
	out, err = run("echoscu", "-aet", "INTRUDER", "-aec", "ORTHANC", host, port)
	if err == nil || !strings.Contains(out, "Association Rejected") || !strings.Contains(out, "Calling AE Title Not Recognized") {
		t.Errorf("echoscu as INTRUDER: %v\n%s", err, out)
	}
	out, err = run("findscu", "-S", "-aet", "ECHOER", "-aec", "ORTHANC", "-k", "QueryRetrieveLevel=STUDY", host, port)
	if err == nil || !strings.Contains(out, "Association Rejected") {
		t.Errorf("findscu as ECHOER: %v\n%s", err, out)
	}
	out, err = run("movescu", "-S", "-aet", "READER", "-aec", "ORTHANC", "-aem", "EVIL", "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID="+study, host, port)
	if !strings.Contains(out, "MoveDestinationUnknown") {
		t.Errorf("movescu to EVIL: %v\n%s", err, out)
	}
	g.Audit.wait(t, func(r Record) bool { return r.Refusal == "move-destination-not-allowed" && r.MoveDestination == "EVIL" })
	// movescu proposes C-FIND and C-MOVE contexts: LOOKER gets C-FIND's, and C-MOVE's answered as
	// refused by the guard in the A-ASSOCIATE-AC it rewrites; dcmtk reads it and stops cleanly.
	out, err = run("movescu", "-S", "-aet", "LOOKER", "-aec", "ORTHANC", "-aem", "DEST", "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID="+study, host, port)
	if strings.Contains(out, "Association Rejected") || !strings.Contains(out, "No valid Presentation Context") {
		t.Errorf("movescu as LOOKER: %v\n%s", err, out)
	}
	g.Audit.wait(t, func(r Record) bool {
		return r.Event == EventAssociation && r.Calling == "LOOKER" && r.Result == "accepted"
	})
	for _, svc := range []string{"echo", "get", "move", "store"} {
		g.Audit.wait(t, func(r Record) bool { return r.Event == EventRequest && r.Service == svc && r.Decision == "forwarded" })
	}
	assertNoSecrets(t, g.Audit.String(), corpus.Secrets())
}

// orthancModality declares a modality through Orthanc's REST API (PUT /modalities/NAME).
func orthancModality(t *testing.T, o *peertest.Orthanc, name, aet string, port int) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"AET": aet, "Host": "127.0.0.1", "Port": port})
	req, err := http.NewRequest(http.MethodPut, o.URL+"/modalities/"+name, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("declare modality %s: %v", name, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("declare modality %s: %s", name, resp.Status)
	}
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if !e.IsDir() && filepath.Ext(e.Name()) != ".tmp" {
			n++
		}
	}
	return n
}

// assertNoSecrets fails when any fake patient value (or a component of a name) is in out.
func assertNoSecrets(t *testing.T, out string, secrets []string) {
	t.Helper()
	if len(secrets) == 0 {
		t.Fatal("no secrets to look for")
	}
	for _, s := range secrets {
		for _, part := range append(strings.Split(s, "^"), s) {
			if len(part) >= 5 && strings.Contains(out, part) {
				t.Errorf("audit output holds patient data %q", part)
			}
		}
	}
	if strings.Contains(out, "FAKE") {
		t.Errorf("audit output holds a FAKE value:\n%s", out)
	}
}
