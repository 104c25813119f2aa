package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vbauerster/cupwriter"
	"github.com/vbauerster/mpb/v8"

	"github.com/pacswatch/pacswatch/internal/scan"
)

// TestProgressText: the words of the progress line (internal/scan's TestProgress until the
// display moved to the command line: the same lines, now drawn around mpb's bar).
func TestProgressText(t *testing.T) {
	tests := []struct {
		name  string
		total uint64
		s     scan.Stats
		after time.Duration // since start
		final bool
		want  string
	}{
		{
			name: "running", total: 10000, after: 10 * time.Second,
			s:    scan.Stats{Done: 1000, Open: 12, DICOM: 5, Exposed: 2},
			want: "1000/10000  10.0%  100/s  open 12  dicom 5  exposed 2  ETA 1:30",
		},
		{
			name: "resumed: the rate counts this run's targets only", total: 10000, after: 10 * time.Second,
			s:    scan.Stats{Done: 6000, Skipped: 5000},
			want: "6000/10000  60.0%  100/s  open 0  dicom 0  exposed 0  ETA 0:40",
		},
		{
			name: "hours", total: 1 << 32, after: time.Second,
			s:    scan.Stats{Done: 1000},
			want: "1000/4294967296   0.0%  1000/s  open 0  dicom 0  exposed 0  ETA 1193:02:46",
		},
		{
			name: "nothing done yet", total: 5, after: 0,
			want: "0/5   0.0%  0/s  open 0  dicom 0  exposed 0  ETA --:--",
		},
		{
			name: "empty shard", total: 0, after: time.Second, final: true,
			want: "0/0 100.0%  0/s  open 0  dicom 0  exposed 0  in 0:01",
		},
		{
			name: "finished", total: 300, after: 3*time.Minute + 20*time.Second, final: true,
			s:    scan.Stats{Done: 300, Open: 3},
			want: "300/300 100.0%  2/s  open 3  dicom 0  exposed 0  in 3:20",
		},
		{
			name: "eternity", total: 1 << 48, after: time.Hour,
			s:    scan.Stats{Done: 1},
			want: "1/281474976710656   0.0%  0/s  open 0  dicom 0  exposed 0  ETA 99999:00:00",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head, tail := progressText(tt.s, tt.total, tt.after, tt.final)
			if got := head + "  " + tail; got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// drawn runs a display on a buffer 120 columns wide, refreshed as on a terminal and returns what it drew.
func drawn(t *testing.T, total uint64, run func(pr *progress, start time.Time)) string {
	t.Helper()
	var b bytes.Buffer
	start := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	pr := newProgress(&b, total, mpb.WithAutoRefresh(), mpb.WithWidth(120))
	pr.now = func() time.Time { return start.Add(3*time.Minute + 20*time.Second) }
	run(pr, start)
	return b.String()
}

// TestProgressDraws: mpb draws the words around a bar, and finish ends with the final line.
func TestProgressDraws(t *testing.T) {
	out := drawn(t, 300, func(pr *progress, start time.Time) {
		pr.update(scan.Stats{Done: 150, Open: 3, Started: start})
		pr.finish(scan.Stats{Done: 300, Open: 3, Started: start})
	})
	last := lastLine(out)
	for _, want := range []string{"300/300 100.0%", "2/s  open 3  dicom 0  exposed 0  in 3:20", "["} {
		if !strings.Contains(last, want) {
			t.Errorf("last line %q lacks %q\n(all: %q)", last, want, out)
		}
	}
	if strings.Contains(last, "ETA") {
		t.Errorf("last line %q: want the time taken, not an ETA", last)
	}
}

// TestProgressInterrupted: a scan stopped early ends with the count where it stopped.
func TestProgressInterrupted(t *testing.T) {
	out := drawn(t, 1000, func(pr *progress, start time.Time) {
		pr.update(scan.Stats{Done: 100, Started: start})
		pr.finish(scan.Stats{Done: 120, Started: start})
	})
	if last := lastLine(out); !strings.Contains(last, "120/1000  12.0%") || !strings.Contains(last, "in 3:20") {
		t.Errorf("last line %q: want 120/1000 and the time taken", last)
	}
}

// TestProgressEmptyShard: a shard of no targets ends at once, full.
func TestProgressEmptyShard(t *testing.T) {
	done := make(chan string)
	go func() {
		done <- drawn(t, 0, func(pr *progress, start time.Time) { pr.finish(scan.Stats{Started: start}) })
	}()
	select {
	case out := <-done:
		if last := lastLine(out); !strings.Contains(last, "0/0 100.0%") {
			t.Errorf("last line %q: want 0/0 100.0%%", last)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("finish of an empty shard did not return")
	}
}

// lastLine is the last line a terminal shows of out: mpb redraws in place with escape codes.
func lastLine(out string) string {
	out = strings.TrimRight(out, "\n")
	if i := strings.LastIndexByte(out, '\n'); i >= 0 {
		out = out[i+1:]
	}
	if i := strings.LastIndex(out, "\x1b["); i >= 0 {
		if j := strings.IndexAny(out[i:], "ABCDEFGHJKSTfmnsu"); j >= 0 {
			out = out[i+j+1:]
		}
	}
	return out
}

func TestIsTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	closed, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	tests := []struct {
		name string
		f    *os.File
		want bool
	}{
		{"regular file", f, false},
		{"pipe", w, false},
		{"closed file", closed, false},
	}
	for _, tt := range tests {
		if got := isTerminal(tt.f); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestTermWriterSize: a terminal that reports no size is taken as 80 by 24, where mpb would
// otherwise draw nothing.
func TestTermWriterSize(t *testing.T) {
	w := termWriter{cupwriter.New(&bytes.Buffer{}, false)}
	if width, height, err := w.GetTermSize(); width != 80 || height != 24 || err != nil {
		t.Errorf("GetTermSize() = %d, %d, %v; want 80, 24, nil", width, height, err)
	}
}
