package geo_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/pacswatch/pacswatch/internal/geo"
	"github.com/pacswatch/pacswatch/internal/geo/geotest"
)

var fuzzAddrs = []netip.Addr{
	netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.1.2.3"), netip.MustParseAddr("::1"),
	netip.MustParseAddr("::ffff:127.1.0.1"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("0.0.0.0"),
}

// FuzzOpen feeds arbitrary bytes to Open and OpenASN as a file: no panic, and whatever opens
// answers lookups with clean strings.
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	city := filepath.Join(dir, "city.mmdb")
	flat := filepath.Join(dir, "flat.mmdb")
	asn := filepath.Join(dir, "asn.mmdb")
	if err := geotest.WriteCity(city, "GeoLite2-City", geo.LayoutMaxMind, places); err != nil {
		f.Fatal(err)
	}
	if err := geotest.WriteCity(flat, "", geo.LayoutFlat, places); err != nil {
		f.Fatal(err)
	}
	if err := geotest.WriteASN(asn, "GeoLite2-ASN", []geotest.AS{{Prefix: netip.MustParsePrefix("127.0.0.0/8"), ASN: geo.ASN{Number: 1, Org: "x"}}}); err != nil {
		f.Fatal(err)
	}
	for _, p := range []string{city, flat, asn} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("\xab\xcd\xefMaxMind.com"))
	path := filepath.Join(dir, "fuzz.mmdb") // one file per worker process, rewritten each time
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if db, err := geo.Open(path); err == nil {
			for _, a := range fuzzAddrs {
				loc, ok := db.Lookup(a)
				if ok && (loc.Country == "" || len(loc.Country) != 2) {
					t.Errorf("Lookup(%s) = %+v: found without a country code", a, loc)
				}
				for _, s := range []string{loc.CountryName, loc.Region, loc.City} {
					checkClean(t, s)
				}
			}
			db.Close()
		}
		if db, err := geo.OpenASN(path); err == nil {
			for _, a := range fuzzAddrs {
				as, ok := db.Lookup(a)
				if ok && as.Number == 0 {
					t.Errorf("Lookup(%s) = %+v: found without a number", a, as)
				}
				checkClean(t, as.Org)
			}
			db.Close()
		}
	})
}

// FuzzCityRoundTrip writes a location in either layout and reads it back: clean input comes
// back unchanged, any input comes back clean.
func FuzzCityRoundTrip(f *testing.F) {
	f.Add("IN", "India", "Maharashtra", "Mumbai", false)
	f.Add("tr", "", "İstanbul", "", true)
	f.Add("DE", "Ger\x00many", "\u202eBerlin", strings.Repeat("x", 300), false)
	f.Fuzz(func(t *testing.T, country, name, region, city string, flat bool) {
		layout := geo.LayoutMaxMind
		if flat {
			layout, name = geo.LayoutFlat, ""
		}
		in := geo.Location{Country: country, CountryName: name, Region: region, City: city}
		path := filepath.Join(t.TempDir(), "rt.mmdb")
		err := geotest.WriteCity(path, "GeoLite2-City", layout, []geotest.Place{{Prefix: netip.MustParsePrefix("127.0.0.0/8"), Location: in}})
		if err != nil {
			t.Skip(err) // the writer refuses some inputs
		}
		db, err := geo.Open(path)
		validCode := len(country) == 2 && isLetter(country[0]) && isLetter(country[1])
		if err != nil {
			// Without a valid code the records are neither layout's; with one they must open.
			if validCode {
				t.Fatalf("Open: %v", err)
			}
			return
		}
		defer db.Close()
		got, ok := db.Lookup(netip.MustParseAddr("127.0.0.1"))
		if ok != validCode {
			t.Fatalf("Lookup ok = %v for country %q", ok, country)
		}
		if !ok {
			return
		}
		if got.Country != strings.ToUpper(country) {
			t.Errorf("Country = %q, want %q", got.Country, strings.ToUpper(country))
		}
		for _, p := range []struct{ got, in string }{{got.Region, region}, {got.City, city}} {
			checkClean(t, p.got)
			if isPlain(p.in) && p.got != p.in {
				t.Errorf("clean %q read back as %q", p.in, p.got)
			}
		}
		if isPlain(name) && name != "" && got.CountryName != name {
			t.Errorf("country name %q read back as %q", name, got.CountryName)
		}
		checkClean(t, got.CountryName)
	})
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// isPlain reports whether s is printable ASCII, trimmed and short: what must come back as is.
func isPlain(s string) bool {
	if len(s) > geo.MaxName || strings.TrimSpace(s) != s {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func checkClean(t *testing.T, s string) {
	t.Helper()
	if len(s) > geo.MaxName || !utf8.ValidString(s) || strings.TrimSpace(s) != s {
		t.Errorf("unclean string %q", s)
	}
	for _, r := range s {
		if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) {
			t.Errorf("string %q has control or format character %U", s, r)
		}
	}
}
