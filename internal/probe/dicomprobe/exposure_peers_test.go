package dicomprobe_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/peertest"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/probe/dicomprobe"
	"github.com/pacswatch/pacswatch/internal/targets"
)

// probePort probes 127.0.0.1:port at DepthQuery with cfg's other settings.
func probePort(t testing.TB, port int, cfg dicomprobe.Config) probe.Result {
	t.Helper()
	cfg.Depth = dicomprobe.DepthQuery
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return dicomprobe.New(cfg).Probe(ctx, targets.Target{Addr: netip.MustParseAddr("127.0.0.1"), Port: uint16(port)})
}

// assertPrivate fails when r, as JSON, holds any patient-identifying string of the corpora or any
// of their study UIDs.
func assertPrivate(t testing.TB, r probe.Result, corpora ...peertest.Corpus) {
	t.Helper()
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatalf("marshal result: %v", err)
	}
	s := string(js)
	for _, c := range corpora {
		for _, secret := range c.Secrets() {
			if strings.Contains(s, secret) {
				t.Errorf("result leaks %q: %s", secret, s)
			}
		}
		for _, in := range c.Instances[:min(len(c.Instances), 50)] {
			for _, uid := range []string{in.StudyUID, in.SeriesUID, in.SOPUID} {
				if strings.Contains(s, uid) {
					t.Errorf("result holds UID %s: %s", uid, s)
				}
			}
		}
		if strings.Contains(s, "FAKE") {
			t.Errorf("result holds a FAKE token: %s", s)
		}
	}
}

// exposure is the part of a result the acceptance tests compare.
type exposure struct {
	Level        probe.Level
	Studies      int64
	Exact        bool
	Instances    int64
	Source       probe.InstancesSource
	Retrieve     probe.Retrieve
	Find, Get    bool
	Move         bool
	HasModalites bool
}

func exposureOf(r probe.Result) exposure {
	if r.Exposure == nil || r.DICOM == nil {
		return exposure{}
	}
	e, s := r.Exposure, r.DICOM.Services
	return exposure{e.Level, e.Studies, e.StudiesExact, e.Instances, e.InstancesSource, e.Retrieve,
		s.FindStudy, s.Get, s.Move, len(e.Modalities) > 0}
}

func truth(c peertest.Corpus) map[string]int64 {
	m := map[string]int64{}
	for k, v := range c.Modalities {
		m[k] = int64(v)
	}
	return m
}

func TestExposureOrthanc(t *testing.T) {
	corpus := peertest.Generate(41, 1000, "41")
	o := peertest.StartOrthanc(t, peertest.OrthancConfig{Open: true})
	o.Upload(t, corpus)
	capped := peertest.StartOrthanc(t, peertest.OrthancConfig{Open: true, LimitFindResults: 100})
	capped.Upload(t, corpus)
	n := int64(len(corpus.Instances))

	for _, tc := range []struct {
		name string
		port int
		cfg  dicomprobe.Config
		want exposure
	}{
		{"open", o.DICOMPort, dicomprobe.Config{},
			exposure{probe.LevelRetrieve, 1000, true, n, probe.InstancesSourceStudyAttr, probe.RetrieveAccepted, true, true, true, true}},
		{"open verify-retrieve", o.DICOMPort, dicomprobe.Config{VerifyRetrieve: true},
			exposure{probe.LevelRetrieve, 1000, true, n, probe.InstancesSourceStudyAttr, probe.RetrieveVerified, true, true, true, true}},
		{"capped at 100", capped.DICOMPort, dicomprobe.Config{},
			exposure{probe.LevelRetrieve, 1000, true, n, probe.InstancesSourceStudyAttr, probe.RetrieveAccepted, true, true, true, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := probePort(t, tc.port, tc.cfg)
			js, _ := json.Marshal(r)
			if got := exposureOf(r); got != tc.want {
				t.Errorf("exposure\n got %+v\nwant %+v\n%s", got, tc.want, js)
			}
			if got, want := r.Exposure.Modalities, truth(corpus); !maps.Equal(got, want) {
				t.Errorf("modalities = %v, want %v", got, want)
			}
			assertPrivate(t, r, corpus)
		})
	}
}

