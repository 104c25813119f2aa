package scan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestProgress(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		total uint64
		s     Stats
		after time.Duration // since start
		final bool
		want  string
	}{
		{
			name: "running", total: 10000, after: 10 * time.Second,
			s:    Stats{Done: 1000, Open: 12, DICOM: 5, Exposed: 2},
			want: "\r1000/10000  10.0%  100/s  open 12  dicom 5  exposed 2  ETA 1:30",
		},
		{
			name: "resumed: the rate counts this run's targets only", total: 10000, after: 10 * time.Second,
			s:    Stats{Done: 6000, Skipped: 5000},
			want: "\r6000/10000  60.0%  100/s  open 0  dicom 0  exposed 0  ETA 0:40",
		},
		{
			name: "hours", total: 1 << 32, after: time.Second,
			s:    Stats{Done: 1000},
			want: "\r1000/4294967296   0.0%  1000/s  open 0  dicom 0  exposed 0  ETA 1193:02:46",
		},
		{
			name: "nothing done yet", total: 5, after: 0,
			want: "\r0/5   0.0%  0/s  open 0  dicom 0  exposed 0  ETA --:--",
		},
		{
			name: "empty shard", total: 0, after: time.Second, final: true,
			want: "\r0/0 100.0%  0/s  open 0  dicom 0  exposed 0  in 0:01\n",
		},
		{
			name: "finished", total: 300, after: 3*time.Minute + 20*time.Second, final: true,
			s:    Stats{Done: 300, Open: 3},
			want: "\r300/300 100.0%  2/s  open 3  dicom 0  exposed 0  in 3:20\n",
		},
		{
			name: "eternity", total: 1 << 48, after: time.Hour,
			s:    Stats{Done: 1},
			want: "\r1/281474976710656   0.0%  0/s  open 0  dicom 0  exposed 0  ETA 99999:00:00",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			p := NewProgress(&b, tt.total)
			p.now = func() time.Time { return start.Add(tt.after) }
			tt.s.Started = start
			if tt.final {
				p.Finish(tt.s)
			} else {
				p.Update(tt.s)
			}
			if got := b.String(); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestProgressBlanksLongerLine(t *testing.T) {
	var b strings.Builder
	start := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	p := NewProgress(&b, 100)
	p.now = func() time.Time { return start.Add(time.Second) }
	p.Update(Stats{Done: 10, Open: 10000, Started: start})
	first := b.String()
	b.Reset()
	p.Update(Stats{Done: 11, Started: start})
	second := b.String()
	if len(second) != len(first) {
		t.Errorf("second line: got %d bytes %q, want %d like the first %q", len(second), second, len(first), first)
	}
	if !strings.HasSuffix(second, "    ") {
		t.Errorf("second line %q: want trailing spaces over the first", second)
	}
	b.Reset()
	p.Finish(Stats{Done: 100, Started: start})
	b.Reset()
	p.Update(Stats{Done: 100, Started: start}) // a new line: nothing to blank
	if got := b.String(); strings.HasSuffix(got, " ") {
		t.Errorf("line after Finish: got %q, want no padding", got)
	}
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
		if got := IsTerminal(tt.f); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}
