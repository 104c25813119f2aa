package report_test

import (
	"context"
	"net/netip"
	"runtime"
	"testing"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/report"
)

// lazyStore makes up its results as they are read: hosts 127.A.B.C for A in 1..10, each
// accessible with a few studies; every scan has the same hosts.
type lazyStore struct {
	*memStore
	perNet int // hosts per 127.A.0.0/16
	peak   uint64
}

func (s *lazyStore) Results(ctx context.Context, id string, fn func(probe.Result) error) error {
	if _, err := s.Scan(ctx, id); err != nil {
		return err
	}
	n := 0
	for a := 1; a <= 10; a++ {
		for i := range s.perNet {
			ip := netip.AddrFrom4([4]byte{127, byte(a), byte(i >> 8), byte(i)})
			r := probe.Result{ScanID: id, IP: ip, Port: 104, Status: probe.StatusOpen,
				DICOM: &probe.DICOM{Association: probe.AssociationAccepted, CalledAE: "ANY-SCP", Product: "Orthanc", ImplementationVersion: "OFFIS_DCMTK_367"},
				Exposure: &probe.Exposure{Level: probe.LevelQuery, Studies: int64(i % 7), Instances: int64(i % 13), StudiesExact: true,
					InstancesSource: probe.InstancesSourceStudyAttr, Retrieve: probe.RetrieveRefused}}
			if err := fn(r); err != nil {
				return err
			}
			if n++; n%10000 == 0 {
				runtime.GC()
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				s.peak = max(s.peak, m.HeapAlloc)
			}
		}
	}
	return nil
}

// TestStreamingMemory: a report over 2 × 100,000 hosts holds its groups, not its hosts.
func TestStreamingMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 200,000 made-up results")
	}
	st := &lazyStore{memStore: newMemStore(), perNet: 10000}
	st.add("a", nil)
	st.add("b", nil)
	g, a := fixtureGeo(t)
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	base := m.HeapAlloc
	r, err := report.Build(context.Background(), st, report.Options{Geo: g, ASN: a})
	if err != nil {
		t.Fatal(err)
	}
	if r.Total.SystemsFound != 100000 || r.Total.Change == nil || r.Total.Change.SystemsFound != 0 {
		t.Fatalf("total %+v change %+v; want 100,000 systems, unchanged", r.Total.Metrics, r.Total.Change)
	}
	t.Logf("live heap grew by %d KB", (int64(st.peak)-int64(base))>>10)
	// Holding the hosts would take tens of MB (a result is several hundred bytes).
	if grown := int64(st.peak) - int64(base); grown > 8<<20 {
		t.Errorf("live heap grew by %d MB while reading 200,000 results; want O(groups)", grown>>20)
	}
}

func BenchmarkBuild(b *testing.B) {
	st := &lazyStore{memStore: newMemStore(), perNet: 1000}
	st.add("a", nil)
	st.add("b", nil)
	g, a := fixtureGeo(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := report.Build(context.Background(), st, report.Options{Geo: g, ASN: a}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/20000, "ns/host")
}
