package scan

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"time"
)

// Progress draws a scan's progress on one line of a terminal, redrawn in
// place with a carriage return: targets done of the total, percentage, rate,
// open ports, DICOM services, exposed archives and the time left. Pass its
// Update method as Config.Progress and call Finish with the Stats Run
// returns. Write errors are ignored: the display is a courtesy.
type Progress struct {
	w     io.Writer
	total uint64
	now   func() time.Time

	mu    sync.Mutex // protects the field below
	width int        // length of the last line drawn
}

// NewProgress returns a display on w for a shard of total targets.
// Use it only when w is a terminal (see IsTerminal).
func NewProgress(w io.Writer, total uint64) *Progress {
	return &Progress{w: w, total: total, now: time.Now}
}

// Update redraws the line with s.
func (p *Progress) Update(s Stats) { p.draw(s, false) }

// Finish draws the final line with s, and ends it.
func (p *Progress) Finish(s Stats) { p.draw(s, true) }

func (p *Progress) draw(s Stats, final bool) {
	elapsed := p.now().Sub(s.Started)
	var perSec float64
	if probed := s.Done - min(s.Skipped, s.Done); elapsed > 0 {
		perSec = float64(probed) / elapsed.Seconds()
	}
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(min(s.Done, p.total)) / float64(p.total)
	}
	var tail string
	switch {
	case final:
		tail = "in " + clock(elapsed.Seconds())
	case perSec > 0 && p.total > s.Done:
		tail = "ETA " + clock(float64(p.total-s.Done)/perSec)
	case p.total > s.Done:
		tail = "ETA --:--"
	default:
		tail = "ETA 0:00"
	}
	line := fmt.Sprintf("%d/%d %5.1f%%  %.0f/s  open %d  dicom %d  exposed %d  %s",
		s.Done, p.total, pct, perSec, s.Open, s.DICOM, s.Exposed, tail)

	p.mu.Lock()
	defer p.mu.Unlock()
	pad := max(p.width-len(line), 0) // blank what a longer line left
	p.width = len(line)
	end := ""
	if final {
		end, p.width = "\n", 0
	}
	io.WriteString(p.w, "\r"+line+strings.Repeat(" ", pad)+end)
}

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

// IsTerminal reports whether f is a terminal (a character device), where
// Progress may draw. It errs on the side of true for other character
// devices such as /dev/null, where drawing is harmless.
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
