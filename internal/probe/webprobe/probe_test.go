package webprobe_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/probe/webprobe"
	"github.com/pacswatch/pacswatch/internal/targets"
)

// recorder is the probe's Dial in tests: it refuses any address that is not loopback and counts
// the connections made and the bytes read from them.
type recorder struct {
	dials atomic.Int64
	read  atomic.Int64
}

func (rc *recorder) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().IsLoopback() {
		return nil, fmt.Errorf("test: refusing to dial %q: not loopback", addr)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	rc.dials.Add(1)
	return &countConn{Conn: c, n: &rc.read}, nil
}

type countConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// mimic is an HTTP server's behaviour by exact path; other paths answer 404. It records every
// request's method, path and Authorization header.
type mimic struct {
	routes map[string]http.HandlerFunc

	mu   sync.Mutex // protects the fields below
	seen []seenRequest
}

type seenRequest struct {
	method, path, host, auth string
}

func (m *mimic) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	m.seen = append(m.seen, seenRequest{r.Method, r.URL.Path, r.Host, r.Header.Get("Authorization")})
	m.mu.Unlock()
	if h, ok := m.routes[r.URL.Path]; ok {
		h(w, r)
		return
	}
	http.NotFound(w, r)
}

func (m *mimic) requests() []seenRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]seenRequest(nil), m.seen...)
}

func serve(t *testing.T, h http.Handler, useTLS bool) (*httptest.Server, targets.Target) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = discardLog()
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, targetOf(t, srv.Listener.Addr())
}

func targetOf(t *testing.T, a net.Addr) targets.Target {
	t.Helper()
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	return targets.Target{Addr: ap.Addr(), Port: ap.Port()}
}

func text(contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentType)
		io.WriteString(w, body)
	}
}

func status(code int, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
	}
}

const (
	htmlType = "text/html; charset=utf-8"
	jsonType = "application/json"
	qidoBody = `[{"00100010":{"vr":"PN","Value":[{"Alphabetic":"FAKE^LEAK"}]},"0020000D":{"vr":"UI","Value":["2.25.1"]}}]`
)

func newProber(rc *recorder, cfg webprobe.Config) *webprobe.Prober {
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	cfg.Dial = rc.dial
	return webprobe.New(cfg)
}

