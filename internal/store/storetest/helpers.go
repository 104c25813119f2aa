package storetest

// Helpers the tests share: results to store, and reading them back.

import (
	"context"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// result returns a minimal result; status open gets DICOM and Exposure.
func result(scanID, ip string, port uint16, status probe.Status) probe.Result {
	r := probe.Result{
		ScanID: scanID,
		IP:     netip.MustParseAddr(ip),
		Port:   port,
		Time:   t0.Add(time.Duration(port) * time.Millisecond),
		Status: status,
	}
	if status == probe.StatusOpen {
		r.DICOM = &probe.DICOM{Association: probe.AssociationAccepted, CalledAE: "ANY-SCP", CallingAE: "PACSWATCH", MaxPDU: 16384}
		r.Exposure = &probe.Exposure{
			Level: probe.LevelQuery, Studies: 42, StudiesExact: true, Instances: 4200,
			InstancesSource: probe.InstancesSourceStudyAttr, Modalities: map[string]int64{"CT": 40, "MR": 2},
		}
	}
	return r
}

// readResults returns every result of a scan, in the order Results gives.
func readResults(t *testing.T, s store.Reader, scanID string) []probe.Result {
	t.Helper()
	var rs []probe.Result
	if err := s.Results(context.Background(), scanID, func(r probe.Result) error {
		rs = append(rs, r)
		return nil
	}); err != nil {
		t.Fatalf("Results(%q): %v", scanID, err)
	}
	return rs
}

// readDone returns the done set of a scan.
func readDone(t *testing.T, s store.Reader, scanID string) map[netip.AddrPort]bool {
	t.Helper()
	done := make(map[netip.AddrPort]bool)
	if err := s.Done(context.Background(), scanID, func(ip netip.Addr, port uint16) error {
		k := netip.AddrPortFrom(ip, port)
		if done[k] {
			t.Errorf("Done(%q) gave %v twice", scanID, k)
		}
		done[k] = true
		return nil
	}); err != nil {
		t.Fatalf("Done(%q): %v", scanID, err)
	}
	return done
}

// encode returns r's JSON, failing the test if it does not encode.
func encode(t *testing.T, r probe.Result) string {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	return string(b)
}

// equalResults reports the first difference between two result lists.
func equalResults(t *testing.T, got, want []probe.Result) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d results, want %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if g, w := encode(t, got[i]), encode(t, want[i]); g != w {
			t.Errorf("result %d:\n got %s\nwant %s", i, g, w)
			return
		}
	}
}
