package dicomprobe

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/dicomtest"
	"github.com/pacswatch/pacswatch/internal/probe"
)

// TestMemoryBudgetHostileFleet is issue 18's acceptance for the memory budget: many hostile
// hosts, each streaming distinct studies without end, probed at once with honest ones by one
// Prober (in-process, loopback): the process's peak resident memory stays under the budget,
// every hostile count ends capped, and the honest hosts are counted exactly.
//
// It streams tens of millions of studies (minutes on two cores), so it runs only when
// PACSWATCH_MEMTEST=hosts,budgetMiB says at what scale: issue 18's is 50,512 (budgets below
// MinMemoryBudget are raised to it). It prints the peak for bench/RESULTS.md. The budget is
// also the runtime's soft memory limit, as the process that sets it should make it.
func TestMemoryBudgetHostileFleet(t *testing.T) {
	v := os.Getenv("PACSWATCH_MEMTEST")
	if v == "" {
		t.Skip("minutes of streaming: run with PACSWATCH_MEMTEST=50,512 (hosts,budget MiB)")
	}
	a, b, _ := strings.Cut(v, ",")
	hosts, err1 := strconv.Atoi(a)
	budgetMiB, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || hosts < 1 || budgetMiB < 1 {
		t.Fatalf("PACSWATCH_MEMTEST=%q: want hosts,budgetMiB", v)
	}
	budgetMiB = max(budgetMiB, MinMemoryBudget>>20)
	budget := budgetMiB << 20
	var addrs []string
	for range hosts {
		s := dicomtest.Start(t, dicomtest.Config{ComputedCounts: true, Hostile: dicomtest.EndlessPending})
		addrs = append(addrs, s.Addr())
	}
	honestTree := dicomtest.NewTree(18, 300)
	var honest []string
	for range 3 {
		honest = append(honest, dicomtest.Start(t, dicomtest.Config{Tree: honestTree, ComputedCounts: true}).Addr())
	}

	// The budget is also the Go runtime's soft memory limit (Config.MemoryBudget).
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(budget))
	runtime.GC()
	debug.FreeOSMemory()
	resetPeakRSS(t)
	before := rss(t, "VmRSS")
	start := time.Now()
	results := make([]probe.Result, hosts+len(honest))
	cfg := Config{MemoryBudget: budget, Timeout: 20 * time.Second, Depth: DepthQuery}
	p := New(cfg)
	var wg sync.WaitGroup
	for i, addr := range append(addrs, honest...) {
		wg.Go(func() {
			if i >= hosts {
				time.Sleep(2 * time.Second) // honest hosts come while hostile ones hold the budget
			}
			results[i] = probeWith(t, p, addr)
		})
	}
	wg.Wait()
	peak := rss(t, "VmHWM")
	t.Logf("%d hostile hosts + %d honest, budget %d MiB: peak RSS %d MiB (%d MiB before), %v", hosts, len(honest),
		budgetMiB, peak>>20, before>>20, time.Since(start).Round(time.Second))
	var studies int64
	for i, r := range results {
		js, _ := json.Marshal(r.Exposure)
		e := r.Exposure
		switch {
		case e == nil:
			t.Errorf("host %d: no exposure: %+v", i, r)
		case i < hosts && (!e.HasCaveat(probe.CaveatCapped) || e.StudiesExact || e.Studies == 0):
			t.Errorf("hostile host %d not capped: %s", i, js)
		case i >= hosts && (e.Studies != 300 || !e.StudiesExact || len(e.Caveats) > 0):
			t.Errorf("honest host %d not counted exactly: %s", i, js)
		}
		if i < hosts && e != nil {
			studies += e.Studies
		}
	}
	t.Logf("hostile hosts counted %d studies in all before their caps (%.0f a host)", studies, float64(studies)/float64(hosts))
	if p.mem.used.Load() != 0 {
		t.Errorf("%d bytes of the budget still held after every probe ended", p.mem.used.Load())
	}
	if peak >= budget {
		t.Errorf("peak RSS %d MiB, over the budget of %d MiB", peak>>20, budgetMiB)
	}
	fmt.Fprintf(os.Stderr, "| memory budget: %d hostile hosts streaming distinct studies at once, %d honest | budget %d MiB | peak RSS %d MiB | every hostile count capped, honest ones exact |\n",
		hosts, len(honest), budgetMiB, peak>>20)
}

func probeWith(t *testing.T, p *Prober, addr string) probe.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return p.Probe(ctx, target(t, addr))
}

// resetPeakRSS resets the process's VmHWM (Linux: clear_refs 5).
func resetPeakRSS(t *testing.T) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS: %v", err)
	}
}

// rss reads a memory figure of /proc/self/status (VmRSS, VmHWM), in bytes.
func rss(t *testing.T, field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", field, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}
