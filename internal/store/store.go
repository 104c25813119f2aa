// Package store defines where scans and their per-target results are kept:
// the Reader that report, diff, scans and serve read through (a read-only
// handle must do), and the Store the scanner writes through, whatever the
// backend. Records are the SPEC's result record (probe.Result); a backend
// stores them only after Result.Sanitize, and never anything else a server
// sent.
//
// The scans of one run split with --shard I/N belong together: Groups
// gathers them (group.go), MergeResults reads their results as one stream,
// and Reader.Systems figures them per system (an address, whichever shard
// holds its ports) without handing each result over. Only finished groups
// (every shard finished) are compared (SPEC "report", "many machines").
//
// Backends live in sub-packages (store/sqlite, store/memstore) and import
// this one, never the reverse; choosing a backend from a --db value is the
// caller's job. The conformance suite every backend passes is
// store/storetest.
package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/textsafe"
)

var (
	// ErrNotFound is returned for a scan that does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrExists is returned by CreateScan for an ID already taken.
	ErrExists = errors.New("store: already exists")
	// ErrCorrupt is returned for a database that is not a pacswatch store,
	// or whose contents cannot be decoded.
	ErrCorrupt = errors.New("store: not a pacswatch database or corrupt")
	// ErrReadOnly is returned by the write methods of a store opened
	// read-only (for report, diff, scans and serve).
	ErrReadOnly = errors.New("store: opened read-only")
)

// Scan describes one run of `pacswatch scan` (one shard of it).
type Scan struct {
	// ID identifies the scan in its store. CreateScan assigns a short one
	// when it is empty.
	ID   string
	Name string // --name label, may be empty

	Started  time.Time // CreateScan sets the current time when zero
	Finished time.Time // zero while the scan has not finished

	Targets  []string          // the targets as given on the command line
	Settings map[string]string // flags as given, to resume with the same settings
	Total    uint64            // number of host:port pairs in this shard
	Seed     uint64            // seed of the target permutation
	Shard    string            // "I/N", empty for an unsharded scan

	// SpaceDigest identifies the target space the scan walks (targets as
	// resolved, ports, exclusions, seed, shard): --resume refuses a scan
	// whose space would differ. Opaque to the store; empty for old scans.
	SpaceDigest string
	// Exclusions are the exclusion entries (--exclude, --exclude-file, as
	// read when the scan started) that shaped the space, so that --resume
	// rebuilds the same permutation whatever the exclusion file says now.
	Exclusions []string

	// Progress is the last checkpoint written with PutResults.
	// CreateScan ignores it.
	Progress Progress
}

// Progress is the scanner's checkpoint, written in the same transaction as
// the results it covers.
type Progress struct {
	// Done is the number of targets, in permutation order from the first,
	// that are finished: every one of them has its result stored.
	Done uint64
	// Excluded is how many of the Done targets were left alone, never
	// contacted, because an exclusion added after the scan started names
	// them (SPEC "Safety of a run"). No result is stored for them.
	Excluded uint64
	// Tallies counts, per port, the Done targets that have no stored
	// result: closed, filtered and unreachable targets, which a scan counts
	// rather than stores (SPEC "Scale and discovery", unless --all-targets),
	// and the excluded ones (their sum over the ports is Excluded). Like
	// Done, it is the whole scan's, written with the results it goes with:
	// PutResults replaces the stored tallies with it. Nil: no such target.
	Tallies map[uint16]Tally
}

// Tally counts one port's targets that were probed, or left alone, and got
// no stored result (Progress.Tallies).
type Tally struct {
	Closed      uint64 // connection refused
	Filtered    uint64 // no answer before the connect timeout
	Unreachable uint64 // no route: ICMP unreachable, or none locally
	Excluded    uint64 // never contacted: excluded after the scan started
}

// Add adds u to t.
func (t *Tally) Add(u Tally) {
	t.Closed += u.Closed
	t.Filtered += u.Filtered
	t.Unreachable += u.Unreachable
	t.Excluded += u.Excluded
}

// Probed returns how many of the tallied targets were contacted: all but
// the excluded ones.
func (t Tally) Probed() uint64 { return t.Closed + t.Filtered + t.Unreachable }

// Total returns the tallies of every port added up.
func (p Progress) Total() Tally {
	var sum Tally
	for _, t := range p.Tallies {
		sum.Add(t)
	}
	return sum
}

// Equal reports whether p and q are the same checkpoint (Progress holds a
// map, so == does not compare it). A nil and an empty Tallies are equal,
// and so are a port's zero tally and no entry for it.
func (p Progress) Equal(q Progress) bool {
	if p.Done != q.Done || p.Excluded != q.Excluded {
		return false
	}
	for port, t := range p.Tallies {
		if q.Tallies[port] != t {
			return false
		}
	}
	for port, t := range q.Tallies {
		if p.Tallies[port] != t {
			return false
		}
	}
	return true
}

