package dicomprobe

import (
	"context"
	"fmt"
	"math/bits"
	"slices"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
)

// A span is a range of study dates, in days since 1970-01-01, both ends included. allDates, from
// 0001-01-01 to 9999-12-31, is the universal query; a span reaching either end is open there.
type span struct{ lo, hi int64 }

var (
	minDay   = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).Unix() / 86400
	maxDay   = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC).Unix() / 86400
	allDates = span{minDay, maxDay}
)

// match returns the Study Date matching value of s (PS3.4 §C.2.2.2.5): empty (universal),
// "-YYYYMMDD", "YYYYMMDD-", a single date or "YYYYMMDD-YYYYMMDD".
func (s span) match() string {
	switch {
	case s.lo <= minDay && s.hi >= maxDay:
		return ""
	case s.lo <= minDay:
		return "-" + formatDA(s.hi)
	case s.hi >= maxDay:
		return formatDA(s.lo) + "-"
	case s.lo == s.hi:
		return formatDA(s.lo)
	}
	return formatDA(s.lo) + "-" + formatDA(s.hi)
}

func formatDA(day int64) string { return time.Unix(day*86400, 0).UTC().Format("20060102") }

// parseDA parses a DA value (PS3.5 §6.2), also in the ACR-NEMA form "YYYY.MM.DD", into days
// since 1970-01-01.
func parseDA(s string) (int64, bool) {
	if len(s) == 10 && s[4] == '.' && s[7] == '.' {
		s = s[:4] + s[5:7] + s[8:]
	}
	if len(s) != 8 {
		return 0, false
	}
	t, err := time.Parse("20060102", s)
	if err != nil || t.Year() < 1 {
		return 0, false
	}
	return t.Unix() / 86400, true
}

// A sliceResult is what one STUDY-level query returned.
type sliceResult struct {
	span    span    // the span queried
	n       int     // responses
	fresh   int     // studies not seen before
	days    []int64 // a uniform sample of the dates in the span, to choose where to split it
	dated   int     // responses dated in the span
	outside bool    // a response's date lay outside the span: the server ignores date ranges
	status  dimse.Status
}

// refused reports a query answered by a failure and nothing else.
func (r sliceResult) refused() bool { return r.n == 0 && r.status.Class() == dimse.ClassFailure }

// cut reports an answer that says it is incomplete: Orthanc ends one cut short by its
// LimitFindResults with status Cancel (0xFE00) though nobody cancelled; others with a failure
// after some matches.
func (r sliceResult) cut() bool { return r.n > 0 && !whole(r.status) }

// whole reports a final C-FIND status that says every match was sent: success, or a warning
// (PS3.4 §C.4.1.1.4). Cancel is how Orthanc ends an answer cut short by LimitFindInstances.
func whole(s dimse.Status) bool { return s == dimse.Success || s.Class() == dimse.ClassWarning }

// knownCap reports whether n answers is a size at which servers are known to stop silently,
// with status Success: the round numbers administrators configure and products default to
// (100, 500, 5,000, 50,000: pynetdicom #467, Google's DICOM adapter #42, whose authors note that
// "5000/50000 is too round a number anyway"): a multiple of 10 or of 25 with at most two
// significant digits, or a power of two (or one less) from 128 on.
func knownCap(n int) bool {
	if n < 10 {
		return false
	}
	if n >= 127 && (bits.OnesCount(uint(n)) == 1 || bits.OnesCount(uint(n+1)) == 1) {
		return true
	}
	if n%10 != 0 && n%25 != 0 {
		return false
	}
	for n%10 == 0 {
		n /= 10
	}
	return n < 100
}

// mayBeCut reports whether the universal answer first may have been cut short by a result cap
// without saying so, and is worth the two date halves that tell: it ended with Success (or a
// warning) at a known cap's size, from a server not known to signal its cap (signalsCap).
func (c *counter) mayBeCut(first sliceResult) bool {
	return !first.cut() && knownCap(first.n) && !signalsCap(c.product, c.computed)
}

