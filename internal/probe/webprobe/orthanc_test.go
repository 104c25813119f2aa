package webprobe_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pacswatch/pacswatch/internal/peertest"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/probe/webprobe"
)

// recordingProxy forwards to upstream and records what every request asked and which
// Authorization header it carried.
type recordingProxy struct {
	mu   sync.Mutex // protects the fields below
	seen []seenRequest
	qido []string // raw queries of QIDO-RS requests
}

func (rp *recordingProxy) start(t *testing.T, upstream string) *httptest.Server {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	fwd := httputil.NewSingleHostReverseProxy(u)
	fwd.ErrorLog = discardLog()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rp.mu.Lock()
		rp.seen = append(rp.seen, seenRequest{r.Method, r.URL.Path, r.Host, r.Header.Get("Authorization")})
		if strings.HasPrefix(r.URL.Path, "/dicom-web/") {
			rp.qido = append(rp.qido, r.URL.RawQuery)
		}
		rp.mu.Unlock()
		fwd.ServeHTTP(w, r)
	}))
	srv.Config.ErrorLog = discardLog()
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func TestOrthanc(t *testing.T) {
	peertest.Require(t, "Orthanc")
	corpus := peertest.Generate(41, 12, "41")
	docker := map[string]string{"orthanc": "orthanc"}
	tests := []struct {
		name         string
		users        map[string]string
		defaultCreds bool
		wantAuth     probe.Auth
		wantData     bool     // version, counts and DICOMweb visible
		wantSent     []string // distinct Authorization headers sent
	}{
		{name: "open", wantAuth: probe.AuthNone, wantData: true},
		{name: "secured, default creds off", users: docker, wantAuth: probe.AuthBasic},
		{name: "secured with another login, default creds on", users: map[string]string{"alice": "FAKE-s3cret"}, defaultCreds: true,
			wantAuth: probe.AuthBasic, wantSent: []string{basic("orthanc", "orthanc")}},
		{name: "secured with the docker default, default creds on", users: docker, defaultCreds: true,
			wantAuth: probe.AuthDefaultCreds, wantData: true, wantSent: []string{basic("orthanc", "orthanc")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := peertest.StartOrthanc(t, peertest.OrthancConfig{DICOMweb: true, Users: tt.users})
			o.Upload(t, corpus)
			studies, instances := o.Statistics(t)
			if studies != corpus.Studies || instances != len(corpus.Instances) {
				t.Fatalf("Orthanc holds %d studies, %d instances; corpus has %d, %d", studies, instances, corpus.Studies, len(corpus.Instances))
			}
			if tt.users == nil {
				// The DICOMweb answer the probe sees does name the fake patients: the check below means something.
				resp, err := http.Get(o.URL + "/dicom-web/studies")
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
				resp.Body.Close()
				if !strings.Contains(string(body), corpus.Instances[0].PatientName) {
					t.Fatalf("Orthanc's QIDO-RS answer does not name patients: %.200s", body)
				}
			}
			var rp recordingProxy
			srv := rp.start(t, o.URL)
			tg := targetOf(t, srv.Listener.Addr())

			var rc recorder
			got := newProber(&rc, webprobe.Config{DefaultCreds: tt.defaultCreds}).Probe(context.Background(), tg)

			want := probe.Web{URL: srv.URL + "/", Product: "Orthanc", Auth: tt.wantAuth}
			if tt.wantData {
				want.Version = "1.10.1"
				want.Studies, want.Instances = int64(studies), int64(instances)
				want.DICOMweb = true
			}
			if got.Status != probe.StatusOpen || !reflect.DeepEqual(got.Web, []probe.Web{want}) {
				t.Errorf("status %v, web %+v; want open, [%+v]", got.Status, got.Web, want)
			}

			rp.mu.Lock()
			defer rp.mu.Unlock()
			var sent []string
			for _, r := range rp.seen {
				if r.auth != "" && !slices.Contains(sent, r.auth) {
					sent = append(sent, r.auth)
				}
			}
			if !reflect.DeepEqual(sent, tt.wantSent) {
				t.Errorf("Authorization headers sent: %q, want %q", sent, tt.wantSent)
			}
			for _, q := range rp.qido {
				if q != "limit=1&includefield=StudyInstanceUID" {
					t.Errorf("QIDO-RS query %q asks for more than one study's allow-listed key", q)
				}
			}

			// Orthanc's DICOMweb answer names the fake patients; the record must not.
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range corpus.Secrets() {
				if strings.Contains(string(b), s) {
					t.Errorf("record %s contains patient data %q", b, s)
				}
			}
			if strings.Contains(string(b), "FAKE") {
				t.Errorf("record %s contains a FAKE token", b)
			}
		})
	}
}