func TestProbeProducts(t *testing.T) {
	orthancSystem := `{"ApiVersion":16,"DicomAet":"ORTHANC","DicomPort":4242,"Name":"Hospital X","Version":"1.12.3"}`
	orthancStats := `{"CountInstances":321,"CountPatients":7,"CountSeries":40,"CountStudies":12,"TotalDiskSize":"1"}`
	arcUI := `<!doctype html><html><head><meta charset="utf-8"><title>dcm4chee-arc-ui</title></head><body><app-root></app-root></body></html>`
	tests := []struct {
		name   string
		tls    bool
		routes map[string]http.HandlerFunc
		want   func(base string) []probe.Web
	}{
		{
			name: "orthanc open with dicomweb",
			routes: map[string]http.HandlerFunc{
				"/":                  status(http.StatusMovedPermanently, "Location", "app/explorer.html"),
				"/app/explorer.html": text(htmlType, "<html><head><title>Orthanc Explorer</title></head></html>"),
				"/system":            text(jsonType, orthancSystem),
				"/statistics":        text(jsonType, orthancStats),
				"/dicom-web/studies": text("application/dicom+json", qidoBody),
			},
			want: func(base string) []probe.Web {
				return []probe.Web{{URL: base + "/", Product: "Orthanc", Version: "1.12.3", Auth: probe.AuthNone, Studies: 12, Instances: 321, DICOMweb: true}}
			},
		},
		{
			name: "orthanc over https without dicomweb",
			tls:  true,
			routes: map[string]http.HandlerFunc{
				"/system":     text(jsonType, orthancSystem),
				"/statistics": text(jsonType, orthancStats),
			},
			want: func(base string) []probe.Web {
				return []probe.Web{{URL: base + "/", Product: "Orthanc", Version: "1.12.3", Auth: probe.AuthNone, Studies: 12, Instances: 321}}
			},
		},
		{
			name: "dcm4chee-arc open",
			routes: map[string]http.HandlerFunc{
				"/":                  text(htmlType, "<html><head><title>Welcome to WildFly</title></head></html>"),
				"/dcm4chee-arc/ui2/": text(htmlType, arcUI),
				"/dcm4chee-arc/aets": text(jsonType, `[{"dicomAETitle":"IOCM_EXPIRED","dicomDescription":"x"},{"dicomAETitle":"DCM4CHEE","dcmAcceptedUserRole":["user"]}]`),
				"/dcm4chee-arc/aets/DCM4CHEE/rs/studies/count":   text(jsonType, `{"count":42}`),
				"/dcm4chee-arc/aets/DCM4CHEE/rs/instances/count": text(jsonType, `{"count":4200}`),
				"/dcm4chee-arc/aets/DCM4CHEE/rs/studies":         text("application/dicom+json", qidoBody),
			},
			want: func(base string) []probe.Web {
				return []probe.Web{{URL: base + "/dcm4chee-arc/ui2/", Product: "dcm4chee-arc-light", Auth: probe.AuthNone, Studies: 42, Instances: 4200, DICOMweb: true}}
			},
		},
		{
			name: "dcm4chee-arc early version, empty archive",
			routes: map[string]http.HandlerFunc{
				"/dcm4chee-arc/ui2/":                         text(htmlType, arcUI),
				"/dcm4chee-arc/aets":                         text(jsonType, `[{"title":"ARCH"}]`),
				"/dcm4chee-arc/aets/ARCH/rs/studies/count":   text(jsonType, `{"count":0}`),
				"/dcm4chee-arc/aets/ARCH/rs/instances/count": text(jsonType, `{"count":0}`),
				"/dcm4chee-arc/aets/ARCH/rs/studies":         status(http.StatusNoContent),
			},
			want: func(base string) []probe.Web {
				return []probe.Web{{URL: base + "/dcm4chee-arc/ui2/", Product: "dcm4chee-arc-light", Auth: probe.AuthNone, DICOMweb: true}}
			},
		},
		{
			name: "dcm4chee-arc secured with keycloak",
			routes: map[string]http.HandlerFunc{
				"/dcm4chee-arc/ui2/": text(htmlType, arcUI),
				"/dcm4chee-arc/aets": status(http.StatusUnauthorized, "WWW-Authenticate", `Bearer realm="dcm4che"`),
			},
			want: func(base string) []probe.Web {
				return []probe.Web{{URL: base + "/dcm4chee-arc/ui2/", Product: "dcm4chee-arc-light", Auth: probe.AuthBasic}}
			},
		},
		{
			name: "ohif by title",
			routes: map[string]http.HandlerFunc{
				"/": text(htmlType, "<!DOCTYPE html><html><head>\n<TITLE lang=en>\n  OHIF   Viewer\n</TITLE></head></html>"),
			},
			want: func(base string) []probe.Web {
				return []probe.Web{{URL: base + "/", Product: "OHIF", Auth: probe.AuthNone}}
			},
		},
		{
			name: "ohif by app-config.js, with dicomweb behind the same proxy",
			routes: map[string]http.HandlerFunc{
				"/":                  text(htmlType, `<html><head><title>Radiology</title><script src="/app-config.js"></script></head></html>`),
				"/app-config.js":     text("application/javascript", `window.config = { routerBasename: '/', dataSources: [] };`),
				"/dicom-web/studies": text("application/dicom+json; charset=utf-8", "\n [ ]"),
			},
			want: func(base string) []probe.Web {
				return []probe.Web{
					{URL: base + "/", Product: "OHIF", Auth: probe.AuthNone},
					{URL: base + "/dicom-web/", Auth: probe.AuthNone, DICOMweb: true},
				}
			},
		},
		{
			name: "dicoogle",
			routes: map[string]http.HandlerFunc{
				"/":            text(htmlType, "<html><head><title>Dicoogle</title></head></html>"),
				"/ext/version": text(jsonType, `{"version":"3.3.1"}`),
			},
			want: func(base string) []probe.Web {
				return []probe.Web{{URL: base + "/", Product: "Dicoogle", Version: "3.3.1", Auth: probe.AuthUnknown}}
			},
		},
		{
			name: "plain web server",
			routes: map[string]http.HandlerFunc{
				"/": text(htmlType, "<html><head><title>Welcome to nginx!</title></head></html>"),
				// Not DICOMweb: JSON, but not an array of objects.
				"/dicom-web/studies": text(jsonType, `{"error":"not found"}`),
			},
			want: func(base string) []probe.Web {
				return []probe.Web{{URL: base + "/", Auth: probe.AuthNone}}
			},
		},
		{
			name: "basic auth of unknown product",
			routes: map[string]http.HandlerFunc{
				"/": status(http.StatusUnauthorized, "WWW-Authenticate", `Basic realm="Restricted"`),
			},
			want: func(base string) []probe.Web {
				return []probe.Web{{URL: base + "/", Auth: probe.AuthBasic}}
			},
		},
		{
			name: "title-like tags and lies are not products",
			routes: map[string]http.HandlerFunc{
				"/":                  text(htmlType, "<titlebar>OHIF Dicoogle</titlebar><title>x</title>"),
				"/system":            text(jsonType, `{"Version":"1.0"}`),                       // no DicomAet: not Orthanc
				"/dicom-web/studies": text(htmlType, `[{"0020000D":{}}]`),                       // not JSON
				"/dcm4chee-arc/ui2/": text(htmlType, "<title>Some other app</title>"),           // not dcm4chee-arc
				"/dcm4chee-web3/":    text(htmlType, `<form action="j_security_check"></form>`), // a servlet login, not dcm4chee
			},
			want: func(base string) []probe.Web {
				return []probe.Web{{URL: base + "/", Auth: probe.AuthNone}}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &mimic{routes: tt.routes}
			srv, tg := serve(t, m, tt.tls)
			var rc recorder
			got := newProber(&rc, webprobe.Config{DefaultCreds: true}).Probe(context.Background(), tg)
			if got.Status != probe.StatusOpen || got.Error != "" {
				t.Errorf("status, error = %v, %q; want open, \"\"", got.Status, got.Error)
			}
			if got.Exposure == nil || got.Exposure.Level != probe.LevelNotDICOM {
				t.Errorf("exposure = %+v, want level not-dicom", got.Exposure)
			}
			if want := tt.want(srv.URL); !reflect.DeepEqual(got.Web, want) {
				t.Errorf("web =\n%+v\nwant\n%+v", got.Web, want)
			}
			for _, r := range m.requests() {
				if r.auth != "" {
					t.Errorf("%s %s sent Authorization %q to a server that never asked", r.method, r.path, r.auth)
				}
				if r.method != http.MethodGet {
					t.Errorf("%s %s: only GET expected", r.method, r.path)
				}
				if strings.Contains(r.path, "FAKE") {
					t.Errorf("request %s carries server data", r.path)
				}
			}
		})
	}
}

