package probe

import (
	"context"

	"github.com/pacswatch/pacswatch/internal/targets"
)

// A Prober probes one target. The DICOM and web probes implement it, and
// the scan engine drives it.
type Prober interface {
	// Probe returns what it learned about t. It never fails: a failed probe
	// is a Result with the matching Status and Error. It must return soon
	// after ctx is done; ctx's deadline is the scan's max host time.
	// Probe is called concurrently, never twice at once for the same
	// address. The engine fills in the Result's ScanID, IP and Port, and
	// Time when it is zero.
	Probe(ctx context.Context, t targets.Target) Result
}

// Result.Error texts of the error results that the scan engine makes itself, when a Prober
// breaks its contract: read by whoever scores results (the sim).
const (
	TextOverrun  = "max host time exceeded"                   // the probe ignored its deadline
	TextPanic    = "internal error: probe panicked"           // the panic value is logged, not stored
	TextNoStatus = "internal error: probe returned no status" // the probe returned a zero Status
)
