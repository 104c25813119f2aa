// Package geo maps IP addresses to places and networks with MaxMind DB files, the binary format
// specified at maxmind.github.io/MaxMind-DB (format version 2), read through
// github.com/oschwald/maxminddb-golang/v2.
//
// Two record layouts give a location:
//   - MaxMind's GeoIP2/GeoLite2 City and Country layout: nested country.iso_code,
//     country.names.en, subdivisions[0].names.en and city.names.en;
//   - the flat layout of the ip-location-db City and Country databases: country_code, state1,
//     city.
//
// An ASN database (GeoLite2-ASN, ip-location-db's asn databases, GeoIP2-ISP) gives
// autonomous_system_number and autonomous_system_organization.
//
// The kind of a file is read from its records, not trusted from its name: Open and OpenASN
// look at the first records (and at the metadata's database_type when the file holds none) and
// refuse a file of the other kind with ErrWrongKind, so that an ASN database given where a
// city database is expected fails at once with a clear message rather than mapping every
// address to "unknown".
//
// Strings from a database are made safe to print (no control characters, capped length).
package geo

import (
	"errors"
	"fmt"
	"github.com/pacswatch/pacswatch/internal/textsafe"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"
)

var (
	// ErrNotMMDB is returned for a file that is not a readable MaxMind DB.
	ErrNotMMDB = errors.New("geo: not a MaxMind DB file")
	// ErrWrongKind is returned for a MaxMind DB whose records are not of the kind asked for:
	// an ASN database opened as a location database, or the reverse.
	ErrWrongKind = errors.New("geo: wrong kind of MaxMind DB")
)

// MaxName is the cap, in bytes of UTF-8, on every string a lookup returns.
const MaxName = 128

// Open tells a file's kind and layout from up to sampleRecords records, found among the first
// sampleNetworks networks of its search tree (empty ones included, so that a corrupt or
// hostile tree with no data cannot make Open walk it all).
const (
	sampleRecords  = 64
	sampleNetworks = 4096
)

// Kind is what a MaxMind DB's records describe.
type Kind uint8

const (
	KindUnknown Kind = iota // neither a location nor an ASN record
	KindCity                // country, region (state) and city
	KindCountry             // country only
	KindASN                 // autonomous system number and organization
)

func (k Kind) String() string {
	switch k {
	case KindCity:
		return "city"
	case KindCountry:
		return "country"
	case KindASN:
		return "ASN"
	}
	return "unknown"
}

// Layout is how a location database spells its records.
type Layout uint8

const (
	LayoutMaxMind Layout = iota // GeoIP2/GeoLite2: country.iso_code, subdivisions, city.names
	LayoutFlat                  // ip-location-db: country_code, state1, city
)

func (l Layout) String() string {
	if l == LayoutFlat {
		return "flat"
	}
	return "maxmind"
}

// Location is where an address is, as far as the database knows. Empty fields are unknown.
type Location struct {
	Country     string // ISO 3166-1 alpha-2 code, upper case
	CountryName string // English short name
	Region      string // first-level subdivision: state, province, region
	City        string
}

// Info describes an opened database.
type Info struct {
	Type   string    // the metadata's database_type, e.g. "GeoLite2-City"
	Kind   Kind      // what its records hold
	Layout Layout    // location databases only
	Built  time.Time // the metadata's build_epoch, UTC
}

func (i Info) String() string {
	s := i.Type
	if s == "" {
		s = i.Kind.String() + " database"
	}
	if !i.Built.IsZero() {
		s += " built " + i.Built.Format(time.DateOnly)
	}
	return s
}

// DB is an open location database. Its methods are safe for concurrent use; Close must not
// run concurrently with them.
type DB struct {
	r    *maxminddb.Reader
	info Info
}

// ASNDB is an open ASN database. Its methods are safe for concurrent use; Close must not run
// concurrently with them.
type ASNDB struct {
	r    *maxminddb.Reader
	info Info
}

// ASN is an autonomous system.
type ASN struct {
	Number uint32
	Org    string
}