// Clone returns p with a copy of its Tallies, so that the copy shares no
// map with p.
func (p Progress) Clone() Progress {
	if p.Tallies != nil {
		m := make(map[uint16]Tally, len(p.Tallies))
		for port, t := range p.Tallies {
			if t != (Tally{}) {
				m[port] = t
			}
		}
		p.Tallies = m
	}
	return p
}

// ErrLeased is returned when another live process holds a scan's lease.
var ErrLeased = errors.New("store: scan is being run by another process")

// Lease is one process's claim on a scan while it runs it (SPEC "one
// process runs a scan at a time"). A lease is current until Expires; its
// holder renews it while it runs and releases it when it stops.
type Lease struct {
	Holder  string    // unique per process: host, pid and process start
	Host    string    // host name of the holder
	PID     int       // process ID of the holder on Host
	Expires time.Time // when the lease lapses unless renewed
}

// Summary is a whole scan's totals, every run of it together.
type Summary struct {
	Results  uint64 // stored results
	Open     uint64 // results with status open
	DICOM    uint64 // results with an association answer (dicom.association not none)
	Exposed  uint64 // results exposed at level query or above
	Errors   uint64 // results with status error
	Excluded uint64 // targets never contacted: excluded after the scan started

	// Counted, not stored (Progress.Tallies, every port together): the
	// targets that did not answer. A scan run with --all-targets stores
	// them as results instead.
	Closed      uint64 // connection refused
	Filtered    uint64 // no answer before the connect timeout
	Unreachable uint64 // no route
}

// Probed returns how many targets the scan contacted: the stored results
// and the tallied closed, filtered and unreachable targets ("targets
// probed" in reports). Excluded targets were not contacted.
func (s Summary) Probed() uint64 { return s.Results + s.Closed + s.Filtered + s.Unreachable }

// AddTallies counts a checkpoint's tallies into the summary: Closed,
// Filtered and Unreachable (Excluded is p.Excluded, set apart).
func (s *Summary) AddTallies(p Progress) {
	t := p.Total()
	s.Closed += t.Closed
	s.Filtered += t.Filtered
	s.Unreachable += t.Unreachable
}

// Reader is the reading half of a store: what report, diff, scans and serve need, and all that
// a store opened read-only (sqlite.OpenReadOnly, a replica, a PostgreSQL role with SELECT only)
// must provide. Methods are safe for concurrent use. Times are returned in UTC; empty Targets,
// Settings and Exclusions read back as nil.
type Reader interface {
	// Scan returns the scan with the given ID, or ErrNotFound. Its
	// Progress holds the tallies of its last checkpoint.
	Scan(ctx context.Context, id string) (Scan, error)
	// LatestScan returns the most recently started scan, or ErrNotFound
	// when there is none.
	LatestScan(ctx context.Context) (Scan, error)
	// Scans returns every scan, oldest first (by Started, then creation).
	// Groups(scans) gathers the shards of one run.
	Scans(ctx context.Context) ([]Scan, error)

	// Done calls fn for every (ip, port) of the scan that has a stored
	// result, in no particular order, and stops at the first error fn
	// returns, returning it. It returns ErrNotFound for an unknown scan.
	Done(ctx context.Context, scanID string, fn func(ip netip.Addr, port uint16) error) error
	// Results calls fn for every stored result of the scan ordered by
	// ip (as netip.Addr.Compare orders them) then port, and stops at the
	// first error fn returns, returning it. It returns ErrNotFound for an
	// unknown scan. MergeResults reads several scans (a group's shards)
	// in that order.
	Results(ctx context.Context, scanID string, fn func(probe.Result) error) error

	// Summary returns the whole scan's totals over every stored result,
	// whatever run stored it, and Excluded and the tallies (Closed,
	// Filtered, Unreachable) from its last checkpoint. It returns
	// ErrNotFound for an unknown scan.
	Summary(ctx context.Context, id string) (Summary, error)
	// Systems returns the figures per system of the results of the given
	// scans taken together (the shards of one group: a system's ports may
	// fall in different shards), as Systems documents them, computed without
	// handing each result over (an aggregate over an index), so that a trend
	// over many scans reads none of their records. No ID is no result; an
	// unknown ID is ErrNotFound.
	Systems(ctx context.Context, scanIDs ...string) (Systems, error)

	// Close releases the store's resources.
	Close() error
}

