package webprobe

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pacswatch/pacswatch/internal/probe"
)

var bodySeeds = []string{
	`{"ApiVersion":16,"DicomAet":"ORTHANC","DicomPort":4242,"HttpPort":8042,"Name":"X","Version":"1.10.1"}`,
	`{"CountInstances":321,"CountPatients":7,"CountSeries":40,"CountStudies":12,"TotalDiskSize":"1"}`,
	`{"count":42}`,
	`{"version":"3.3.1"}`,
	`[{"dicomAETitle":"DCM4CHEE","dcmAcceptedUserRole":["user"]},{"title":"IOCM_EXPIRED"}]`,
	`[ { "00100010" : { "Value" : [ { "Alphabetic" : "FAKE^NAME" } ], "vr" : "PN" } } ]`,
	"<html><head><TITLE lang=en>OHIF &amp; Viewer</TITLE><script src=\"/app-config.js\"></script></head></html>",
	"<titlebar><title",
	"\xff\xfe<title>\xff</title>",
	`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[`,
	`{"count":-1,"CountStudies":1e300,"Version":null}`,
}

// FuzzParseBody feeds any body to every parser: none may panic, and what they keep is bounded.
func FuzzParseBody(f *testing.F) {
	for _, s := range bodySeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if sys, ok := parseSystem(b); ok && (len(sys.Version) > probe.MaxVersion || len(sys.DicomAet) > probe.MaxAETitle ||
			!utf8.ValidString(sys.Version) || !utf8.ValidString(sys.DicomAet) || sys.Version == "") {
			t.Errorf("parseSystem kept %+v", sys)
		}
		if st, ok := parseStatistics(b); ok && (st.CountStudies < 0 || st.CountInstances < 0) {
			t.Errorf("parseStatistics kept %+v", st)
		}
		if n, ok := parseCount(b); ok && n < 0 {
			t.Errorf("parseCount kept %d", n)
		}
		if v, ok := parseVersion(b); ok && (len(v) > probe.MaxVersion || !utf8.ValidString(v)) {
			t.Errorf("parseVersion kept %q", v)
		}
		aets := parseAETs(b)
		if len(aets) > maxAETs {
			t.Errorf("parseAETs kept %d titles", len(aets))
		}
		for _, ae := range aets {
			if !validAE(ae) {
				t.Errorf("parseAETs kept invalid %q", ae)
			}
		}
		if title := htmlTitle(b); len(title) > maxTitle || !utf8.ValidString(title) || title != strings.TrimSpace(title) {
			t.Errorf("htmlTitle kept %q", title)
		}
		for _, ct := range []string{"application/dicom+json", "text/html"} {
			r := &response{status: http.StatusOK, header: http.Header{"Content-Type": {ct}}, body: b}
			qidoAnswered(r, true)
		}
	})
}

// FuzzParseSystem round-trips Orthanc's /system through encoding/json: whatever version and AE
// title a server states come back, clipped, and the keys tell Orthanc from anything else.
func FuzzParseSystem(f *testing.F) {
	f.Add("1.10.1", "ORTHANC", "PEERTEST", true)
	f.Add("", "ORTHANC", "", true)
	f.Add(strings.Repeat("é", 40), "\x00\xff", "x", false)
	f.Fuzz(func(t *testing.T, version, aet, name string, withAET bool) {
		m := map[string]any{"Version": version, "Name": name, "ApiVersion": 16}
		if withAET {
			m["DicomAet"] = aet
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Skip()
		}
		got, ok := parseSystem(b)
		if wantOK := withAET && version != ""; ok != wantOK {
			t.Fatalf("parseSystem(%s) ok = %v, want %v", b, ok, wantOK)
		}
		if !ok {
			return
		}
		// What the server stated, as JSON carries it (encoding/json makes strings valid UTF-8).
		var stated struct{ Version, DicomAet string }
		if err := json.Unmarshal(b, &stated); err != nil {
			t.Fatal(err)
		}
		want := system{Version: clip(stated.Version, probe.MaxVersion), DicomAet: clip(stated.DicomAet, probe.MaxAETitle)}
		if got != want {
			t.Errorf("parseSystem(%s) = %+v, want %+v", b, got, want)
		}
		if !strings.HasPrefix(stated.Version, got.Version) || len(got.Version) < min(len(stated.Version), probe.MaxVersion-utf8.UTFMax+1) {
			t.Errorf("version %q is not the longest prefix of %q within %d bytes", got.Version, stated.Version, probe.MaxVersion)
		}
	})
}