// orthancSecure mimics Orthanc with authentication on: 401 with its realm everywhere unless the
// request carries one of users' logins.
func orthancSecure(users map[string]string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || users[u] != p || p == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="Orthanc Secure Area"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/system":
			io.WriteString(w, `{"DicomAet":"ORTHANC","Version":"1.9.7"}`)
		case "/statistics":
			io.WriteString(w, `{"CountStudies":3,"CountInstances":9}`)
		case "/dicom-web/studies":
			w.Header().Set("Content-Type", "application/dicom+json")
			io.WriteString(w, qidoBody)
		default:
			http.NotFound(w, r)
		}
	}
}

func TestProbeCredentials(t *testing.T) {
	loginPage := `<html><head><title>DCM4CHEE Web (pacs)</title><link rel="stylesheet" href="resources/org.dcm4chee.web.common.base.BaseWicketPage/base-style.css"/></head>` +
		`<body><form action="j_security_check" method="POST" name="login"><input name="j_username"/><input type="password" name="j_password"/></form></body></html>`
	dcm4chee2 := func(user, pass string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/dcm4chee-web3/":
				c, err := r.Cookie("JSESSIONID")
				if err == nil && c.Value == "logged-in" {
					io.WriteString(w, "<html><title>dcm4chee</title>main page</html>")
					return
				}
				http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: "s1", Path: "/dcm4chee-web3"})
				io.WriteString(w, loginPage)
			case "/dcm4chee-web3/j_security_check":
				c, err := r.Cookie("JSESSIONID")
				if r.Method != http.MethodPost || err != nil || c.Value != "s1" {
					http.Error(w, "the time allowed for the login process has been exceeded", http.StatusRequestTimeout)
					return
				}
				if r.PostFormValue("j_username") == user && r.PostFormValue("j_password") == pass {
					http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: "logged-in", Path: "/dcm4chee-web3"})
					w.Header().Set("Location", "/dcm4chee-web3/")
					w.WriteHeader(http.StatusFound)
					return
				}
				io.WriteString(w, strings.Replace(loginPage, "<body>", "<body>loginFailed", 1))
			default:
				http.NotFound(w, r)
			}
		}
	}
	tests := []struct {
		name         string
		defaultCreds bool
		handler      http.HandlerFunc
		want         func(base string) []probe.Web
		wantAuth     []string // Authorization headers the server saw, in order
		wantPOST     int
	}{
		{
			name:    "orthanc secured, default creds off",
			handler: orthancSecure(map[string]string{"orthanc": "orthanc"}),
			want: func(base string) []probe.Web {
				return []probe.Web{{URL: base + "/", Product: "Orthanc", Auth: probe.AuthBasic}}
			},
		},
		{
			name:         "orthanc secured, default creds work",
			defaultCreds: true,
			handler:      orthancSecure(map[string]string{"orthanc": "orthanc"}),
			want: func(base string) []probe.Web {
				return []probe.Web{{URL: base + "/", Product: "Orthanc", Version: "1.9.7", Auth: probe.AuthDefaultCreds, Studies: 3, Instances: 9, DICOMweb: true}}
			},
			// /system, /statistics and QIDO-RS with the default login; nothing else.
			wantAuth: []string{basic("orthanc", "orthanc"), basic("orthanc", "orthanc"), basic("orthanc", "orthanc")},
		},
		{
			name:         "orthanc secured, default creds refused",
			defaultCreds: true,
			handler:      orthancSecure(map[string]string{"alice": "s3cret"}),
			want: func(base string) []probe.Web {
				return []probe.Web{{URL: base + "/", Product: "Orthanc", Auth: probe.AuthBasic}}
			},
			wantAuth: []string{basic("orthanc", "orthanc")},
		},
		{
			name:         "unknown product behind basic auth gets no password",
			defaultCreds: true,
			handler:      status(http.StatusUnauthorized, "WWW-Authenticate", `Basic realm="PACS"`),
			want: func(base string) []probe.Web {
				return []probe.Web{{URL: base + "/", Auth: probe.AuthBasic}}
			},
		},
		{
			name:    "dcm4chee 2.x, default creds off",
			handler: dcm4chee2("admin", "admin"),
			want: func(base string) []probe.Web {
				return []probe.Web{{URL: base + "/dcm4chee-web3/", Product: "dcm4chee 2.x", Auth: probe.AuthBasic}}
			},
		},
		{
			name:         "dcm4chee 2.x, default creds work",
			defaultCreds: true,
			handler:      dcm4chee2("admin", "admin"),
			want: func(base string) []probe.Web {
				return []probe.Web{{URL: base + "/dcm4chee-web3/", Product: "dcm4chee 2.x", Auth: probe.AuthDefaultCreds}}
			},
			wantPOST: 1,
		},
		{
			name:         "dcm4chee 2.x, default creds refused",
			defaultCreds: true,
			handler:      dcm4chee2("admin", "changed"),
			want: func(base string) []probe.Web {
				return []probe.Web{{URL: base + "/dcm4chee-web3/", Product: "dcm4chee 2.x", Auth: probe.AuthBasic}}
			},
			wantPOST: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &mimic{routes: map[string]http.HandlerFunc{}}
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				m.mu.Lock()
				m.seen = append(m.seen, seenRequest{r.Method, r.URL.Path, r.Host, r.Header.Get("Authorization")})
				m.mu.Unlock()
				tt.handler(w, r)
			})
			srv, tg := serve(t, h, false)
			var rc recorder
			got := newProber(&rc, webprobe.Config{DefaultCreds: tt.defaultCreds}).Probe(context.Background(), tg)
			if want := tt.want(srv.URL); !reflect.DeepEqual(got.Web, want) {
				t.Errorf("web =\n%+v\nwant\n%+v", got.Web, want)
			}
			var gotAuth []string
			posts := 0
			for _, r := range m.requests() {
				if r.auth != "" {
					gotAuth = append(gotAuth, r.auth)
				}
				if r.method == http.MethodPost {
					posts++
				}
			}
			if !reflect.DeepEqual(gotAuth, tt.wantAuth) {
				t.Errorf("Authorization headers sent = %q, want %q", gotAuth, tt.wantAuth)
			}
			if posts != tt.wantPOST {
				t.Errorf("POST requests = %d, want %d", posts, tt.wantPOST)
			}
		})
	}
}

