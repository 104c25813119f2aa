package geo_test

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/pacswatch/pacswatch/internal/geo"
	"github.com/pacswatch/pacswatch/internal/geo/geotest"
)

var places = []geotest.Place{
	{Prefix: netip.MustParsePrefix("127.1.0.0/16"), Location: geo.Location{Country: "IN", CountryName: "India", Region: "Maharashtra", City: "Mumbai"}},
	{Prefix: netip.MustParsePrefix("127.2.0.0/16"), Location: geo.Location{Country: "IN", CountryName: "India", Region: "Karnataka", City: "Bengaluru"}},
	{Prefix: netip.MustParsePrefix("127.3.0.0/16"), Location: geo.Location{Country: "TR", CountryName: "Türkiye"}},
	{Prefix: netip.MustParsePrefix("::1/128"), Location: geo.Location{Country: "DE", CountryName: "Germany", Region: "Berlin", City: "Berlin"}},
}

func writeCity(t *testing.T, dbType string, layout geo.Layout, ps []geotest.Place) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "city.mmdb")
	if err := geotest.WriteCity(path, dbType, layout, ps); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeASN(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "asn.mmdb")
	err := geotest.WriteASN(path, "GeoLite2-ASN", []geotest.AS{
		{Prefix: netip.MustParsePrefix("127.1.0.0/16"), ASN: geo.ASN{Number: 9829, Org: "National Internet Backbone"}},
		{Prefix: netip.MustParsePrefix("127.3.0.0/16"), ASN: geo.ASN{Number: 9121, Org: "Turk Telekom"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLookup(t *testing.T) {
	type lookup struct {
		addr   string
		want   geo.Location
		wantOK bool
	}
	mumbai := geo.Location{Country: "IN", CountryName: "India", Region: "Maharashtra", City: "Mumbai"}
	for _, tc := range []struct {
		name       string
		dbType     string
		layout     geo.Layout
		wantKind   geo.Kind
		wantLayout geo.Layout
		lookups    []lookup
	}{
		{"GeoLite2-City", "GeoLite2-City", geo.LayoutMaxMind, geo.KindCity, geo.LayoutMaxMind, []lookup{
			{"127.1.2.3", mumbai, true},
			{"::ffff:127.1.2.3", mumbai, true},
			{"127.2.0.1", geo.Location{Country: "IN", CountryName: "India", Region: "Karnataka", City: "Bengaluru"}, true},
			{"127.3.0.1", geo.Location{Country: "TR", CountryName: "Türkiye"}, true},
			{"::1", geo.Location{Country: "DE", CountryName: "Germany", Region: "Berlin", City: "Berlin"}, true},
			{"127.9.0.1", geo.Location{}, false},
			{"::2", geo.Location{}, false},
		}},
		// ip-location-db's flat layout has no country names (geotest writes none): they come
		// from the built-in table.
		{"ip-location-db city", "geolite2-city-ipv4", geo.LayoutFlat, geo.KindCity, geo.LayoutFlat, []lookup{
			{"127.1.2.3", mumbai, true},
			{"127.3.0.1", geo.Location{Country: "TR", CountryName: "Türkiye"}, true},
			{"127.9.0.1", geo.Location{}, false},
		}},
		// The kind comes from the records, not from a misleading or missing database_type.
		{"flat, no type", "", geo.LayoutFlat, geo.KindCity, geo.LayoutFlat, []lookup{{"127.1.0.9", mumbai, true}}},
		{"maxmind, misleading type", "Some-ASN-Thing", geo.LayoutMaxMind, geo.KindCity, geo.LayoutMaxMind, []lookup{{"127.1.0.9", mumbai, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := geo.Open(writeCity(t, tc.dbType, tc.layout, places))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			info := db.Info()
			if info.Kind != tc.wantKind || info.Layout != tc.wantLayout || info.Type != tc.dbType {
				t.Errorf("Info() = %+v, want kind %v layout %v type %q", info, tc.wantKind, tc.wantLayout, tc.dbType)
			}
			if got, want := info.Built.Unix(), int64(geotest.BuildEpoch); got != want {
				t.Errorf("Built = %d, want %d", got, want)
			}
			for _, l := range tc.lookups {
				got, ok := db.Lookup(netip.MustParseAddr(l.addr))
				if got != l.want || ok != l.wantOK {
					t.Errorf("Lookup(%s) = %+v, %v; want %+v, %v", l.addr, got, ok, l.want, l.wantOK)
				}
			}
		})
	}
}

func TestCountryDatabases(t *testing.T) {
	ps := []geotest.Place{{Prefix: netip.MustParsePrefix("127.0.0.0/8"), Location: geo.Location{Country: "in"}}}
	for _, layout := range []geo.Layout{geo.LayoutMaxMind, geo.LayoutFlat} {
		t.Run(layout.String(), func(t *testing.T) {
			db, err := geo.Open(writeCity(t, "GeoLite2-Country", layout, ps))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if got := db.Info().Kind; got != geo.KindCountry {
				t.Errorf("Kind = %v, want country", got)
			}
			got, ok := db.Lookup(netip.MustParseAddr("127.0.0.1"))
			want := geo.Location{Country: "IN", CountryName: "India"}
			if got != want || !ok {
				t.Errorf("Lookup = %+v, %v; want %+v, true", got, ok, want)
			}
		})
	}
}

func TestASN(t *testing.T) {
	db, err := geo.OpenASN(writeASN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := db.Info().Kind; got != geo.KindASN {
		t.Errorf("Kind = %v, want ASN", got)
	}
	for _, tc := range []struct {
		addr   string
		want   geo.ASN
		wantOK bool
	}{
		{"127.1.0.1", geo.ASN{Number: 9829, Org: "National Internet Backbone"}, true},
		{"::ffff:127.3.0.1", geo.ASN{Number: 9121, Org: "Turk Telekom"}, true},
		{"127.2.0.1", geo.ASN{}, false},
	} {
		got, ok := db.Lookup(netip.MustParseAddr(tc.addr))
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("Lookup(%s) = %+v, %v; want %+v, %v", tc.addr, got, ok, tc.want, tc.wantOK)
		}
	}
}

// TestHostileStrings: names from a database are printable and capped.
func TestHostileStrings(t *testing.T) {
	long := strings.Repeat("é", 200)
	ps := []geotest.Place{{Prefix: netip.MustParsePrefix("127.0.0.0/8"), Location: geo.Location{
		Country: "IN", CountryName: "In\x1b[31mdia\u202e", Region: "  Maha\nrashtra\x00 ", City: long,
	}}}
	db, err := geo.Open(writeCity(t, "GeoLite2-City", geo.LayoutMaxMind, ps))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, _ := db.Lookup(netip.MustParseAddr("127.0.0.1"))
	want := geo.Location{Country: "IN", CountryName: "In[31mdia", Region: "Maha rashtra", City: strings.Repeat("é", geo.MaxName/2)}
	if got != want {
		t.Errorf("Lookup = %+v\nwant     %+v", got, want)
	}
}

// TestOpenErrors: a missing, unreadable, foreign or wrong-kind file is a clear error naming it.
func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	empty := filepath.Join(dir, "empty.mmdb")
	if err := os.WriteFile(text, []byte("this is not a MaxMind DB\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	city := writeCity(t, "GeoLite2-City", geo.LayoutMaxMind, places)
	asn := writeASN(t)
	odd := filepath.Join(dir, "odd.mmdb")
	if err := geotest.WriteRecords(odd, "Odd", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		[]mmdbtype.DataType{mmdbtype.Map{"colour": mmdbtype.String("blue")}}); err != nil {
		t.Fatal(err)
	}
	scalar := filepath.Join(dir, "scalar.mmdb")
	if err := geotest.WriteRecords(scalar, "GeoLite2-City", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		[]mmdbtype.DataType{mmdbtype.String("IN")}); err != nil {
		t.Fatal(err)
	}
	unreadable := filepath.Join(dir, "unreadable.mmdb")
	if b, err := os.ReadFile(city); err != nil || os.WriteFile(unreadable, b, 0o000) != nil {
		t.Fatal("copy city database")
	}
	openLoc := func(p string) error {
		db, err := geo.Open(p)
		if err == nil {
			db.Close()
		}
		return err
	}
	openASN := func(p string) error {
		db, err := geo.OpenASN(p)
		if err == nil {
			db.Close()
		}
		return err
	}
	for _, tc := range []struct {
		name   string
		open   func(string) error
		path   string
		is     error
		substr []string
	}{
		{"missing", openLoc, filepath.Join(dir, "nope.mmdb"), fs.ErrNotExist, []string{"nope.mmdb"}},
		{"directory", openLoc, dir, nil, []string{dir, "not a regular file"}},
		{"under a file", openLoc, filepath.Join(text, "x.mmdb"), nil, []string{"notes.txt/x.mmdb", "not a directory"}},
		{"unreadable", openLoc, unreadable, fs.ErrPermission, []string{"unreadable.mmdb", "permission denied"}},
		{"text file", openLoc, text, geo.ErrNotMMDB, []string{"notes.txt"}},
		{"empty file", openASN, empty, geo.ErrNotMMDB, []string{"empty.mmdb"}},
		{"ASN as location", openLoc, asn, geo.ErrWrongKind, []string{"asn.mmdb", "ASN records", `"GeoLite2-ASN"`, "not a city or country database"}},
		{"city as ASN", openASN, city, geo.ErrWrongKind, []string{"city.mmdb", "city records", "not an ASN database"}},
		{"unknown records", openLoc, odd, geo.ErrWrongKind, []string{"odd.mmdb", "unknown records"}},
		{"scalar records", openLoc, scalar, geo.ErrWrongKind, []string{"scalar.mmdb", "unknown records"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "unreadable" && os.Geteuid() == 0 {
				t.Skip("root reads a file whatever its mode")
			}
			err := tc.open(tc.path)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
			for _, s := range tc.substr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

// TestEmptyDatabase: a file with no records is told apart by its database_type.
func TestEmptyDatabase(t *testing.T) {
	for _, tc := range []struct {
		dbType string
		want   geo.Kind
	}{
		{"GeoLite2-City", geo.KindCity},
		{"GeoIP2-Country", geo.KindCountry},
		{"GeoLite2-ASN", geo.KindASN},
		{"GeoIP2-ISP", geo.KindASN},
		{"something", geo.KindUnknown},
	} {
		path := writeCity(t, tc.dbType, geo.LayoutMaxMind, nil)
		var got geo.Kind
		if db, err := geo.Open(path); err == nil {
			got = db.Info().Kind
			db.Close()
		} else if db, err := geo.OpenASN(path); err == nil {
			got = db.Info().Kind
			db.Close()
		}
		if got != tc.want {
			t.Errorf("%s: kind %v, want %v", tc.dbType, got, tc.want)
		}
	}
}

func TestCountryName(t *testing.T) {
	for _, tc := range []struct{ code, want string }{
		{"IN", "India"}, {"in", "India"}, {"TR", "Türkiye"}, {"XK", "Kosovo"}, {"BO", "Bolivia"}, {"??", ""}, {"", ""},
	} {
		if got := geo.CountryName(tc.code); got != tc.want {
			t.Errorf("CountryName(%q) = %q, want %q", tc.code, got, tc.want)
		}
	}
}

func TestInfoString(t *testing.T) {
	db, err := geo.Open(writeCity(t, "GeoLite2-City", geo.LayoutMaxMind, places))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got, want := db.Info().String(), "GeoLite2-City built 2026-01-01"; got != want {
		t.Errorf("Info().String() = %q, want %q", got, want)
	}
}
