package mmdbwrite_test

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/pacswatch/pacswatch/internal/geo"
	"github.com/pacswatch/pacswatch/internal/geo/mmdbwrite"
)

// TestWriteCityDemo writes a database as the demo does, one place per loopback
// address, reads it back through package geo, and writes it again to the same
// bytes: the demo's reports are reproducible.
func TestWriteCityDemo(t *testing.T) {
	lyon := geo.Location{Country: "FR", CountryName: "France", Region: "Auvergne-Rhône-Alpes", City: "Lyon"}
	places := []mmdbwrite.Place{
		{Prefix: netip.MustParsePrefix("127.0.10.1/32"), Location: lyon},
		{Prefix: netip.MustParsePrefix("127.0.10.2/32"), Location: geo.Location{Country: "BR"}},
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.mmdb"), filepath.Join(dir, "b.mmdb")
	for _, path := range []string{a, b} {
		if err := mmdbwrite.WriteCity(path, "pacswatch-demo-City", geo.LayoutMaxMind, places); err != nil {
			t.Fatal(err)
		}
	}
	db, err := geo.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got, want := db.Info().Built.Unix(), int64(mmdbwrite.BuildEpoch); got != want {
		t.Errorf("built %d, want %d", got, want)
	}
	for _, tc := range []struct {
		addr string
		want geo.Location
		ok   bool
	}{
		{"127.0.10.1", lyon, true},
		{"127.0.10.2", geo.Location{Country: "BR", CountryName: "Brazil"}, true},
		{"127.0.10.3", geo.Location{}, false},
	} {
		if got, ok := db.Lookup(netip.MustParseAddr(tc.addr)); got != tc.want || ok != tc.ok {
			t.Errorf("Lookup(%s) = %+v, %v; want %+v, %v", tc.addr, got, ok, tc.want, tc.ok)
		}
	}
	ba, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	bb, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ba, bb) {
		t.Error("two writes of the same places differ")
	}
}

func TestWriteASN(t *testing.T) {
	path := filepath.Join(t.TempDir(), "asn.mmdb")
	err := mmdbwrite.WriteASN(path, "GeoLite2-ASN", []mmdbwrite.AS{
		{Prefix: netip.MustParsePrefix("127.5.0.0/16"), ASN: geo.ASN{Number: 64500, Org: "Example Net"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	db, err := geo.OpenASN(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got, ok := db.Lookup(netip.MustParseAddr("127.5.1.1")); !ok || got != (geo.ASN{Number: 64500, Org: "Example Net"}) {
		t.Errorf("Lookup = %+v, %v; want AS64500 Example Net", got, ok)
	}
}

func TestWriteRecordsMismatch(t *testing.T) {
	err := mmdbwrite.WriteRecords(filepath.Join(t.TempDir(), "x.mmdb"), "x",
		[]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, []mmdbtype.DataType{})
	if err == nil || !strings.HasPrefix(err.Error(), "mmdbwrite: 1 prefixes, 0 values") {
		t.Errorf("error %v, want one saying 1 prefixes, 0 values", err)
	}
}