func basic(user, pass string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pass)
	return r.Header.Get("Authorization")
}

func TestProbeRedirects(t *testing.T) {
	other := &mimic{routes: map[string]http.HandlerFunc{"/": text(htmlType, "<title>OHIF Viewer</title>")}}
	otherSrv, _ := serve(t, other, false)
	tests := []struct {
		name     string
		location func(base string, r *http.Request) string
		maxRoot  int // requests for "/" the server may see
	}{
		{
			name:     "loop",
			location: func(_ string, r *http.Request) string { return r.URL.Path },
			maxRoot:  1 + webprobe.MaxRedirects,
		},
		{
			name:     "endless chain",
			location: func(_ string, r *http.Request) string { return r.URL.Path + "x" },
			maxRoot:  1,
		},
		{
			name:     "another host",
			location: func(string, *http.Request) string { return "http://pacs.example.invalid/" },
			maxRoot:  1,
		},
		{
			name:     "another port of the same address",
			location: func(string, *http.Request) string { return otherSrv.URL + "/" },
			maxRoot:  1,
		},
		{
			name:     "to https",
			location: func(base string, _ *http.Request) string { return strings.Replace(base, "http:", "https:", 1) + "/" },
			maxRoot:  1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var base string
			m := &mimic{}
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				m.mu.Lock()
				m.seen = append(m.seen, seenRequest{r.Method, r.URL.Path, r.Host, r.Header.Get("Authorization")})
				m.mu.Unlock()
				http.Redirect(w, r, tt.location(base, r), http.StatusFound)
			})
			srv, tg := serve(t, h, false)
			base = srv.URL
			var rc recorder
			got := newProber(&rc, webprobe.Config{}).Probe(context.Background(), tg)
			want := []probe.Web{{URL: srv.URL + "/", Auth: probe.AuthUnknown}}
			if got.Status != probe.StatusOpen || !reflect.DeepEqual(got.Web, want) {
				t.Errorf("status %v, web %+v; want open, %+v", got.Status, got.Web, want)
			}
			root := 0
			for _, r := range m.requests() {
				if r.path == "/" {
					root++
				}
				if r.host != tg.String() {
					t.Errorf("request for host %q reached the target", r.host)
				}
			}
			if root < 1 || root > tt.maxRoot {
				t.Errorf("requests for / = %d, want 1 to %d", root, tt.maxRoot)
			}
			// Each probe request follows at most MaxRedirects; five paths are asked at most.
			if n := len(m.requests()); n > 6*(1+webprobe.MaxRedirects) {
				t.Errorf("server saw %d requests", n)
			}
		})
	}
	if n := len(other.requests()); n != 0 {
		t.Errorf("the other port saw %d requests, want 0", n)
	}
}

