package report_test

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/geo"
	"github.com/pacswatch/pacswatch/internal/geo/geotest"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/report"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/memstore"
)

// letterResults are a scan's records: an open Orthanc and a locked one in one network, a
// dcmqrscp serving anyone in another (whose organisation name holds Markdown), one in no
// network, and one whose only fault is a missing TLS (no letter for it).
func letterResults() []probe.Result {
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	dcmtk := func(called string, check probe.AECheck, s probe.Services) *probe.DICOM {
		return &probe.DICOM{Association: probe.AssociationAccepted, CalledAE: called, CallingAE: "PACSWATCH", AECheck: check,
			ImplementationClassUID: "1.2.276.0.7230010.3.0.3.6.7", ImplementationVersion: "OFFIS_DCMTK_367", Product: "DCMTK 3.6.7", Services: s}
	}
	open := probe.Services{Echo: true, FindStudy: true, Get: true, Move: true}
	rec := func(ip string, port uint16, d *probe.DICOM, e *probe.Exposure, web ...probe.Web) probe.Result {
		return probe.Result{IP: netip.MustParseAddr(ip), Port: port, Time: at, Status: probe.StatusOpen, Depth: "query", DICOM: d, Exposure: e, Web: web}
	}
	return []probe.Result{
		rec("127.1.0.5", 4242, dcmtk("ANY-SCP", probe.AECheckNone, open),
			&probe.Exposure{Level: probe.LevelRetrieve, Studies: 1200, StudiesExact: true, Instances: 56000, Modalities: map[string]int64{"CT": 700, "MR": 500}, Retrieve: probe.RetrieveAccepted}),
		rec("127.1.0.5", 8042, nil, &probe.Exposure{Level: probe.LevelNotDICOM},
			probe.Web{URL: "http://127.1.0.5:8042/", Product: "Orthanc", Version: "1.10.1", Auth: probe.AuthNone, Studies: 1200, Instances: 56000}),
		rec("127.1.0.9", 104, dcmtk("ANY-SCP", probe.AECheckNone, probe.Services{Echo: true}), &probe.Exposure{Level: probe.LevelEcho}),
		rec("127.7.0.3", 11112, dcmtk("DCM4CHEE", probe.AECheckCalled, open),
			&probe.Exposure{Level: probe.LevelRetrieve, Studies: 480, StudiesExact: true, Instances: 9100, Retrieve: probe.RetrieveAccepted}),
		rec("127.99.0.1", 104, dcmtk("ANY-SCP", probe.AECheckNone, probe.Services{Echo: true, FindStudy: true}),
			&probe.Exposure{Level: probe.LevelQuery, Studies: 12, StudiesExact: true}),
		rec("127.1.0.20", 2762, &probe.DICOM{Association: probe.AssociationRejected, CalledAE: "ANY-SCP", CallingAE: "PACSWATCH", AECheck: probe.AECheckCalled,
			Reject: &probe.Reject{Result: 1, Source: 1, Reason: 7, Meaning: "called-AE-title-not-recognized"}}, &probe.Exposure{Level: probe.LevelProtected}),
	}
}

// TestLetters: one letter per network owner, Markdown and plain text, golden-tested; systems
// with nothing open get none; Markdown in a database's strings is escaped.
func TestLetters(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	sc, err := st.CreateScan(ctx, store.Scan{ID: "k3f9", Name: "december", Started: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC), Total: 100})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutResults(ctx, sc.ID, letterResults(), store.Progress{Done: 6}); err != nil {
		t.Fatal(err)
	}
	asnPath := filepath.Join(t.TempDir(), "asn.mmdb")
	if err := geotest.WriteASN(asnPath, "GeoLite2-ASN", []geotest.AS{
		{Prefix: netip.MustParsePrefix("127.1.0.0/16"), ASN: geo.ASN{Number: 9829, Org: "National Internet Backbone"}},
		{Prefix: netip.MustParsePrefix("127.7.0.0/16"), ASN: geo.ASN{Number: 7018, Org: "AT&T <Services> *bold*"}},
	}); err != nil {
		t.Fatal(err)
	}
	asn, err := geo.OpenASN(asnPath)
	if err != nil {
		t.Fatal(err)
	}
	defer asn.Close()

	if _, err := report.WriteLetters(ctx, st, report.Options{}, t.TempDir()); !errors.Is(err, report.ErrNoASN) {
		t.Errorf("letters without an ASN database: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "letters")
	sum, err := report.WriteLetters(ctx, st, report.Options{ASN: asn}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Letters != 3 || sum.Systems != 4 || len(sum.Files) != 6 || sum.Scan != "k3f9" {
		t.Errorf("summary %+v: want 3 letters naming 4 systems, 6 files", sum)
	}
	for _, path := range sum.Files {
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", "golden", "letters", filepath.Base(path))
		if *update {
			if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (go test -update writes it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s (go test -update rewrites it):\n%s", path, golden, got)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", path, fi.Mode().Perm())
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, "AS7018.md"))
	if !strings.Contains(string(md), `AT\&T \<Services\> \*bold\*`) {
		t.Errorf("the organisation's Markdown is not escaped:\n%s", md)
	}
	all, _ := os.ReadFile(filepath.Join(dir, "AS9829.txt"))
	if strings.Contains(string(all), "127.1.0.20") || !strings.Contains(string(all), "127.1.0.9:104") {
		t.Errorf("AS9829's letter names the wrong systems:\n%s", all)
	}
}