func TestExposureDcmqrscp(t *testing.T) {
	corpus := peertest.Generate(42, 400, "42")
	q := peertest.StartDcmqrscp(t, []peertest.QRAE{{Title: "ARCHIVE"}}, nil)
	q.Store(t, "ARCHIVE", "LOADER", corpus)
	n := int64(len(corpus.Instances))
	for _, tc := range []struct {
		name string
		cfg  dicomprobe.Config
		want exposure
	}{
		{"open to all", dicomprobe.Config{CalledAE: "ARCHIVE"},
			exposure{probe.LevelRetrieve, 400, true, n, probe.InstancesSourceImage, probe.RetrieveAccepted, true, true, true, true}},
		{"verify-retrieve", dicomprobe.Config{CalledAE: "ARCHIVE", VerifyRetrieve: true},
			exposure{probe.LevelRetrieve, 400, true, n, probe.InstancesSourceImage, probe.RetrieveVerified, true, true, true, true}},
		{"budget 300", dicomprobe.Config{CalledAE: "ARCHIVE", QueryBudget: 300},
			exposure{probe.LevelRetrieve, 400, true, -1, probe.InstancesSourceEstimate, probe.RetrieveAccepted, true, true, true, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := probePort(t, q.Port, tc.cfg)
			js, _ := json.Marshal(r)
			got := exposureOf(r)
			if tc.want.Instances < 0 { // an estimate from about 100 studies: within 25 % (4 sigma) of the truth
				if d := float64(got.Instances-n) / float64(n); d < -0.25 || d > 0.25 {
					t.Errorf("estimated %d instances, truth %d", got.Instances, n)
				}
				got.Instances = -1
			}
			if got != tc.want {
				t.Errorf("exposure\n got %+v\nwant %+v\n%s", got, tc.want, js)
			}
			if tc.want.Source != probe.InstancesSourceEstimate { // else modalities of the counted sample only
				if got, want := r.Exposure.Modalities, truth(corpus); !maps.Equal(got, want) {
					t.Errorf("modalities = %v, want %v", got, want)
				}
			}
			assertPrivate(t, r, corpus)
		})
	}
}

func TestExposureLevels(t *testing.T) {
	corpus := peertest.Generate(43, 5, "43")
	defaults := peertest.StartOrthanc(t, peertest.OrthancConfig{})
	defaults.Upload(t, corpus)
	strict := peertest.StartOrthanc(t, peertest.OrthancConfig{CheckCalledAET: true, Strict: true})
	strict.Upload(t, corpus)
	for _, tc := range []struct {
		name     string
		port     int
		level    probe.Level
		retrieve probe.Retrieve
		errText  string
	}{
		{"orthanc defaults: c-find aborted", defaults.DICOMPort, probe.LevelEcho, probe.RetrieveUntested, "c-find: association aborted"},
		{"orthanc strict: calling AE refused", strict.DICOMPort, probe.LevelProtected, probe.RetrieveUntested, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := probePort(t, tc.port, dicomprobe.Config{})
			js, _ := json.Marshal(r)
			if r.Level() != tc.level || r.Exposure.Retrieve != tc.retrieve || r.Exposure.Studies != 0 {
				t.Errorf("level %v retrieve %v studies %d, want %v %v 0\n%s", r.Level(), r.Exposure.Retrieve, r.Exposure.Studies, tc.level, tc.retrieve, js)
			}
			if !strings.HasPrefix(r.Error, tc.errText) || (tc.errText == "") != (r.Error == "") {
				t.Errorf("error %q, want %q", r.Error, tc.errText)
			}
			if r.DICOM != nil && (r.DICOM.Services.FindStudy || r.DICOM.Services.Get || r.DICOM.Services.Move) {
				t.Errorf("services %+v: no query service answered", r.DICOM.Services)
			}
			assertPrivate(t, r, corpus)
		})
	}
}

// BenchmarkCountOrthanc1000 compares a DepthQuery probe of an Orthanc of 1000 studies (association,
// C-ECHO, counting, retrieval tests, release) with dcmtk's findscu running the same universal
// STUDY-level query, in the same run.
func BenchmarkCountOrthanc1000(b *testing.B) {
	findscu := peertest.Require(b, "findscu")[0]
	corpus := peertest.Generate(44, 1000, "44")
	o := peertest.StartOrthanc(b, peertest.OrthancConfig{Open: true})
	o.Upload(b, corpus)
	p := dicomprobe.New(dicomprobe.Config{Depth: dicomprobe.DepthQuery})
	target := targets.Target{Addr: netip.MustParseAddr("127.0.0.1"), Port: uint16(o.DICOMPort)}
	argv := []string{findscu, "-S", "-aet", "PACSWATCH", "-aec", o.AET, "-k", "QueryRetrieveLevel=STUDY",
		"-k", "StudyInstanceUID", "127.0.0.1", fmt.Sprint(o.DICOMPort)}
	var ours, theirs time.Duration
	for b.Loop() {
		start := time.Now()
		r := p.Probe(context.Background(), target)
		ours += time.Since(start)
		if r.Exposure == nil || r.Exposure.Studies != 1000 {
			b.Fatalf("counted %+v", r.Exposure)
		}
		start = time.Now()
		if out, err := peertest.Run(b, argv...); err != nil {
			b.Fatalf("findscu: %v\n%s", err, out)
		}
		theirs += time.Since(start)
	}
	n := float64(b.N)
	b.ReportMetric(float64(ours.Milliseconds())/n, "pacswatch-ms/op")
	b.ReportMetric(float64(theirs.Milliseconds())/n, "findscu-ms/op")
	b.ReportMetric(float64(ours)/float64(theirs), "ratio")
}
