package cli

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/store/memstore"
)

// TestScanTable: the end-of-scan table lists the services that answered, most studies first,
// at most 20, and says how many answered; closed and not-DICOM targets stay out.
func TestScanTable(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	sc, err := st.CreateScan(ctx, store.Scan{Targets: []string{"127.0.0.0/24"}, Total: 40})
	if err != nil {
		t.Fatal(err)
	}
	var rs []probe.Result
	for i := range 30 {
		r := probe.Result{IP: netip.AddrFrom4([4]byte{127, 0, 0, byte(i + 1)}), Port: 4242, Status: probe.StatusOpen,
			DICOM:    &probe.DICOM{Association: probe.AssociationAccepted, Product: "DCMTK 3.6.7", AECheck: probe.AECheckNone},
			Exposure: &probe.Exposure{Level: probe.LevelQuery, Studies: int64(i * 1000), Instances: int64(i * 5000), Retrieve: probe.RetrieveRefused}}
		rs = append(rs, r)
	}
	rs = append(rs,
		probe.Result{IP: netip.MustParseAddr("127.0.1.1"), Port: 104, Status: probe.StatusOpen, Exposure: &probe.Exposure{Level: probe.LevelNotDICOM}},
		probe.Result{IP: netip.MustParseAddr("127.0.1.2"), Port: 8042, Status: probe.StatusOpen, Exposure: &probe.Exposure{Level: probe.LevelNotDICOM},
			Web: []probe.Web{{URL: "http://127.0.1.2:8042/", Product: "Orthanc", Version: "1.10.1", Auth: probe.AuthNone, Studies: 99999, Instances: 7}}},
	)
	if err := st.PutResults(ctx, sc.ID, rs, store.Progress{}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := printScanTable(ctx, &buf, st, sc.ID); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if lines[0] != "31 services answered (the 20 with the most studies below):" || len(lines) != 22 {
		t.Fatalf("table:\n%s", buf.String())
	}
	for i, want := range []string{"127.0.1.2:8042 Orthanc 1.10.1 web 99,999 7 - - none", "127.0.0.30:4242", "127.0.0.29:4242"} {
		if got := strings.Join(strings.Fields(lines[2+i]), " "); !strings.HasPrefix(got, want) {
			t.Errorf("row %d %q, want it to start with %q", i, got, want)
		}
	}
	if !strings.Contains(lines[3], "29,000") || !strings.Contains(lines[3], "145,000") || !strings.Contains(lines[3], "refused") {
		t.Errorf("row %q lacks its counts or retrieval", lines[3])
	}
	if strings.Contains(buf.String(), "127.0.1.1:") {
		t.Error("a not-DICOM target is in the table")
	}

	// One service: the administrator who scanned their own address reads it here.
	one := memstore.New()
	sc1, _ := one.CreateScan(ctx, store.Scan{Targets: []string{"127.0.0.1"}, Total: 1})
	_ = one.PutResults(ctx, sc1.ID, rs[3:4], store.Progress{})
	buf.Reset()
	if err := printScanTable(ctx, &buf, one, sc1.ID); err != nil {
		t.Fatal(err)
	}
	if want := "1 service answered:\n"; !strings.HasPrefix(buf.String(), want) || !strings.Contains(buf.String(), "3,000") {
		t.Errorf("one service:\n%s", buf.String())
	}
	// None: nothing printed.
	none := memstore.New()
	sc0, _ := none.CreateScan(ctx, store.Scan{Targets: []string{"127.0.0.1"}, Total: 1})
	buf.Reset()
	if err := printScanTable(ctx, &buf, none, sc0.ID); err != nil || buf.Len() != 0 {
		t.Errorf("no service: %v %q", err, buf.String())
	}
}
