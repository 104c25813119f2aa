package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"text/tabwriter"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/textsafe"
)

// scanTableMax is how many services the end-of-scan table shows at most: the largest.
const scanTableMax = 20

// printScanTable writes the end-of-scan table of SPEC "scan" (on a terminal, after the totals):
// the services of scan scanID that answered (DICOM at any level from protected up, or a PACS
// web front end), with product, level, studies, images, retrieval and AE check; the
// scanTableMax largest when there are more. So an administrator who scanned one address reads
// the answer there. It writes nothing when no service answered.
func printScanTable(ctx context.Context, w io.Writer, st store.Reader, scanID string) error {
	var (
		top      []probe.Result
		answered int
	)
	err := st.Results(ctx, scanID, func(r probe.Result) error {
		if !answeredService(r) {
			return nil
		}
		answered++
		i, _ := slices.BinarySearchFunc(top, r, largerFirst)
		if i < scanTableMax {
			top = slices.Insert(top, i, r)
			if len(top) > scanTableMax {
				top = top[:scanTableMax]
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("scan %s: read its results: %w", scanID, err)
	}
	return writeScanTable(w, top, answered)
}

// answeredService reports whether r is a service the table shows.
func answeredService(r probe.Result) bool {
	return r.Level() >= probe.LevelProtected || webProduct(r) != nil
}

// webProduct returns r's first PACS web front end, or nil.
func webProduct(r probe.Result) *probe.Web {
	for i := range r.Web {
		if r.Web[i].Product != "" {
			return &r.Web[i]
		}
	}
	return nil
}

// tableCounts returns the studies and images a row shows: the DICOM side's, else the web's.
func tableCounts(r probe.Result) (studies, images int64) {
	if e := r.Exposure; e != nil && e.Studies > 0 {
		return e.Studies, e.Instances
	}
	if w := webProduct(r); w != nil {
		return w.Studies, w.Instances
	}
	return 0, 0
}

// largerFirst orders the table: most studies first, then the most exposed, then by address.
func largerFirst(a, b probe.Result) int {
	sa, _ := tableCounts(a)
	sb, _ := tableCounts(b)
	if c := cmp.Compare(sb, sa); c != 0 {
		return c
	}
	if c := cmp.Compare(b.Level(), a.Level()); c != 0 {
		return c
	}
	return netip.AddrPortFrom(a.IP, a.Port).Compare(netip.AddrPortFrom(b.IP, b.Port))
}

// writeScanTable writes the rows, largest first, under a line that says how many answered.
func writeScanTable(w io.Writer, rows []probe.Result, answered int) error {
	if answered == 0 {
		return nil
	}
	head := fmt.Sprintf("%d services answered", answered)
	if answered == 1 {
		head = "1 service answered"
	}
	if answered > len(rows) {
		head += fmt.Sprintf(" (the %d with the most studies below)", len(rows))
	}
	fmt.Fprintln(w, head+":")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS:PORT\tPRODUCT\tLEVEL\tSTUDIES\tIMAGES\tRETRIEVE\tAE CHECK\tWEB")
	for _, r := range rows {
		product, level, retrieve, aeCheck, web := "-", r.Level().String(), "-", "-", "-"
		if d := r.DICOM; d != nil {
			product = d.Product
			aeCheck = d.AECheck.String()
		}
		if e := r.Exposure; e != nil && r.DICOM != nil {
			retrieve = e.Retrieve.String()
		}
		if wp := webProduct(r); wp != nil {
			product = wp.Product + " " + wp.Version
			web = wp.Auth.String()
			if r.DICOM == nil {
				level = "web"
			}
		}
		if product == "" {
			product = "unknown"
		}
		studies, images := tableCounts(r)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", netip.AddrPortFrom(r.IP, r.Port), textsafe.Clean(product, 32),
			level, thousands(uint64(studies)), thousands(uint64(images)), retrieve, aeCheck, web)
	}
	return tw.Flush()
}