// gzipBomb returns a gzip stream that inflates to n MiB of zeros: one member of 1 MiB of zeros,
// repeated (gzip members concatenate).
func gzipBomb(t *testing.T, n int) []byte {
	t.Helper()
	var member bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	if _, err := zw.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return bytes.Repeat(member.Bytes(), n)
}

func TestProbeHostileBodies(t *testing.T) {
	bomb := gzipBomb(t, 1024) // 1 GiB inflated
	endless := func(contentType string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", contentType)
			buf := bytes.Repeat([]byte("<title>x"), 4096)
			for r.Context().Err() == nil {
				if _, err := w.Write(buf); err != nil {
					return
				}
			}
		}
	}
	gz := func(contentType string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", contentType)
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(bomb)
		}
	}
	const maxBody = 256 << 10
	tests := []struct {
		name    string
		handler http.Handler
		want    func(base string) []probe.Web
		maxRead int64 // bytes the probe may read from the network
	}{
		{
			name:    "endless body",
			handler: endless(jsonType),
			want: func(base string) []probe.Web {
				return []probe.Web{{URL: base + "/", Auth: probe.AuthNone}}
			},
			maxRead: 8 * maxBody,
		},
		{
			name:    "gzip bomb",
			handler: gz(jsonType),
			want: func(base string) []probe.Web {
				return []probe.Web{{URL: base + "/", Auth: probe.AuthNone}}
			},
			// Inflating MaxBody bytes of zeros takes about a thousandth of it on the wire.
			maxRead: int64(len(bomb)) / 8,
		},
		{
			name: "gzip bomb as orthanc statistics",
			handler: &mimic{routes: map[string]http.HandlerFunc{
				"/system":     text(jsonType, `{"DicomAet":"ORTHANC","Version":"1.10.1"}`),
				"/statistics": gz(jsonType),
			}},
			want: func(base string) []probe.Web {
				return []probe.Web{{URL: base + "/", Product: "Orthanc", Version: "1.10.1", Auth: probe.AuthNone}}
			},
			maxRead: int64(len(bomb)) / 8,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, tg := serve(t, tt.handler, false)
			var rc recorder
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			got := newProber(&rc, webprobe.Config{MaxBody: maxBody, Timeout: 3 * time.Second}).Probe(context.Background(), tg)
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			if want := tt.want(srv.URL); got.Status != probe.StatusOpen || !reflect.DeepEqual(got.Web, want) {
				t.Errorf("status %v, web %+v; want open, %+v", got.Status, got.Web, want)
			}
			if n := rc.read.Load(); n > tt.maxRead {
				t.Errorf("read %d bytes from the network, want at most %d", n, tt.maxRead)
			}
			// Every request stops at its cap: far below the 1 GiB the server offers.
			if n := after.TotalAlloc - before.TotalAlloc; n > 64<<20 {
				t.Errorf("probe allocated %d MiB", n>>20)
			}
			if elapsed > 10*time.Second {
				t.Errorf("probe took %v", elapsed)
			}
		})
	}
}

