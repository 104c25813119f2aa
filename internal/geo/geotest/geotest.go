// Package geotest writes small MaxMind DB files for tests, through package mmdbwrite: the
// names below are mmdbwrite's, kept here so that tests need one import.
package geotest

import (
	"net/netip"

	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/pacswatch/pacswatch/internal/geo"
	"github.com/pacswatch/pacswatch/internal/geo/mmdbwrite"
)

// BuildEpoch is the build time written into every file (2026-01-01 UTC).
const BuildEpoch = mmdbwrite.BuildEpoch

// Place is a network and where it is; AS a network and the autonomous system that announces it.
type (
	Place = mmdbwrite.Place
	AS    = mmdbwrite.AS
)

// WriteCity writes a city database to path, as mmdbwrite.WriteCity does.
func WriteCity(path, dbType string, layout geo.Layout, places []Place) error {
	return mmdbwrite.WriteCity(path, dbType, layout, places)
}

// WriteASN writes an ASN database to path, as mmdbwrite.WriteASN does.
func WriteASN(path, dbType string, systems []AS) error {
	return mmdbwrite.WriteASN(path, dbType, systems)
}

// WriteRecords writes arbitrary records, for files of unexpected shapes, as
// mmdbwrite.WriteRecords does.
func WriteRecords(path, dbType string, prefixes []netip.Prefix, values []mmdbtype.DataType) error {
	return mmdbwrite.WriteRecords(path, dbType, prefixes, values)
}
