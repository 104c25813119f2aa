// Package deptest holds, as a test, the dependency rules that docs/ARCHITECTURE.md states
// (after tailscale's tstest/deptest): the pacswatch binary links no testing package and no
// test kit; the protocol packages, internal/dicom/..., link neither net/http nor
// database/sql; and package probe, the common floor of the probers, does not import the
// DICOM packages. It asks `go list` what imports what, so it needs the go command. It has no
// code of its own: the rules are in deptest_test.go.
package deptest