// slice finds out whether the universal answer first was cut short by a result cap and, if so,
// counts every study by querying ever smaller Study Date spans until each answer is under the cap.
//
// An answer is cut when its final status says so (cut). One that ended with Success is checked
// only when mayBeCut: the two halves of the date span, split at the median date of first, are
// queried, and if they hold no study that first lacked, first was complete. Otherwise the cap is
// first's size (or a status says so) and every half at the cap is split in turn at the median of
// its own dates, down to single days. Studies without a Study Date match no span: they are
// counted from first. Whatever keeps the count from being exact is recorded as a cap (capped).
func (c *counter) slice(ctx context.Context, first sliceResult) error {
	capped := first.cut()
	if c.truncated || !capped && !c.mayBeCut(first) {
		return nil
	}
	limit := fmt.Sprintf("the server's limit of %d answers (final status 0x%04X)", first.n, uint16(first.status))
	if !capped {
		limit = fmt.Sprintf("the server's silent limit of %d answers", first.n)
	}
	if capped && c.undated > 0 {
		c.capped(fmt.Sprintf("%s hit, and %d studies without a Study Date cannot be sliced by date", limit, c.undated))
	}
	type work struct {
		s    span
		days []int64
	}
	queue := []work{{allDates, first.days}}
	probing := !capped // the first split only looks for a cap
	defer func() {
		for _, w := range queue {
			c.dropDays(w.days)
		}
	}()
	for len(queue) > 0 {
		w := queue[0]
		queue = queue[1:]
		c.dropDays(w.days)
		if w.s.lo == w.s.hi {
			c.capped(fmt.Sprintf("%s hit by the studies of one day (%s)", limit, formatDA(w.s.lo)))
			continue
		}
		if c.budget-c.hold < 2 {
			c.capped(fmt.Sprintf("%s hit, and the query budget spent before every date slice was under it", limit))
			return nil
		}
		m := splitDay(w.s, w.days)
		fresh := 0
		var next []work
		for _, half := range []span{{w.s.lo, m}, {m + 1, w.s.hi}} {
			res, err := c.studies(ctx, half)
			if err != nil {
				c.dropDays(res.days)
				return err
			}
			if res.outside || res.refused() || c.truncated {
				c.dropDays(res.days)
				// No date ranges, or our own limits: slicing cannot make the count exact. While
				// probing for a cap, nothing new seen means none was found.
				if !probing || fresh+res.fresh > 0 || c.truncated {
					c.capped(fmt.Sprintf("%s hit, and the server answers no Study Date range", limit))
				}
				return nil
			}
			fresh += res.fresh
			if res.cut() || res.n >= first.n {
				next = append(next, work{half, res.days})
			} else {
				c.dropDays(res.days)
			}
		}
		if probing {
			if fresh == 0 {
				for _, w := range next {
					c.dropDays(w.days)
				}
				return nil // the halves held nothing new: first was the whole archive
			}
			probing = false
			if c.undated > 0 {
				c.capped(fmt.Sprintf("%s hit, and %d studies without a Study Date cannot be sliced by date", limit, c.undated))
			}
		}
		queue = append(queue, next...)
	}
	if !probing {
		c.log.Debug("c-find answers capped: counted by study date", "cap", first.n, "studies", c.seen.len(), "queries", c.spent)
	}
	return nil
}

// splitDay returns where to split s: the median of the dates seen in it, so that each half holds
// about half of them, or its middle when none was seen; always lo ≤ m < hi.
func splitDay(s span, days []int64) int64 {
	var in []int64
	for _, d := range days {
		if d >= s.lo && d <= s.hi {
			in = append(in, d)
		}
	}
	m := s.lo + (s.hi-s.lo)/2
	if len(in) > 0 {
		slices.Sort(in)
		m = in[(len(in)-1)/2]
	}
	return min(max(m, s.lo), s.hi-1)
}
