package cli

import (
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/cupwriter"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/pacswatch/pacswatch/internal/scan"
)

// progress draws a scan's progress on a terminal with mpb: the targets done of the shard's
// total and the percentage, a bar, then the rate, open ports, DICOM services, exposed archives
// and the time left. Its update method is the engine's scan.Config.Progress; finish takes the
// Stats that scan.Run returns and ends the display. Drawing errors are ignored: the display is
// a courtesy.
type progress struct {
	total uint64
	now   func() time.Time
	p     *mpb.Progress
	bar   *mpb.Bar

	mu    sync.Mutex // protects the fields below
	stats scan.Stats
	final bool
}

// newProgress starts a display on w, a terminal (see isTerminal), for a shard of total
// targets; opts are for tests.
func newProgress(w io.Writer, total uint64, opts ...mpb.ContainerOption) *progress {
	pr := &progress{total: total, now: time.Now}
	cw := termWriter{cupwriter.New(w, false)}
	pr.p = mpb.New(append([]mpb.ContainerOption{mpb.WithConsoleWriter(cw), mpb.WithRefreshRate(scan.ProgressInterval)}, opts...)...)
	// A bar of unknown total never completes on its own: finish draws the last line.
	pr.bar = pr.p.AddBar(0,
		mpb.PrependDecorators(decor.Any(func(decor.Statistics) string { head, _ := pr.text(); return head })),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { _, tail := pr.text(); return tail })),
	)
	pr.bar.SetTotal(count(total), false)
	return pr
}

// update shows s, the engine's running totals.
func (pr *progress) update(s scan.Stats) {
	pr.mu.Lock()
	pr.stats = s
	pr.mu.Unlock()
	pr.bar.SetCurrent(count(s.Done))
}

// finish shows s, the final totals, with the time the scan took, and ends the display: a full
// bar when every target is done, else the bar where it stopped.
func (pr *progress) finish(s scan.Stats) {
	pr.mu.Lock()
	pr.stats, pr.final = s, true
	pr.mu.Unlock()
	if s.Done >= pr.total {
		pr.bar.SetTotal(count(pr.total), true)
	} else {
		pr.bar.SetCurrent(count(s.Done))
		pr.bar.Abort(false)
	}
	pr.p.Wait()
}

// text is the line's words before and after the bar.
func (pr *progress) text() (head, tail string) {
	pr.mu.Lock()
	s, final := pr.stats, pr.final
	pr.mu.Unlock()
	if s.Started.IsZero() {
		s.Started = pr.now()
	}
	return progressText(s, pr.total, pr.now().Sub(s.Started), final)
}

// progressText words s for a shard of total targets, elapsed after the scan started:
// "1000/10000  10.0%" and "100/s  open 12  dicom 5  exposed 2  ETA 1:30", or the time it took
// when final. The rate counts this run's targets only, not those a resumed scan skipped.
func progressText(s scan.Stats, total uint64, elapsed time.Duration, final bool) (head, tail string) {
	var perSec float64
	if probed := s.Done - min(s.Skipped, s.Done); elapsed > 0 {
		perSec = float64(probed) / elapsed.Seconds()
	}
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(min(s.Done, total)) / float64(total)
	}
	var left string
	switch {
	case final:
		left = "in " + clock(elapsed.Seconds())
	case perSec > 0 && total > s.Done:
		left = "ETA " + clock(float64(total-s.Done)/perSec)
	case total > s.Done:
		left = "ETA --:--"
	default:
		left = "ETA 0:00"
	}
	head = fmt.Sprintf("%d/%d %5.1f%%", s.Done, total, pct)
	tail = fmt.Sprintf("%.0f/s  open %d  dicom %d  exposed %d  %s", perSec, s.Open, s.DICOM, s.Exposed, left)
	return head, tail
}

// termWriter is mpb's terminal writer, but for a terminal that reports no size (a
// pseudo-terminal nobody sized, as script(1) makes one), where mpb would draw nothing: it is
// taken as 80 columns and 24 lines.
type termWriter struct{ *cupwriter.Writer }

func (w termWriter) GetTermSize() (width, height int, err error) {
	width, height, err = w.Writer.GetTermSize()
	if err != nil || width <= 0 || height <= 0 {
		return 80, 24, nil
	}
	return width, height, nil
}

// count is n as mpb counts, capped at math.MaxInt64.
func count(n uint64) int64 { return int64(min(n, math.MaxInt64)) }

// maxClock is the longest time clock shows, in seconds: 99999 hours.
const maxClock = 99999 * 3600

// clock formats a number of seconds as m:ss, or h:mm:ss from an hour.
func clock(sec float64) string {
	s := int64(math.Round(min(max(sec, 0), maxClock)))
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// isTerminal reports whether f is a terminal (a character device), where the progress display
// may draw. It errs on the side of true for other character devices such as /dev/null, where
// drawing is harmless.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