// Store keeps scans and their results: a Reader that also writes. Methods
// are safe for concurrent use.
type Store interface {
	Reader

	// CreateScan records a new scan and returns it as stored, with its ID.
	// It returns ErrExists if s.ID is already taken.
	CreateScan(ctx context.Context, s Scan) (Scan, error)
	// FinishScan records the end time of a scan, or returns ErrNotFound.
	FinishScan(ctx context.Context, id string, end time.Time) error

	// PutResults stores rs and the scan's progress checkpoint, its
	// tallies included (they replace the stored ones), in one
	// transaction: all of it or none. Each result is sanitized
	// (probe.Result.Sanitize) on a copy; rs is not modified. A result
	// whose ScanID is empty gets scanID; another ScanID is an error.
	// A result for the same (scan, ip, port) as a stored one replaces
	// it. It returns ErrNotFound if the scan does not exist.
	PutResults(ctx context.Context, scanID string, rs []probe.Result, progress Progress) error

	// AddCaveats adds caveats to stored results of scan scanID after the fact (honeypot.Flag
	// writes them once a scan's hosts can be compared), all in one transaction: each Mark's
	// caveat is added to the result of its address and port (AddCaveat), the result sanitized
	// again, and what Systems reads of it follows (ApartOf). A mark for a result that is not
	// stored is an error wrapping ErrNotFound, and nothing changes; so is an unknown scan.
	AddCaveats(ctx context.Context, scanID string, marks []Mark) error

	// Secret returns the database's 32-byte random secret, used as the
	// HMAC-SHA-256 key for study UIDs. It is created on first use and
	// never changes afterwards.
	Secret(ctx context.Context) ([]byte, error)

	// AcquireLease gives scan id's lease to l unless another holder's lease is current (not
	// expired) and stale(current) is false; then it returns the current lease and an error
	// wrapping ErrLeased. Re-acquiring one's own lease (same Holder) renews it. A nil stale
	// counts no lease as stale. On success it returns l as stored (Expires in UTC). It
	// returns ErrNotFound for an unknown scan. Two processes racing for one lease: one wins.
	AcquireLease(ctx context.Context, id string, l Lease, stale func(Lease) bool) (Lease, error)
	// RenewLease moves the expiry of holder's lease; ErrLeased when holder no longer holds it.
	// It returns ErrNotFound for an unknown scan.
	RenewLease(ctx context.Context, id, holder string, expires time.Time) error
	// ReleaseLease ends holder's lease; releasing a lease one does not hold is not an error.
	// It returns ErrNotFound for an unknown scan.
	ReleaseLease(ctx context.Context, id, holder string) error
}

// Mark is a caveat for one stored result: the one of its scan's address and port.
type Mark struct {
	IP     netip.Addr
	Port   uint16
	Caveat probe.Caveat
}

// AddCaveat adds c to r's exposure unless a caveat of the same kind and reason is there (once
// sanitized, as Result.Sanitize cleans them), and reports whether r changed. A honeypot caveat also sets dicom.honeypot when r has a DICOM
// part. r's caveats and DICOM part are replaced, never written through; r without an exposure
// gets one of level closed, holding only the caveat.
func AddCaveat(r *probe.Result, c probe.Caveat) bool {
	c = probe.Caveat{Kind: textsafe.Clean(c.Kind, 16), Reason: textsafe.Clean(c.Reason, probe.MaxError)}
	changed := false
	if c.Kind == probe.CaveatHoneypot && r.DICOM != nil && !r.DICOM.Honeypot {
		d := *r.DICOM
		d.Honeypot = true
		r.DICOM, changed = &d, true
	}
	var e probe.Exposure
	if r.Exposure != nil {
		e = *r.Exposure
	}
	for _, have := range e.Caveats {
		if have == c {
			return changed
		}
	}
	e.Caveats = append(slices.Clip(e.Caveats), c)
	r.Exposure = &e
	return true
}

// SecretSize is the length of the secret Store.Secret returns.
const SecretSize = 32

// Prepare returns result i of a PutResults batch for scan scanID as a backend stores it: its
// ScanID filled in when empty, sanitized (probe.Result.Sanitize, on a copy: r's pointers are
// replaced, never written through). A result of another scan, or without an IP address, is an
// error naming it.
func Prepare(scanID string, i int, r probe.Result) (probe.Result, error) {
	if r.ScanID == "" {
		r.ScanID = scanID
	} else if r.ScanID != scanID {
		return r, fmt.Errorf("store: put results of scan %q: result %d is of scan %q", scanID, i, r.ScanID)
	}
	if !r.IP.IsValid() {
		return r, fmt.Errorf("store: put results of scan %q: result %d has no IP address", scanID, i)
	}
	r.Sanitize()
	return r, nil
}

// Add counts a stored result into the summary (every field but Excluded).
func (s *Summary) Add(r *probe.Result) {
	s.Results++
	if r.Status == probe.StatusOpen {
		s.Open++
	}
	if r.Status == probe.StatusError {
		s.Errors++
	}
	if r.DICOM != nil && r.DICOM.Association != probe.AssociationNone {
		s.DICOM++
	}
	if r.Level() >= probe.LevelQuery {
		s.Exposed++
	}
}