func TestProbeNotHTTP(t *testing.T) {
	cert := selfSigned(t)
	garbage := []byte("\x00\x01\x02 FAKE^LEAK \xff\xfe garbage\r\n\r\n")
	tests := []struct {
		name      string
		tls       bool
		reply     []byte // written as soon as the connection (and handshake) is up; nil: silence
		wantError string
		wantConns int64
	}{
		{name: "tls port answering garbage", tls: true, reply: garbage, wantError: "not http", wantConns: 1},
		{name: "tcp port answering garbage", reply: garbage, wantError: "not http", wantConns: 2},
		{name: "tls port closing after handshake", tls: true, wantError: "connection closed by peer", wantConns: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			t.Cleanup(wg.Wait) // cleanups run last first: the listener closes, then its goroutines end
			t.Cleanup(func() { ln.Close() })
			wg.Go(func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					wg.Go(func() {
						defer c.Close()
						c.SetDeadline(time.Now().Add(5 * time.Second))
						if tt.tls {
							tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
							if tc.Handshake() != nil {
								return
							}
							c = tc
						}
						if tt.reply == nil {
							// Read the request before closing: a close with unread bytes
							// is a reset, not the end of the stream this case is about.
							br := bufio.NewReader(c)
							for {
								line, err := br.ReadString('\n')
								if err != nil || line == "\r\n" {
									return
								}
							}
						}
						c.Write(tt.reply)
						io.Copy(io.Discard, c)
					})
				}
			})
			var rc recorder
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			got := newProber(&rc, webprobe.Config{Timeout: time.Second, Logger: log}).Probe(context.Background(), targetOf(t, ln.Addr()))
			if strings.Contains(logs.String(), "FAKE") || !strings.Contains(logs.String(), "path=/") {
				t.Errorf("log shows what the server sent, or nothing:\n%s", logs.String())
			}
			if got.Status != probe.StatusOpen || got.Error != tt.wantError || got.Web != nil {
				t.Errorf("status %v, error %q, web %+v; want open, %q, no web", got.Status, got.Error, got.Web, tt.wantError)
			}
			if got.Exposure == nil || got.Exposure.Level != probe.LevelNotDICOM {
				t.Errorf("exposure = %+v, want level not-dicom", got.Exposure)
			}
			if n := rc.dials.Load(); n != tt.wantConns {
				t.Errorf("connections = %d, want %d", n, tt.wantConns)
			}
		})
	}
}

