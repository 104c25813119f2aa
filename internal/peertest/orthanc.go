package peertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// OrthancConfig describes one Orthanc instance. The zero value is Orthanc's own defaults
// (called AE not checked; C-ECHO and C-STORE from anyone; C-FIND/C-GET/C-MOVE refused for AEs not in
// DicomModalities, by A-ABORT after the request) with AE title ORTHANC.
type OrthancConfig struct {
	AET              string            // DicomAet; default "ORTHANC"
	CheckCalledAET   bool              // DicomCheckCalledAet
	Open             bool              // DicomAlwaysAllowFind/Get/Move/Store true: anyone may query and retrieve
	NoEcho           bool              // DicomAlwaysAllowEcho false
	Strict           bool              // every "always allow" off and DicomCheckModalityHost on: unknown calling AEs are rejected
	Modalities       map[string]string // name → AE title of known peers at 127.0.0.1
	Users            map[string]string // non-empty: HTTP basic authentication with these users
	DICOMweb         bool              // load the orthanc-dicomweb plugin
	LimitFindResults int               // LimitFindResults (0 = unlimited)
	TLS              *OrthancTLS       // DICOM TLS on the DICOM port
}

// OrthancTLS is the DICOM TLS configuration of Orthanc (1.9.0+): PEM files.
type OrthancTLS struct {
	CertFile, KeyFile string
	TrustedFile       string // CA bundle for client certificates; required by Orthanc
	RequireClientCert bool
}

// Orthanc is a running Orthanc server.
type Orthanc struct {
	AET       string
	DICOMPort int
	HTTPPort  int
	URL       string // http://127.0.0.1:HTTPPort
	user      string
	pass      string
	run       restartable // the process, for Restart
}

// StartOrthanc starts an Orthanc server on free ports with its own storage, and stops it when the
// test ends.
func StartOrthanc(t testing.TB, cfg OrthancConfig) *Orthanc {
	t.Helper()
	bin := Require(t, "Orthanc")[0]
	dir := t.TempDir()
	o := &Orthanc{AET: cfg.AET, DICOMPort: FreePort(t), HTTPPort: FreePort(t)}
	if o.AET == "" {
		o.AET = "ORTHANC"
	}
	o.URL = fmt.Sprintf("http://127.0.0.1:%d", o.HTTPPort)
	conf := map[string]any{
		"Name":                "PEERTEST",
		"StorageDirectory":    filepath.Join(dir, "db"),
		"IndexDirectory":      filepath.Join(dir, "db"),
		"HttpPort":            o.HTTPPort,
		"DicomPort":           o.DICOMPort,
		"DicomAet":            o.AET,
		"RemoteAccessAllowed": false,
		"DicomCheckCalledAet": cfg.CheckCalledAET,
		"StableAge":           1,
		"SaveJobs":            false,
		"DicomThreadsCount":   4,
		"LimitFindResults":    cfg.LimitFindResults,
		"LimitFindInstances":  cfg.LimitFindResults,
	}
	mods := map[string]any{}
	for name, aet := range cfg.Modalities {
		mods[name] = []any{aet, "127.0.0.1", 104}
	}
	conf["DicomModalities"] = mods
	if cfg.Open {
		for _, k := range []string{"Find", "Get", "Move", "Store"} {
			conf["DicomAlwaysAllow"+k] = true
		}
	}
	if cfg.NoEcho {
		conf["DicomAlwaysAllowEcho"] = false
	}
	if cfg.Strict {
		for _, k := range []string{"Echo", "Find", "Get", "Move", "Store", "FindWorklist"} {
			conf["DicomAlwaysAllow"+k] = false
		}
		conf["DicomCheckModalityHost"] = true
	}
	if len(cfg.Users) > 0 {
		conf["AuthenticationEnabled"] = true
		conf["RegisteredUsers"] = cfg.Users
		for u, p := range cfg.Users {
			o.user, o.pass = u, p
			break
		}
	} else {
		conf["AuthenticationEnabled"] = false
	}
	if cfg.DICOMweb {
		conf["Plugins"] = []string{"/usr/share/orthanc/plugins/libOrthancDicomWeb.so"}
		conf["DicomWeb"] = map[string]any{"Enable": true, "Root": "/dicom-web/"}
	}
	if cfg.TLS != nil {
		conf["DicomTlsEnabled"] = true
		conf["DicomTlsCertificate"] = cfg.TLS.CertFile
		conf["DicomTlsPrivateKey"] = cfg.TLS.KeyFile
		conf["DicomTlsTrustedCertificates"] = cfg.TLS.TrustedFile
		conf["DicomTlsRemoteCertificateRequired"] = cfg.TLS.RequireClientCert
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "orthanc.json")
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	o.run = restartable{dir: dir, config: cfgPath, argv: []string{bin, cfgPath}, ports: []int{o.DICOMPort, o.HTTPPort}}
	o.run.start(t)
	return o
}

// Upload stores the corpus into Orthanc through its REST API (POST /instances), four at a time.
func (o *Orthanc) Upload(t testing.TB, c Corpus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	work := make(chan Instance)
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for in := range work {
				if err := o.post(ctx, "/instances", in.Part10()); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for _, in := range c.Instances {
		select {
		case work <- in:
		case err := <-errs:
			close(work)
			wg.Wait()
			t.Fatalf("upload to Orthanc: %v", err)
		}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("upload to Orthanc: %v", err)
	default:
	}
}

func (o *Orthanc) post(ctx context.Context, path string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, "POST", o.URL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if o.user != "" {
		req.SetBasicAuth(o.user, o.pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, msg)
	}
	return nil
}

// Statistics returns Orthanc's /statistics counts (studies, instances).
func (o *Orthanc) Statistics(t testing.TB) (studies, instances int) {
	t.Helper()
	req, _ := http.NewRequest("GET", o.URL+"/statistics", nil)
	if o.user != "" {
		req.SetBasicAuth(o.user, o.pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /statistics: %v", err)
	}
	defer resp.Body.Close()
	var s struct{ CountStudies, CountInstances int }
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatalf("decode /statistics: %v", err)
	}
	return s.CountStudies, s.CountInstances
}