// Open opens a city or country database in either layout. A missing or unreadable file, a file
// that is not a MaxMind DB (ErrNotMMDB) and an ASN database (ErrWrongKind) are errors that name
// the file.
func Open(path string) (*DB, error) {
	r, info, err := open(path)
	if err != nil {
		return nil, err
	}
	if info.Kind != KindCity && info.Kind != KindCountry {
		r.Close()
		return nil, wrongKind(path, info, "a city or country database")
	}
	return &DB{r: r, info: info}, nil
}

// OpenASN opens an ASN database. Errors are as for Open; a location database is ErrWrongKind.
func OpenASN(path string) (*ASNDB, error) {
	r, info, err := open(path)
	if err != nil {
		return nil, err
	}
	if info.Kind != KindASN {
		r.Close()
		return nil, wrongKind(path, info, "an ASN database")
	}
	return &ASNDB{r: r, info: info}, nil
}

func wrongKind(path string, info Info, want string) error {
	typ := ""
	if info.Type != "" {
		typ = fmt.Sprintf(" (database type %q)", info.Type)
	}
	return fmt.Errorf("%w: %s holds %s records%s, not %s", ErrWrongKind, path, info.Kind, typ, want)
}

func open(path string) (*maxminddb.Reader, Info, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, Info{}, fmt.Errorf("open MaxMind DB: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, Info{}, fmt.Errorf("open MaxMind DB: %s is not a regular file", path)
	}
	r, err := maxminddb.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, Info{}, fmt.Errorf("open MaxMind DB: %w", err)
		}
		return nil, Info{}, fmt.Errorf("%w: %s: %v", ErrNotMMDB, path, err)
	}
	info, err := inspect(r)
	if err != nil {
		r.Close()
		return nil, Info{}, fmt.Errorf("%w: %s: %v", ErrNotMMDB, path, err)
	}
	return r, info, nil
}

// inspect tells a database's kind and layout from its first records, or from its
// database_type when it holds none.
func inspect(r *maxminddb.Reader) (Info, error) {
	info := Info{Type: clean(r.Metadata.DatabaseType), Kind: KindUnknown}
	if e := r.Metadata.BuildEpoch; e > 0 && e < 1<<40 {
		info.Built = time.Unix(int64(e), 0).UTC()
	}
	var votes [KindASN + 1]int
	var flat, nested int
	n, seen := 0, 0
	for res := range r.Networks(maxminddb.IncludeNetworksWithoutData()) {
		if n == sampleRecords || seen == sampleNetworks {
			break
		}
		seen++
		if err := res.Err(); err != nil {
			return info, err
		}
		if !res.Found() {
			continue
		}
		var rec map[string]any
		if err := res.Decode(&rec); err != nil {
			var te maxminddb.UnmarshalTypeError
			if errors.As(err, &te) {
				n++
				continue // not a map: neither layout
			}
			return info, err
		}
		if len(rec) == 0 {
			continue
		}
		n++
		k, l := classify(rec)
		votes[k]++
		if k == KindCity || k == KindCountry {
			if l == LayoutFlat {
				flat++
			} else {
				nested++
			}
		}
	}
	if n == 0 {
		info.Kind = kindFromType(info.Type)
		return info, nil
	}
	best := KindUnknown
	for k := KindCity; k <= KindASN; k++ {
		if votes[k] > votes[best] {
			best = k
		}
	}
	// A city database has some records with a country only; it is a city database if any
	// record has a region or city.
	if best == KindCountry && votes[KindCity] > 0 {
		best = KindCity
	}
	info.Kind = best
	if flat > nested {
		info.Layout = LayoutFlat
	}
	return info, nil
}

// classify tells what one record holds.
func classify(rec map[string]any) (Kind, Layout) {
	if _, ok := rec["autonomous_system_number"]; ok {
		return KindASN, LayoutMaxMind
	}
	for _, key := range []string{"country", "registered_country"} {
		if c, ok := rec[key].(map[string]any); ok {
			if _, ok := c["iso_code"].(string); ok {
				_, city := rec["city"].(map[string]any)
				_, sub := rec["subdivisions"].([]any)
				if city || sub {
					return KindCity, LayoutMaxMind
				}
				return KindCountry, LayoutMaxMind
			}
		}
	}
	if _, ok := rec["country_code"].(string); ok {
		_, city := rec["city"].(string)
		_, state := rec["state1"].(string)
		if city || state {
			return KindCity, LayoutFlat
		}
		return KindCountry, LayoutFlat
	}
	return KindUnknown, LayoutMaxMind
}

