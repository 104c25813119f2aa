package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/geo"
	"github.com/pacswatch/pacswatch/internal/store/sqlite"
	"github.com/pacswatch/pacswatch/internal/web"
)

// BenchmarkServe1M serves a SQLite store of two finished scans of 1,000,000 results each
// (bigStore; set PACSWATCH_BENCH_DIR to keep it between runs) with a city database. It reports
// (in its log, hence -v) how long the first view of the latest run takes to build (one pass over
// the run and the compared one, while the page answers at once that it is being built) and the
// host index, times each page once built, and logs the heap and peak resident memory:
//
//	go test ./internal/web -run '^$' -bench Serve1M -benchtime 20x -timeout 30m -v
func BenchmarkServe1M(b *testing.B) {
	dbPath, city := bigStore(b, 2, 1_000_000)
	ctx := context.Background()
	st, err := sqlite.OpenReadOnly(ctx, dbPath)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	g, err := geo.Open(city)
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	s, err := web.New(web.Config{Store: st, Geo: g})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	scans, err := st.Scans(ctx)
	if err != nil {
		b.Fatal(err)
	}
	id := scans[len(scans)-1].ID
	if sum, err := st.Summary(ctx, id); err != nil || sum.Results != 1_000_000 {
		b.Fatalf("the latest scan holds %d results (%v), want 1,000,000", sum.Results, err)
	}

	start := time.Now()
	first := serveOnce(b, s, "/scans/"+id)
	if !strings.Contains(first, `http-equiv="refresh"`) {
		b.Fatal("the first view of a million-result run did not answer at once with a pending page")
	}
	answered := time.Since(start)
	for strings.Contains(serveOnce(b, s, "/scans/"+id), `http-equiv="refresh"`) {
		time.Sleep(50 * time.Millisecond)
	}
	cold := time.Since(start)
	start = time.Now()
	for strings.Contains(serveOnce(b, s, "/scans/"+id+"/hosts?region=IN%2FRegion+1"), `http-equiv="refresh"`) {
		time.Sleep(50 * time.Millisecond)
	}
	index := time.Since(start)
	start = time.Now()
	serveOnce(b, s, "/")
	runs := time.Since(start)
	b.Logf("first view answered in %v (pending page); report built in %v; host index in %v; first index page (every run's Systems) in %v",
		answered, cold, index, runs)

	page := serveOnce(b, s, "/scans/"+id+"/hosts?region=IN%2FRegion+1")
	i := strings.Index(page, `<tr data-ip="`)
	if i < 0 {
		b.Fatal("no system in IN/Region 1")
	}
	ip := page[i+len(`<tr data-ip="`):]
	ip = ip[:strings.IndexByte(ip, '"')]
	for _, p := range []struct{ name, path string }{
		{"index", "/"},
		{"run", "/scans/" + id},
		{"country", "/scans/" + id + "/countries/IN"},
		{"region-hosts", "/scans/" + id + "/hosts?region=IN%2FRegion+1"},
		{"host", "/hosts/" + ip},
		{"api-report", "/api/v1/scans/" + id + "/report"},
	} {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				serveOnce(b, s, p.path)
			}
		})
	}
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	b.Logf("after every page: heap in use %.1f MiB, peak resident %.1f MiB", float64(m.HeapInuse)/(1<<20), float64(peakRSS())/(1<<10))
}

func serveOnce(b *testing.B, s *web.Server, path string) string {
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		b.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body.String())
	}
	return rec.Body.String()
}

// peakRSS is the process's peak resident set (VmHWM), in kB; 0 without /proc.
func peakRSS() int {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", os.Getpid()))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}
