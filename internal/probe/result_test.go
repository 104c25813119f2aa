package probe_test

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pacswatch/pacswatch/internal/probe"
)

// fullResult sets every field of the record.
func fullResult() probe.Result {
	return probe.Result{
		ScanID: "7",
		IP:     netip.MustParseAddr("127.0.0.10"),
		Port:   11112,
		Time:   time.Date(2026, 11, 4, 12, 30, 5, 250_000_000, time.UTC),
		Status: probe.StatusOpen,
		Error:  "c-get: peer aborted",
		DICOM: &probe.DICOM{
			Association: probe.AssociationRejected,
			Reject:      &probe.Reject{Result: 1, Source: 1, Reason: 7, Meaning: "called-AE-title-not-recognized"},
			CalledAE:    "ANY-SCP",
			CallingAE:   "PACSWATCH",
			AECheck:     probe.AECheckCalled,

			ImplementationClassUID: "1.2.276.0.7230010.3.0.3.6.7",
			ImplementationVersion:  "OFFIS_DCMTK_367",
			Product:                "Orthanc",
			MaxPDU:                 16384,
			TLS:                    true,
			TLSCert: &probe.TLSCert{
				Subject:    "CN=pacs.example",
				Issuer:     "CN=pacs.example",
				NotAfter:   time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
				SelfSigned: true,
				Version:    "TLS 1.3",
			},
			Services: probe.Services{Echo: true, FindStudy: true, FindPatient: true, Get: true, Move: true, Store: true},
			Honeypot: true,
		},
		Exposure: &probe.Exposure{
			Level:           probe.LevelRetrieve,
			Studies:         1004,
			StudiesExact:    true,
			Instances:       70312,
			InstancesSource: probe.InstancesSourceStudyAttr,
			Modalities:      map[string]int64{"CT": 600, "MR": 404},
			Retrieve:        probe.RetrieveVerified,
		},
		Web: []probe.Web{{
			URL:       "http://127.0.0.10:8042/",
			Product:   "Orthanc",
			Version:   "1.10.1",
			Auth:      probe.AuthDefaultCreds,
			Studies:   1004,
			Instances: 70312,
			DICOMweb:  true,
		}},
	}
}

// goldenFull pins the SPEC's result record; changing it breaks every
// consumer of JSON Lines output.
const goldenFull = `{
  "scan_id": "7",
  "ip": "127.0.0.10",
  "port": 11112,
  "time": "2026-11-04T12:30:05.25Z",
  "status": "open",
  "error": "c-get: peer aborted",
  "dicom": {
    "association": "rejected",
    "reject": {
      "result": 1,
      "source": 1,
      "reason": 7,
      "meaning": "called-AE-title-not-recognized"
    },
    "called_ae": "ANY-SCP",
    "calling_ae": "PACSWATCH",
    "ae_check": "called",
    "implementation_class_uid": "1.2.276.0.7230010.3.0.3.6.7",
    "implementation_version": "OFFIS_DCMTK_367",
    "product": "Orthanc",
    "max_pdu": 16384,
    "tls": true,
    "tls_cert": {
      "subject": "CN=pacs.example",
      "issuer": "CN=pacs.example",
      "not_after": "2030-01-02T03:04:05Z",
      "self_signed": true,
      "version": "TLS 1.3"
    },
    "services": {
      "echo": true,
      "find_study": true,
      "find_patient": true,
      "get": true,
      "move": true,
      "store": true
    },
    "honeypot": true
  },
  "exposure": {
    "level": "retrieve",
    "studies": 1004,
    "studies_exact": true,
    "instances": 70312,
    "instances_source": "study-attr",
    "modalities": {
      "CT": 600,
      "MR": 404
    },
    "retrieve": "verified"
  },
  "web": [
    {
      "url": "http://127.0.0.10:8042/",
      "product": "Orthanc",
      "version": "1.10.1",
      "auth": "default-creds",
      "studies": 1004,
      "instances": 70312,
      "dicomweb": true
    }
  ]
}`

