package webprobe

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/pacswatch/pacswatch/internal/probe"
)

func TestParseSystem(t *testing.T) {
	long := strings.Repeat("9", 200)
	tests := []struct {
		name   string
		body   string
		want   system
		wantOK bool
	}{
		{"orthanc 1.10.1", `{"ApiVersion":16,"DicomAet":"ORTHANC","DicomPort":4242,"Name":"X","Version":"1.10.1"}`, system{"1.10.1", "ORTHANC"}, true},
		{"mainline", `{"DicomAet":"PACS","Version":"mainline"}`, system{"mainline", "PACS"}, true},
		{"empty aet still orthanc", `{"DicomAet":"","Version":"1.0"}`, system{"1.0", ""}, true},
		{"long version clipped", `{"DicomAet":"A","Version":"` + long + `"}`, system{long[:probe.MaxVersion], "A"}, true},
		{"long aet clipped", `{"DicomAet":"ABCDEFGHIJKLMNOPQRSTUVWXYZ","Version":"1"}`, system{"1", "ABCDEFGHIJKLMNOP"}, true},
		{"utf-8 clipped on a rune", `{"DicomAet":"A","Version":"` + strings.Repeat("é", 40) + `"}`, system{strings.Repeat("é", 32), "A"}, true},
		{"invalid utf-8 replaced", "{\"DicomAet\":\"A\",\"Version\":\"1.\xff\"}", system{"1.\uFFFD", "A"}, true},
		{"no aet", `{"Version":"1.10.1"}`, system{}, false},
		{"no version", `{"DicomAet":"ORTHANC"}`, system{}, false},
		{"empty version", `{"DicomAet":"ORTHANC","Version":""}`, system{}, false},
		{"version not a string", `{"DicomAet":"ORTHANC","Version":1.1}`, system{}, false},
		{"array", `[{"DicomAet":"ORTHANC","Version":"1"}]`, system{}, false},
		{"truncated", `{"DicomAet":"ORTHANC","Version":"1`, system{}, false},
		{"html", `<html><title>Orthanc</title></html>`, system{}, false},
		{"empty", ``, system{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseSystem([]byte(tt.body))
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("parseSystem = %+v, %v; want %+v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestParseCounts(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantStats statistics
		wantSOK   bool
		wantCount int64
		wantCOK   bool
	}{
		{"orthanc", `{"CountInstances":321,"CountPatients":7,"CountSeries":40,"CountStudies":12,"TotalDiskSize":"1"}`, statistics{12, 321}, true, 0, false},
		{"dcm4chee", `{"count":42}`, statistics{}, false, 42, true},
		{"zero", `{"count":0,"CountStudies":0,"CountInstances":0}`, statistics{}, true, 0, true},
		{"negative", `{"count":-1,"CountStudies":-1,"CountInstances":3}`, statistics{}, false, 0, false},
		{"float", `{"count":1.5,"CountStudies":1e3,"CountInstances":3}`, statistics{}, false, 0, false},
		{"overflow", `{"count":99999999999999999999}`, statistics{}, false, 0, false},
		{"string", `{"count":"42"}`, statistics{}, false, 0, false},
		{"null", `{"count":null}`, statistics{}, false, 0, false},
		{"missing instances", `{"CountStudies":3}`, statistics{}, false, 0, false},
		{"max int64", `{"count":9223372036854775807}`, statistics{}, false, 1<<63 - 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, sok := parseStatistics([]byte(tt.body))
			c, cok := parseCount([]byte(tt.body))
			if s != tt.wantStats || sok != tt.wantSOK || c != tt.wantCount || cok != tt.wantCOK {
				t.Errorf("parseStatistics = %+v, %v; parseCount = %d, %v; want %+v, %v; %d, %v",
					s, sok, c, cok, tt.wantStats, tt.wantSOK, tt.wantCount, tt.wantCOK)
			}
		})
	}
}

func TestParseAETs(t *testing.T) {
	var many strings.Builder
	many.WriteString("[")
	for i := range 10000 {
		if i > 0 {
			many.WriteString(",")
		}
		many.WriteString(`{"dicomAETitle":"AE` + strings.Repeat("X", i%10) + `"}`)
	}
	many.WriteString("]")
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"5.x", `[{"dicomAETitle":"DCM4CHEE","dicomDescription":"Hide instances rejected for Quality Reasons","dcmAcceptedUserRole":["user","admin"]},{"dicomAETitle":"IOCM_REGULAR_USE"}]`, []string{"DCM4CHEE", "IOCM_REGULAR_USE"}},
		{"early", `[{"title":"DCM4CHEE","description":"x"}]`, []string{"DCM4CHEE"}},
		{"invalid titles dropped", `[{"dicomAETitle":"TOO_LONG_AE_TITLE_X"},{"dicomAETitle":"BACK\\SLASH"},{"dicomAETitle":"   "},{"dicomAETitle":""},{"title":"CTRL\u0001"},{"title":"ÄE"},{"dicomAETitle":"OK"}]`, []string{"OK"}},
		{"capped", many.String(), []string{"AE", "AEX", "AEXX", "AEXXX", "AEXXXX", "AEXXXXX", "AEXXXXXX", "AEXXXXXXX", "AEXXXXXXXX", "AEXXXXXXXXX", "AE", "AEX", "AEXX", "AEXXX", "AEXXXX", "AEXXXXX"}},
		{"stops at garbage", `[{"title":"A"},{"title":`, []string{"A"}},
		{"wrong element type", `[{"title":"A"},42,{"title":"B"}]`, []string{"A"}},
		{"object", `{"title":"A"}`, nil},
		{"empty", ``, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseAETs([]byte(tt.body)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseAETs = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseVersion(t *testing.T) {
	tests := []struct {
		body   string
		want   string
		wantOK bool
	}{
		{`{"version":"3.3.1"}`, "3.3.1", true},
		{`{"version":""}`, "", true},
		{`{"version":3}`, "", false},
		{`{"Version":"2"}`, "2", true}, // encoding/json matches keys case-insensitively
		{`[]`, "", false},
		{`{"version":"` + strings.Repeat("v", 100) + `"}`, strings.Repeat("v", probe.MaxVersion), true},
	}
	for _, tt := range tests {
		got, ok := parseVersion([]byte(tt.body))
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseVersion(%.40s) = %q, %v; want %q, %v", tt.body, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestHTMLTitle(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"plain", "<html><head><title>Orthanc Explorer</title></head></html>", "Orthanc Explorer"},
		{"upper case, attributes, spaces", "<HTML><TITLE lang=\"en\">\n\t OHIF   Viewer \n</TiTlE>", "OHIF Viewer"},
		{"entities", "<title>Dicoogle &amp; friends &#x263A;</title>", "Dicoogle & friends ☺"},
		{"first title", "<title>one</title><title>two</title>", "one"},
		{"titlebar is not title", "<titlebar>no</titlebar>", ""},
		{"titlebar then title", "<titlebar>no</titlebar><title>yes</title>", "yes"},
		{"unterminated", "<title>never ends", ""},
		{"unterminated tag", "<title", ""},
		{"tag without close", "<title lang=x", ""},
		{"none", "just text", ""},
		{"non-ascii before", "İİİİ<title>after</title>", "after"},
		{"invalid utf-8", "\xff\xfe<title>x\xffy</title>", "x\uFFFDy"},
		{"long clipped", "<title>" + strings.Repeat("ab ", 500) + "</title>", strings.TrimSpace(strings.Repeat("ab ", 43))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := htmlTitle([]byte(tt.body)); got != tt.want {
				t.Errorf("htmlTitle = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestQIDOAnswered(t *testing.T) {
	dicomJSON := http.Header{"Content-Type": {"application/dicom+json"}}
	tests := []struct {
		name      string
		status    int
		header    http.Header
		body      string
		noContent bool
		want      bool
	}{
		{"orthanc", 200, dicomJSON, `[ { "00080005" : { "Value" : [ "ISO_IR 100" ], "vr" : "CS" }`, false, true},
		{"empty", 200, dicomJSON, "[]", false, true},
		{"spaced", 200, http.Header{"Content-Type": {"application/json; charset=utf-8"}}, "\r\n [\n\t]", false, true},
		{"no content allowed", 204, nil, "", true, true},
		{"no content not allowed", 204, nil, "", false, false},
		{"html", 200, http.Header{"Content-Type": {"text/html"}}, "[{}]", false, false},
		{"no content type", 200, nil, "[{}]", false, false},
		{"object", 200, dicomJSON, `{"error":1}`, false, false},
		{"array of numbers", 200, dicomJSON, `[1,2]`, false, false},
		{"truncated", 200, dicomJSON, `[`, false, false},
		{"unauthorized", 401, dicomJSON, `[]`, false, false},
		{"bad media type", 200, http.Header{"Content-Type": {"application/dicom+json; ;="}}, `[]`, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &response{status: tt.status, header: tt.header, body: []byte(tt.body)}
			if r.header == nil {
				r.header = http.Header{}
			}
			if got := qidoAnswered(r, tt.noContent); got != tt.want {
				t.Errorf("qidoAnswered = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAuthOf(t *testing.T) {
	tests := []struct {
		name   string
		status int
		header http.Header
		want   probe.Auth
	}{
		{"ok", 200, nil, probe.AuthNone},
		{"no content", 204, nil, probe.AuthNone},
		{"basic", 401, http.Header{"Www-Authenticate": {`Basic realm="Orthanc Secure Area"`}}, probe.AuthBasic},
		{"bearer", 401, http.Header{"Www-Authenticate": {`Bearer realm="dcm4che"`}}, probe.AuthBasic},
		{"401 without challenge", 401, nil, probe.AuthUnknown},
		{"forbidden", 403, nil, probe.AuthUnknown},
		{"redirect", 302, nil, probe.AuthUnknown},
		{"not found", 404, nil, probe.AuthUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &response{status: tt.status, header: tt.header}
			if r.header == nil {
				r.header = http.Header{}
			}
			if got := authOf(r); got != tt.want {
				t.Errorf("authOf = %v, want %v", got, tt.want)
			}
		})
	}
}
