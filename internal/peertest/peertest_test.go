package peertest

import (
	"strings"
	"testing"
)

func TestGenerateDeterministic(t *testing.T) {
	a, b := Generate(7, 20, "9"), Generate(7, 20, "9")
	if len(a.Instances) != len(b.Instances) || a.Instances[5] != b.Instances[5] {
		t.Fatal("same seed gave different corpora")
	}
	if a.Studies != 20 {
		t.Fatalf("studies = %d, want 20", a.Studies)
	}
	n := 0
	for _, v := range a.Modalities {
		n += v
	}
	if n != 20 {
		t.Fatalf("modality histogram sums to %d, want 20", n)
	}
	for _, s := range a.Secrets() {
		if !strings.Contains(s, "FAKE") {
			t.Errorf("secret %q lacks the FAKE marker", s)
		}
	}
}

func TestOrthancLoad(t *testing.T) {
	c := Generate(1, 12, "1")
	o := StartOrthanc(t, OrthancConfig{Open: true})
	o.Upload(t, c)
	studies, instances := o.Statistics(t)
	if studies != c.Studies || instances != len(c.Instances) {
		t.Fatalf("Orthanc holds %d studies / %d instances, want %d / %d", studies, instances, c.Studies, len(c.Instances))
	}
}

func TestDcmqrscpLoad(t *testing.T) {
	c := Generate(2, 5, "2")
	q := StartDcmqrscp(t, []QRAE{{Title: "ARCHIVE"}}, nil)
	q.Store(t, "ARCHIVE", "LOADER", c)
	out, err := Run(t, "findscu", "-v", "-S", "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID",
		"-aec", "ARCHIVE", "127.0.0.1", itoa(q.Port))
	if err != nil {
		t.Fatalf("findscu: %v\n%s", err, out)
	}
	if got := strings.Count(out, "Find Response:"); got != c.Studies { // pending responses; the final one reads "Final Find Response"
		t.Fatalf("findscu saw %d responses, want %d\n%s", got, c.Studies, out)
	}
}

func TestStorescpEcho(t *testing.T) {
	s := StartStorescp(t, "STORESCP")
	if out, err := Run(t, "echoscu", "-aec", "STORESCP", "127.0.0.1", itoa(s.Port)); err != nil {
		t.Fatalf("echoscu: %v\n%s", err, out)
	}
}