func TestResultJSON(t *testing.T) {
	tests := []struct {
		name string
		r    probe.Result
		want string
	}{
		{"full", fullResult(), goldenFull},
		{
			name: "closed port",
			r: probe.Result{
				ScanID: "7", IP: netip.MustParseAddr("::1"), Port: 104,
				Time: time.Date(2026, 11, 4, 12, 0, 0, 0, time.UTC), Status: probe.StatusClosed,
			},
			want: `{"scan_id":"7","ip":"::1","port":104,"time":"2026-11-04T12:00:00Z","status":"closed"}`,
		},
		{
			name: "not dicom",
			r: probe.Result{
				ScanID: "7", IP: netip.MustParseAddr("127.0.0.1"), Port: 4242,
				Time: time.Date(2026, 11, 4, 12, 0, 0, 0, time.UTC), Status: probe.StatusOpen,
				DICOM:    &probe.DICOM{},
				Exposure: &probe.Exposure{Level: probe.LevelNotDICOM},
			},
			want: `{"scan_id":"7","ip":"127.0.0.1","port":4242,"time":"2026-11-04T12:00:00Z","status":"open",` +
				`"dicom":{"association":"none","called_ae":"","calling_ae":"","ae_check":"unknown",` +
				`"implementation_class_uid":"","implementation_version":"","product":"","max_pdu":0,"tls":false,` +
				`"services":{"echo":false,"find_study":false,"find_patient":false,"get":false,"move":false,"store":false},` +
				`"honeypot":false},` +
				`"exposure":{"level":"not-dicom","studies":0,"studies_exact":false,"instances":0,` +
				`"instances_source":"none","retrieve":"untested"}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []byte
			var err error
			if strings.HasPrefix(tt.want, "{\n") {
				got, err = json.MarshalIndent(tt.r, "", "  ")
			} else {
				got, err = json.Marshal(tt.r)
			}
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("Marshal:\n got %s\nwant %s", got, tt.want)
			}

			var back probe.Result
			if err := json.Unmarshal([]byte(tt.want), &back); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if !reflect.DeepEqual(back, tt.r) {
				t.Errorf("Unmarshal(Marshal(r)) = %+v, want %+v", back, tt.r)
			}
		})
	}
}

func TestStatusZeroDoesNotEncode(t *testing.T) {
	r := fullResult()
	r.Status = 0
	if got, err := json.Marshal(r); err == nil {
		t.Errorf("Marshal with zero Status = %s, want error", got)
	}
}

// textEnum is what every enum in the record implements.
type textEnum interface {
	fmt.Stringer
	encoding.TextMarshaler
}

func TestEnumText(t *testing.T) {
	tests := []struct {
		v    textEnum
		want string // "" means MarshalText must fail
		into func() encoding.TextUnmarshaler
	}{
		{probe.StatusOpen, "open", func() encoding.TextUnmarshaler { return new(probe.Status) }},
		{probe.StatusClosed, "closed", func() encoding.TextUnmarshaler { return new(probe.Status) }},
		{probe.StatusFiltered, "filtered", func() encoding.TextUnmarshaler { return new(probe.Status) }},
		{probe.StatusError, "error", func() encoding.TextUnmarshaler { return new(probe.Status) }},
		{probe.Status(0), "", nil},
		{probe.Status(5), "", nil},
		{probe.AssociationNone, "none", func() encoding.TextUnmarshaler { return new(probe.Association) }},
		{probe.AssociationAccepted, "accepted", func() encoding.TextUnmarshaler { return new(probe.Association) }},
		{probe.AssociationRejected, "rejected", func() encoding.TextUnmarshaler { return new(probe.Association) }},
		{probe.AssociationAborted, "aborted", func() encoding.TextUnmarshaler { return new(probe.Association) }},
		{probe.Association(4), "", nil},
		{probe.AECheckUnknown, "unknown", func() encoding.TextUnmarshaler { return new(probe.AECheck) }},
		{probe.AECheckNone, "none", func() encoding.TextUnmarshaler { return new(probe.AECheck) }},
		{probe.AECheckCalled, "called", func() encoding.TextUnmarshaler { return new(probe.AECheck) }},
		{probe.AECheckCalling, "calling", func() encoding.TextUnmarshaler { return new(probe.AECheck) }},
		{probe.AECheck(4), "", nil},
		{probe.LevelClosed, "closed", func() encoding.TextUnmarshaler { return new(probe.Level) }},
		{probe.LevelNotDICOM, "not-dicom", func() encoding.TextUnmarshaler { return new(probe.Level) }},
		{probe.LevelProtected, "protected", func() encoding.TextUnmarshaler { return new(probe.Level) }},
		{probe.LevelEcho, "echo", func() encoding.TextUnmarshaler { return new(probe.Level) }},
		{probe.LevelQuery, "query", func() encoding.TextUnmarshaler { return new(probe.Level) }},
		{probe.LevelRetrieve, "retrieve", func() encoding.TextUnmarshaler { return new(probe.Level) }},
		{probe.Level(6), "", nil},
		{probe.InstancesSourceNone, "none", func() encoding.TextUnmarshaler { return new(probe.InstancesSource) }},
		{probe.InstancesSourceStudyAttr, "study-attr", func() encoding.TextUnmarshaler { return new(probe.InstancesSource) }},
		{probe.InstancesSourceSeries, "series", func() encoding.TextUnmarshaler { return new(probe.InstancesSource) }},
		{probe.InstancesSourceImage, "image", func() encoding.TextUnmarshaler { return new(probe.InstancesSource) }},
		{probe.InstancesSourceEstimate, "estimate", func() encoding.TextUnmarshaler { return new(probe.InstancesSource) }},
		{probe.InstancesSource(5), "", nil},
		{probe.RetrieveUntested, "untested", func() encoding.TextUnmarshaler { return new(probe.Retrieve) }},
		{probe.RetrieveRefused, "refused", func() encoding.TextUnmarshaler { return new(probe.Retrieve) }},
		{probe.RetrieveAccepted, "accepted", func() encoding.TextUnmarshaler { return new(probe.Retrieve) }},
		{probe.RetrieveVerified, "verified", func() encoding.TextUnmarshaler { return new(probe.Retrieve) }},
		{probe.Retrieve(4), "", nil},
		{probe.AuthUnknown, "unknown", func() encoding.TextUnmarshaler { return new(probe.Auth) }},
		{probe.AuthNone, "none", func() encoding.TextUnmarshaler { return new(probe.Auth) }},
		{probe.AuthBasic, "basic", func() encoding.TextUnmarshaler { return new(probe.Auth) }},
		{probe.AuthDefaultCreds, "default-creds", func() encoding.TextUnmarshaler { return new(probe.Auth) }},
		{probe.Auth(4), "", nil},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%T(%s)", tt.v, tt.v)
		t.Run(name, func(t *testing.T) {
			got, err := tt.v.MarshalText()
			if tt.want == "" {
				if err == nil {
					t.Fatalf("MarshalText = %q, want error", got)
				}
				if s := tt.v.String(); !strings.Contains(s, "(") {
					t.Errorf("String of invalid value = %q, want Type(n)", s)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("MarshalText = %q, %v, want %q", got, err, tt.want)
			}
			if s := tt.v.String(); s != tt.want {
				t.Errorf("String = %q, want %q", s, tt.want)
			}
			u := tt.into()
			if err := u.UnmarshalText(got); err != nil {
				t.Fatalf("UnmarshalText(%q): %v", got, err)
			}
			if back := reflect.ValueOf(u).Elem().Interface(); back != tt.v {
				t.Errorf("UnmarshalText(%q) = %v, want %v", got, back, tt.v)
			}
			if err := tt.into().UnmarshalText([]byte(strings.ToUpper(tt.want))); err == nil {
				t.Errorf("UnmarshalText(%q) = nil error, want error (names are case-sensitive)", strings.ToUpper(tt.want))
			}
		})
	}
}

func TestUnmarshalUnknownEnum(t *testing.T) {
	tests := []string{
		`{"status":"half-open"}`,
		`{"status":""}`,
		`{"dicom":{"association":"maybe"}}`,
		`{"dicom":{"ae_check":"both"}}`,
		`{"exposure":{"level":"everything"}}`,
		`{"exposure":{"instances_source":"guess"}}`,
		`{"exposure":{"retrieve":"yes"}}`,
		`{"web":[{"auth":"digest"}]}`,
		`{"status":"` + strings.Repeat("x", 10000) + `"}`,
	}
	for _, in := range tests {
		var r probe.Result
		err := json.Unmarshal([]byte(in), &r)
		if err == nil {
			t.Errorf("Unmarshal(%.40s) = nil error, want error", in)
			continue
		}
		if len(err.Error()) > 200 {
			t.Errorf("Unmarshal(%.40s) error is %d bytes, want the input cut short", in, len(err.Error()))
		}
	}
}

func TestLevelOrder(t *testing.T) {
	order := []probe.Level{
		probe.LevelClosed, probe.LevelNotDICOM, probe.LevelProtected,
		probe.LevelEcho, probe.LevelQuery, probe.LevelRetrieve,
	}
	for i := 1; i < len(order); i++ {
		if !(order[i-1] < order[i]) {
			t.Errorf("%v < %v is false, want true", order[i-1], order[i])
		}
	}
}

func TestResultLevel(t *testing.T) {
	tests := []struct {
		name string
		r    probe.Result
		want probe.Level
	}{
		{"no exposure", probe.Result{Status: probe.StatusClosed}, probe.LevelClosed},
		{"query", probe.Result{Status: probe.StatusOpen, Exposure: &probe.Exposure{Level: probe.LevelQuery}}, probe.LevelQuery},
	}
	for _, tt := range tests {
		if got := tt.r.Level(); got != tt.want {
			t.Errorf("%s: Level() = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestSanitizeStrings(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"clean", "ORTHANC", "ORTHANC"},
		{"padded", "  ORTHANC ", "ORTHANC"},
		{"controls", "OR\x00TH\x1bAN\x7fC", "ORTHANC"},
		{"newline keeps words apart", "ORTH\nANC", "ORTH ANC"},
		{"C1 control", "A\u0085B\u0090C", "A BC"},
		{"bidi override", "AB\u202eCD", "ABCD"},
		{"zero width", "A\u200bB\ufeffC", "ABC"},
		{"line separator", "A\u2028B", "A B"},
		{"invalid UTF-8", "A\xffB", "A\ufffdB"},
		{"capped", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "ABCDEFGHIJKLMNOP"},
		{"capped then trimmed", "ABCDEFGHIJKLMNO QRS", "ABCDEFGHIJKLMNO"},
		{"cut on a rune boundary", "ABCDEFGHIJKLMNOé", "ABCDEFGHIJKLMNO"},
		{"multibyte fits", "ÄÖÜßÄÖÜß", "ÄÖÜßÄÖÜß"},
		{"only controls", "\x00\x01\x02", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := probe.Result{DICOM: &probe.DICOM{CalledAE: tt.in}}
			r.Sanitize()
			if got := r.DICOM.CalledAE; got != tt.want {
				t.Errorf("Sanitize(CalledAE %q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSanitizeCaps(t *testing.T) {
	long := strings.Repeat("x", 2000)
	r := probe.Result{
		Error: long,
		DICOM: &probe.DICOM{
			Reject:                 &probe.Reject{Meaning: long},
			CalledAE:               long,
			CallingAE:              long,
			ImplementationClassUID: long,
			ImplementationVersion:  long,
			Product:                long,
			TLSCert:                &probe.TLSCert{Subject: long, Issuer: long, Version: long},
		},
		Exposure: &probe.Exposure{Studies: -5, Instances: -1},
		Web:      []probe.Web{{URL: long, Product: long, Version: long, Studies: -1, Instances: -2}},
	}
	r.Sanitize()
	tests := []struct {
		field string
		got   string
		want  int
	}{
		{"error", r.Error, probe.MaxError},
		{"reject.meaning", r.DICOM.Reject.Meaning, probe.MaxError},
		{"called_ae", r.DICOM.CalledAE, 16},
		{"calling_ae", r.DICOM.CallingAE, 16},
		{"implementation_class_uid", r.DICOM.ImplementationClassUID, 64},
		{"implementation_version", r.DICOM.ImplementationVersion, 64},
		{"product", r.DICOM.Product, 64},
		{"tls_cert.subject", r.DICOM.TLSCert.Subject, probe.MaxError},
		{"tls_cert.issuer", r.DICOM.TLSCert.Issuer, probe.MaxError},
		{"tls_cert.version", r.DICOM.TLSCert.Version, probe.MaxVersion},
		{"web.url", r.Web[0].URL, 512},
		{"web.product", r.Web[0].Product, 64},
		{"web.version", r.Web[0].Version, 64},
	}
	for _, tt := range tests {
		if len(tt.got) != tt.want {
			t.Errorf("%s: len = %d, want %d", tt.field, len(tt.got), tt.want)
		}
	}
	counts := []struct {
		field     string
		got, want int64
	}{
		{"exposure.studies", r.Exposure.Studies, 0},
		{"exposure.instances", r.Exposure.Instances, 0},
		{"web.studies", r.Web[0].Studies, 0},
		{"web.instances", r.Web[0].Instances, 0},
	}
	for _, c := range counts {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.field, c.got, c.want)
		}
	}
}

func TestSanitizeModalities(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]int64
		want map[string]int64
	}{
		{"nil", nil, nil},
		{"clean", map[string]int64{"CT": 3, "MR": 1}, map[string]int64{"CT": 3, "MR": 1}},
		{"merged after cleaning", map[string]int64{"CT": 3, " CT": 2, "C\x00T": 1}, map[string]int64{"CT": 6}},
		{"non-positive dropped", map[string]int64{"CT": 0, "MR": -4, "US": 1}, map[string]int64{"US": 1}},
		{"long key: other", map[string]int64{strings.Repeat("M", 40): 1}, map[string]int64{probe.ModalityOther: 1}},
		{"not a defined term: other", map[string]int64{"ZZDOEJOHN": 2, "ct": 1, "OTHER": 4, "": 1, "CT": 1}, map[string]int64{probe.ModalityOther: 8, "CT": 1}},
		{"retired term kept", map[string]int64{"CS": 1, "RTIMAGE": 2}, map[string]int64{"CS": 1, "RTIMAGE": 2}},
		{"saturates", map[string]int64{"CT": 1 << 62, " CT": 1 << 62, "CT ": 1 << 62}, map[string]int64{"CT": 1<<63 - 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := probe.Result{Exposure: &probe.Exposure{Modalities: tt.in}}
			r.Sanitize()
			if got := r.Exposure.Modalities; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Modalities = %v, want %v", got, tt.want)
			}
		})
	}

	// A hostile server inventing modalities: they count as OTHER.
	in := make(map[string]int64)
	for i := range 1000 {
		in[fmt.Sprintf("M%03d", i)] = 1
	}
	r := probe.Result{Exposure: &probe.Exposure{Modalities: in}}
	r.Sanitize()
	if got, want := r.Exposure.Modalities, map[string]int64{probe.ModalityOther: 1000}; !reflect.DeepEqual(got, want) {
		t.Errorf("Modalities = %v, want %v", got, want)
	}

	// More terms than MaxModalities: the largest counts are kept.
	terms := strings.Fields(`ANN AR ASMT AU BDUS BI BMD CFM CR CT CTPROTOCOL DG DMS DOC DX ECG EEG EMG EOG EPS ES FID
		GM HC HD IO IOL IVOCT IVUS KER KO LEN LS M3D MG MR NM OAM OCT OP OPM OPT OPTBSV OPTENF OPV OSS OT PA
		PLAN POS PR PT PX REG RESP RF RG RTDOSE RTIMAGE RTINTENT RTPLAN RTRAD RTRECORD RTSEGANN RTSTRUCT RWV SEG
		SM SMR SR SRF STAIN TEXTUREMAP TG US VA XA XAPROTOCOL XC`)
	in = make(map[string]int64)
	for i, m := range terms {
		in[m] = int64(i + 1)
	}
	r = probe.Result{Exposure: &probe.Exposure{Modalities: in}}
	r.Sanitize()
	got := r.Exposure.Modalities
	if len(got) != probe.MaxModalities {
		t.Fatalf("len(Modalities) = %d, want %d", len(got), probe.MaxModalities)
	}
	for i := len(terms) - probe.MaxModalities; i < len(terms); i++ {
		if k := terms[i]; got[k] != int64(i+1) {
			t.Errorf("Modalities[%s] = %d, want %d", k, got[k], i+1)
		}
	}
}

func TestModality(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"CT", "CT"},
		{" MR ", "MR"},
		{"RTIMAGE", "RTIMAGE"},
		{"XAPROTOCOL", "XAPROTOCOL"},
		{"DS", "DS"}, // retired
		{"OTHER", "OTHER"},
		{"ct", "OTHER"},
		{"ZZDOEJOHN", "OTHER"}, // a name where a modality belongs: letters only, and no term
		{"DOE", "OTHER"},
		{"FAKE^PATIENT", "OTHER"},
		{"ABCDEFGHIJKLMNOPQ", "OTHER"},
		{"ÄRZT", "OTHER"},
		{"", ""},
	} {
		if got := probe.Modality(tc.in); got != tc.want {
			t.Errorf("Modality(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSanitizeLeavesOriginal(t *testing.T) {
	orig := fullResult()
	orig.DICOM.CalledAE = "\x00" + strings.Repeat("A", 30)
	orig.DICOM.Reject.Meaning = "x\x00y"
	orig.DICOM.TLSCert.Subject = "CN=\u202e"
	orig.Exposure.Modalities["\x00CT"] = 1
	orig.Web[0].URL = "http://\x00"
	want, err := json.Marshal(orig)
	if err != nil {
		t.Fatal(err)
	}

	cp := orig
	cp.Sanitize()
	if got, _ := json.Marshal(orig); !bytes.Equal(got, want) {
		t.Errorf("Sanitize of a copy changed the original:\n got %s\nwant %s", got, want)
	}
	if cp.DICOM.CalledAE != strings.Repeat("A", 16) {
		t.Errorf("copy CalledAE = %q, want it sanitized", cp.DICOM.CalledAE)
	}
}

func TestSanitizeIdempotent(t *testing.T) {
	r := fullResult()
	r.Error = " \tboom\x00 \u2028 "
	r.DICOM.CalledAE = "ABCDEFGHIJKLMNO\u00e9"
	r.Sanitize()
	once, _ := json.Marshal(r)
	r.Sanitize()
	twice, _ := json.Marshal(r)
	if !bytes.Equal(once, twice) {
		t.Errorf("Sanitize twice differs:\n once %s\ntwice %s", once, twice)
	}
}

// checkClean reports what is wrong with a sanitized string, or "".
func checkClean(s string, max int) string {
	switch {
	case len(s) > max:
		return fmt.Sprintf("%d bytes, cap %d", len(s), max)
	case !utf8.ValidString(s):
		return "invalid UTF-8"
	case strings.TrimSpace(s) != s:
		return "surrounding space"
	case strings.ContainsFunc(s, func(r rune) bool { return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) }):
		return "control character"
	}
	return ""
}

func FuzzSanitize(f *testing.F) {
	f.Add("ORTHANC", "1.2.3", "http://127.0.0.1/", "CT", int64(5))
	f.Add(" \x00A\u202eB\xff ", "\u2028", strings.Repeat("é", 300), "C\x00T", int64(-1))
	f.Add("ABCDEFGHIJKLMNO\u00e9", "  ", "\n", "", int64(1<<62))
	f.Fuzz(func(t *testing.T, ae, version, url, modality string, n int64) {
		r := fullResult()
		r.Error = url
		r.DICOM.CalledAE, r.DICOM.CallingAE = ae, version
		r.DICOM.ImplementationVersion, r.DICOM.Product = version, ae
		r.DICOM.Reject.Meaning = url
		r.DICOM.TLSCert.Subject = url
		r.Exposure.Studies = n
		r.Exposure.Modalities = map[string]int64{modality: n, ae: n, "CT": n}
		r.Web[0].URL, r.Web[0].Version = url, version

		r.Sanitize()
		for _, c := range []struct {
			s   string
			max int
		}{
			{r.Error, probe.MaxError}, {r.DICOM.CalledAE, 16}, {r.DICOM.CallingAE, 16},
			{r.DICOM.ImplementationVersion, 64}, {r.DICOM.Product, 64}, {r.DICOM.Reject.Meaning, probe.MaxError},
			{r.DICOM.TLSCert.Subject, probe.MaxError}, {r.Web[0].URL, 512}, {r.Web[0].Version, 64},
		} {
			if why := checkClean(c.s, c.max); why != "" {
				t.Fatalf("sanitized %q: %s", c.s, why)
			}
		}
		for k, v := range r.Exposure.Modalities {
			if why := checkClean(k, probe.MaxModality); why != "" || v <= 0 {
				t.Fatalf("modality %q=%d: %s", k, v, why)
			}
		}
		if r.Exposure.Studies < 0 {
			t.Fatalf("studies = %d", r.Exposure.Studies)
		}

		once, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		r.Sanitize()
		twice, _ := json.Marshal(r)
		if !bytes.Equal(once, twice) {
			t.Fatalf("not idempotent:\n once %s\ntwice %s", once, twice)
		}
		var back probe.Result
		if err := json.Unmarshal(once, &back); err != nil {
			t.Fatalf("Unmarshal(%s): %v", once, err)
		}
		if again, _ := json.Marshal(back); !bytes.Equal(again, once) {
			t.Fatalf("round trip:\n got %s\nwant %s", again, once)
		}
	})
}

// FuzzResultJSON reads records as diff and report would read JSON Lines:
// any input either fails cleanly or re-encodes to a fixed point.
func FuzzResultJSON(f *testing.F) {
	full, _ := json.Marshal(fullResult())
	f.Add(full)
	f.Add([]byte(goldenFull))
	f.Add([]byte(`{"scan_id":"7","ip":"::1","port":104,"time":"2026-11-04T12:00:00Z","status":"closed"}`))
	f.Add([]byte(`{"ip":"fe80::1%eth0","status":"error","exposure":{"modalities":{"":-1}},"web":[{}]}`))
	f.Add([]byte(`{"status":"open","dicom":{"reject":null,"max_pdu":4294967295}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var r probe.Result
		if err := json.Unmarshal(in, &r); err != nil {
			return
		}
		if r.Status == 0 {
			r.Status = probe.StatusError // absent in the input; zero does not encode
		}
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("Marshal of decoded %q: %v", in, err)
		}
		var back probe.Result
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("Unmarshal(%s): %v", out, err)
		}
		again, err := json.Marshal(back)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("re-encoding differs (%v):\n got %s\nwant %s", err, again, out)
		}
		back.Sanitize()
		if _, err := json.Marshal(back); err != nil {
			t.Fatalf("Marshal after Sanitize: %v", err)
		}
	})
}

func TestAddCounts(t *testing.T) {
	for _, tc := range []struct{ a, b, want int64 }{
		{0, 0, 0},
		{2, 3, 5},
		{math.MaxInt64, 1, math.MaxInt64},
		{math.MaxInt64 - 1, 1, math.MaxInt64},
		{math.MaxInt64 / 2, math.MaxInt64, math.MaxInt64},
	} {
		if got := probe.AddCounts(tc.a, tc.b); got != tc.want {
			t.Errorf("AddCounts(%d, %d) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