// kindFromType guesses the kind of an empty database from its database_type.
func kindFromType(t string) Kind {
	t = strings.ToLower(t)
	switch {
	case strings.Contains(t, "asn") || strings.HasSuffix(t, "-isp"):
		return KindASN
	case strings.Contains(t, "city"):
		return KindCity
	case strings.Contains(t, "country"):
		return KindCountry
	}
	return KindUnknown
}

// Info describes the database.
func (db *DB) Info() Info { return db.info }

// Close releases the database.
func (db *DB) Close() error { return db.r.Close() }

// maxmindRecord is the part of a GeoIP2/GeoLite2 City or Country record that Lookup reads.
type maxmindRecord struct {
	Country           maxmindCountry `maxminddb:"country"`
	RegisteredCountry maxmindCountry `maxminddb:"registered_country"`
	Subdivisions      []struct {
		ISOCode string            `maxminddb:"iso_code"`
		Names   map[string]string `maxminddb:"names"`
	} `maxminddb:"subdivisions"`
	City struct {
		Names map[string]string `maxminddb:"names"`
	} `maxminddb:"city"`
}

type maxmindCountry struct {
	ISOCode string            `maxminddb:"iso_code"`
	Names   map[string]string `maxminddb:"names"`
}

// flatRecord is an ip-location-db City or Country record.
type flatRecord struct {
	CountryCode string `maxminddb:"country_code"`
	State1      string `maxminddb:"state1"`
	City        string `maxminddb:"city"`
}

// Lookup returns where addr is. ok is false when the database has no record for addr, or a
// record without a valid country code, or one it cannot decode (which counts as unknown).
func (db *DB) Lookup(addr netip.Addr) (loc Location, ok bool) {
	res := db.r.Lookup(addr.Unmap())
	if !res.Found() {
		return Location{}, false
	}
	if db.info.Layout == LayoutFlat {
		var rec flatRecord
		if res.Decode(&rec) != nil {
			return Location{}, false
		}
		loc = Location{Country: countryCode(rec.CountryCode), Region: clean(rec.State1), City: clean(rec.City)}
	} else {
		var rec maxmindRecord
		if res.Decode(&rec) != nil {
			return Location{}, false
		}
		c := rec.Country
		if countryCode(c.ISOCode) == "" {
			c = rec.RegisteredCountry
		}
		loc = Location{Country: countryCode(c.ISOCode), CountryName: clean(c.Names["en"]), City: clean(rec.City.Names["en"])}
		if len(rec.Subdivisions) > 0 {
			s := rec.Subdivisions[0]
			loc.Region = clean(s.Names["en"])
			if loc.Region == "" {
				loc.Region = clean(s.ISOCode)
			}
		}
	}
	if loc.Country == "" {
		return Location{}, false
	}
	if loc.CountryName == "" {
		loc.CountryName = CountryName(loc.Country)
	}
	return loc, true
}

// Info describes the database.
func (db *ASNDB) Info() Info { return db.info }

// Close releases the database.
func (db *ASNDB) Close() error { return db.r.Close() }

// Lookup returns the autonomous system that announces addr. ok is false when the database has
// no record for addr, a record without a number, or one it cannot decode.
func (db *ASNDB) Lookup(addr netip.Addr) (ASN, bool) {
	res := db.r.Lookup(addr.Unmap())
	if !res.Found() {
		return ASN{}, false
	}
	var rec struct {
		Number uint32 `maxminddb:"autonomous_system_number"`
		Org    string `maxminddb:"autonomous_system_organization"`
	}
	if res.Decode(&rec) != nil || rec.Number == 0 {
		return ASN{}, false
	}
	return ASN{Number: rec.Number, Org: clean(rec.Org)}, true
}

// countryCode returns c upper-cased if it is two ASCII letters, else "".
func countryCode(c string) string {
	if len(c) != 2 {
		return ""
	}
	c = strings.ToUpper(c)
	for i := range 2 {
		if c[i] < 'A' || c[i] > 'Z' {
			return ""
		}
	}
	return c
}

// clean makes a name from a database safe to show: see textsafe.Clean.
func clean(s string) string { return textsafe.Clean(s, MaxName) }
