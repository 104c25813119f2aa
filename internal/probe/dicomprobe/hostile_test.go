package dicomprobe

import (
	"context"
	"encoding/json"
	"runtime"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/dicomtest"
	"github.com/pacswatch/pacswatch/internal/probe"
)

// hostileModes lists every hostile behaviour of the test SCP.
var hostileModes = []dicomtest.Hostile{
	dicomtest.SilentAfterConnect, dicomtest.CloseOnConnect, dicomtest.NotDICOM, dicomtest.SSHBanner,
	dicomtest.AbortOnConnect, dicomtest.AbortAfterRQ, dicomtest.SilentMidPDU, dicomtest.HugeLength,
	dicomtest.ShortLength, dicomtest.UnknownPDUType, dicomtest.EvenContextID, dicomtest.InvalidResult,
	dicomtest.InvalidReject, dicomtest.Trickle, dicomtest.AbortAfterEcho, dicomtest.AbortMidFind,
	dicomtest.EndlessPending, dicomtest.HugePDataLength, dicomtest.NoReleaseReply,
}

// TestHostileServers probes a server in each hostile mode with the whole prober, at full depth
// with retrieval proof on: each probe ends within its bound with a classified result, and heap
// and goroutines come back to where they were.
func TestHostileServers(t *testing.T) {
	const step = 300 * time.Millisecond
	// Bound: a few steps per association attempt, 8 attempts, plus the query budget's drain.
	const timeBound = 20 * step * 8
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutines := runtime.NumGoroutine()

	for _, h := range hostileModes {
		t.Run(h.String(), func(t *testing.T) {
			s := dicomtest.Start(t, dicomtest.Config{Hostile: h, Tree: dicomtest.NewTree(1, 5), Timeout: 5 * time.Second})
			p := New(Config{Depth: DepthQuery, VerifyRetrieve: true, Timeout: step, QueryBudget: 50})
			bound := timeBound
			if h == dicomtest.EndlessPending && raceEnabled {
				// Reading maxResponses pending responses is CPU, not waiting: 4.7 s here, 43 s
				// under the race detector, more on a loaded machine.
				bound *= 4
			}
			start := time.Now()
			done := make(chan probe.Result, 1)
			go func() { done <- p.Probe(context.Background(), target(t, s.Addr())) }()
			var r probe.Result
			select {
			case r = <-done:
			case <-time.After(bound + 5*time.Second):
				t.Fatalf("probe still running after %v", bound+5*time.Second)
			}
			el := time.Since(start)
			js, _ := json.Marshal(r)
			if el > bound {
				t.Errorf("probe took %v, over its bound %v", el, bound)
			}
			if r.Status == 0 {
				t.Errorf("no status: %s", js)
			}
			if r.Status == probe.StatusOpen && r.Exposure == nil {
				t.Errorf("open without an exposure level: %s", js)
			}
			t.Logf("%v in %v: status %v level %v error %q", h, el.Round(time.Millisecond), r.Status, r.Level(), r.Error)
		})
	}

	// Servers are closed by their cleanups when the subtests end; give sockets a moment.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines+2 {
		t.Errorf("goroutines: %d before, %d after", goroutines, n)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("heap in use: %d KiB before, %d KiB after (%+d KiB)", before.HeapInuse>>10, after.HeapInuse>>10, growth>>10)
	if growth > 4<<20 {
		t.Errorf("heap grew by %d KiB across the hostile servers", growth>>10)
	}
}
