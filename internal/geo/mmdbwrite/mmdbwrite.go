// Package mmdbwrite writes small MaxMind DB files (maxmind.github.io/MaxMind-DB) in the
// layouts package geo reads: GeoLite2 City/Country, the flat ip-location-db layout, and ASN.
// The demo writes the map of its simulated fleet with it, and package geotest wraps it for
// tests. Loopback and private networks are allowed (IncludeReservedNetworks), so that
// simulated fleets on 127.0.0.0/8 can be placed anywhere in the world.
package mmdbwrite

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/pacswatch/pacswatch/internal/geo"
)

// BuildEpoch is the build time written into every file (2026-01-01 UTC), so that files and
// the reports made with them are reproducible.
const BuildEpoch = 1767225600

// description is the files' description, unchanged since they were written for tests only.
const description = "pacswatch test database"

// Place is a network and where it is.
type Place struct {
	Prefix   netip.Prefix
	Location geo.Location
}

// AS is a network and the autonomous system that announces it.
type AS struct {
	Prefix netip.Prefix
	ASN    geo.ASN
}

// WriteCity writes a city database to path in the given layout with the given
// database_type (e.g. "GeoLite2-City"; ip-location-db's files carry their own).
func WriteCity(path, dbType string, layout geo.Layout, places []Place) error {
	records := make([]record, len(places))
	for i, p := range places {
		records[i] = record{p.Prefix, cityRecord(layout, p.Location)}
	}
	return write(path, dbType, records)
}

// WriteASN writes an ASN database (GeoLite2-ASN layout) to path.
func WriteASN(path, dbType string, systems []AS) error {
	records := make([]record, len(systems))
	for i, s := range systems {
		records[i] = record{s.Prefix, mmdbtype.Map{
			"autonomous_system_number":       mmdbtype.Uint32(s.ASN.Number),
			"autonomous_system_organization": mmdbtype.String(s.ASN.Org),
		}}
	}
	return write(path, dbType, records)
}

// WriteRecords writes arbitrary records, for files of unexpected shapes.
func WriteRecords(path, dbType string, prefixes []netip.Prefix, values []mmdbtype.DataType) error {
	if len(prefixes) != len(values) {
		return fmt.Errorf("mmdbwrite: %d prefixes, %d values", len(prefixes), len(values))
	}
	records := make([]record, len(values))
	for i := range values {
		records[i] = record{prefixes[i], values[i]}
	}
	return write(path, dbType, records)
}

type record struct {
	prefix netip.Prefix
	value  mmdbtype.DataType
}

func cityRecord(layout geo.Layout, l geo.Location) mmdbtype.Map {
	if layout == geo.LayoutFlat {
		m := mmdbtype.Map{"country_code": mmdbtype.String(l.Country)}
		if l.Region != "" {
			m["state1"] = mmdbtype.String(l.Region)
		}
		if l.City != "" {
			m["city"] = mmdbtype.String(l.City)
		}
		return m
	}
	country := mmdbtype.Map{"iso_code": mmdbtype.String(l.Country)}
	if l.CountryName != "" {
		country["names"] = mmdbtype.Map{"en": mmdbtype.String(l.CountryName)}
	}
	m := mmdbtype.Map{"country": country, "registered_country": country}
	if l.Region != "" {
		m["subdivisions"] = mmdbtype.Slice{mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(l.Region)}}}
	}
	if l.City != "" {
		m["city"] = mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(l.City)}}
	}
	return m
}

func write(path, dbType string, records []record) error {
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            dbType,
		Description:             map[string]string{"en": description},
		IncludeReservedNetworks: true,
		BuildEpoch:              BuildEpoch,
		RecordSize:              24,
	})
	if err != nil {
		return fmt.Errorf("mmdbwrite: %w", err)
	}
	for _, r := range records {
		n := &net.IPNet{IP: r.prefix.Addr().AsSlice(), Mask: net.CIDRMask(r.prefix.Bits(), r.prefix.Addr().BitLen())}
		if err := tree.Insert(n, r.value); err != nil {
			return fmt.Errorf("mmdbwrite: insert %s: %w", r.prefix, err)
		}
	}
	var buf bytes.Buffer
	if _, err := tree.WriteTo(&buf); err != nil {
		return fmt.Errorf("mmdbwrite: %w", err)
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
