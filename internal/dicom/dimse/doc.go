// Package dimse implements the DICOM Message Service Element of PS3.7 (DICOM
// Part 7, "Message Exchange") for the DIMSE-C services pacswatch uses: the
// command sets of §9.3 and Annex E, the status codes of Annex C, and the
// service class user side of C-ECHO, C-FIND (with C-CANCEL), C-GET (with its
// C-STORE sub-operations) and C-MOVE as PS3.4 Annex A and C define them,
// on top of the Upper Layer of package ul.
//
// The operations use an association the caller negotiated (see ProposeQR and
// ProposeGet) and releases, one operation at a time. An operation that
// returns a nil error leaves the association usable, whatever the status.
// One that fails aborts it (A-ABORT, then the connection closed) unless the
// peer aborted first; when its context is done mid-operation, it returns
// ctx.Err().
//
// Identifiers from peers are untrusted: they are decoded with an allow-list,
// so that keys pacswatch may not keep are dropped at parse time, and bounded
// in size. A callback sees one response at a time, so memory stays constant
// whatever the number of matches.
package dimse