func TestProbeClosedAndSilent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := targetOf(t, ln.Addr())
	ln.Close()

	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts (the kernel does), never answers
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })

	tests := []struct {
		name       string
		target     targets.Target
		ctxTimeout time.Duration
		wantStatus probe.Status
		wantError  string
		wantExp    bool
	}{
		{name: "closed", target: closed, wantStatus: probe.StatusClosed, wantError: "connection refused"},
		{name: "silent", target: targetOf(t, silent.Addr()), wantStatus: probe.StatusOpen, wantError: "i/o timeout", wantExp: true},
		{name: "silent, host time over", target: targetOf(t, silent.Addr()), ctxTimeout: 300 * time.Millisecond, wantStatus: probe.StatusOpen, wantError: "i/o timeout", wantExp: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctxTimeout)
				defer cancel()
			}
			var rc recorder
			start := time.Now()
			now := time.Date(2026, 11, 5, 12, 0, 0, 0, time.FixedZone("CET", 3600))
			got := newProber(&rc, webprobe.Config{Timeout: 500 * time.Millisecond, Now: func() time.Time { return now }}).Probe(ctx, tt.target)
			if !got.Time.Equal(now) || got.Time.Location() != time.UTC {
				t.Errorf("time = %v, want %v in UTC", got.Time, now)
			}
			if got.Status != tt.wantStatus || got.Error != tt.wantError || (got.Exposure != nil) != tt.wantExp || got.Web != nil {
				t.Errorf("got status %v, error %q, exposure %+v, web %+v; want %v, %q, exposure %v, no web",
					got.Status, got.Error, got.Exposure, got.Web, tt.wantStatus, tt.wantError, tt.wantExp)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("probe took %v", d)
			}
		})
	}
}

func TestProbeHostname(t *testing.T) {
	m := &mimic{routes: map[string]http.HandlerFunc{
		// A name-based virtual host redirects to itself by name.
		"/": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://"+r.Host+"/app/", http.StatusFound)
		},
		"/app/": text(htmlType, "<title>OHIF Viewer</title>"),
	}}
	srv, tg := serve(t, m, false)
	tg.Host = "pacs.example.test"
	var rc recorder
	got := newProber(&rc, webprobe.Config{}).Probe(context.Background(), tg)
	// The record names the address; the requests named the host.
	want := []probe.Web{{URL: srv.URL + "/", Product: "OHIF", Auth: probe.AuthNone}}
	if !reflect.DeepEqual(got.Web, want) {
		t.Errorf("web = %+v, want %+v", got.Web, want)
	}
	wantHost := net.JoinHostPort(tg.Host, strconv.Itoa(int(tg.Port)))
	reqs := m.requests()
	if len(reqs) == 0 || !slices.ContainsFunc(reqs, func(r seenRequest) bool { return r.path == "/app/" }) {
		t.Errorf("the redirect to the named host was not followed: %+v", reqs)
	}
	for _, r := range reqs {
		if r.host != wantHost {
			t.Errorf("%s sent Host %q, want %q", r.path, r.host, wantHost)
		}
	}
}

// TestProbeImplausibleCounts checks that web counts beyond the plausibility bounds are kept
// apart: zero in the record, told in an implausible caveat (SPEC "Result record").
func TestProbeImplausibleCounts(t *testing.T) {
	orthancSystem := `{"DicomAet":"ORTHANC","Version":"1.12.3"}`
	arcUI := `<html><head><title>dcm4chee-arc-ui</title></head></html>`
	for _, tc := range []struct {
		name    string
		routes  map[string]http.HandlerFunc
		product string
		claim   string
	}{
		{"orthanc int64 max", map[string]http.HandlerFunc{
			"/system":     text(jsonType, orthancSystem),
			"/statistics": text(jsonType, `{"CountStudies":9223372036854775807,"CountInstances":9223372036854775807}`),
		}, "Orthanc", "9223372036854775807 studies"},
		{"orthanc one study, 16.8 M instances", map[string]http.HandlerFunc{
			"/system":     text(jsonType, orthancSystem),
			"/statistics": text(jsonType, `{"CountStudies":1,"CountInstances":16777216}`),
		}, "Orthanc", "16777216 instances in 1 studies"},
		{"dcm4chee-arc 20 M studies", map[string]http.HandlerFunc{
			"/dcm4chee-arc/ui2/":                             text(htmlType, arcUI),
			"/dcm4chee-arc/aets":                             text(jsonType, `[{"dicomAETitle":"DCM4CHEE"}]`),
			"/dcm4chee-arc/aets/DCM4CHEE/rs/studies/count":   text(jsonType, `{"count":20000000}`),
			"/dcm4chee-arc/aets/DCM4CHEE/rs/instances/count": text(jsonType, `{"count":40000000}`),
		}, "dcm4chee-arc-light", "20000000 studies"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, tg := serve(t, &mimic{routes: tc.routes}, false)
			var rc recorder
			got := newProber(&rc, webprobe.Config{}).Probe(context.Background(), tg)
			if len(got.Web) != 1 || got.Web[0].Product != tc.product || got.Web[0].Studies != 0 || got.Web[0].Instances != 0 {
				t.Fatalf("web %+v: want one %s record with its counts kept apart (0)", got.Web, tc.product)
			}
			if got.Exposure == nil || len(got.Exposure.Caveats) != 1 || got.Exposure.Caveats[0].Kind != probe.CaveatImplausible ||
				!strings.Contains(got.Exposure.Caveats[0].Reason, tc.claim) || got.Exposure.Summable() {
				t.Errorf("exposure %+v: want one implausible caveat quoting %q", got.Exposure, tc.claim)
			}
		})
	}
}
