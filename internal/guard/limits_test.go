package guard

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

// TestThousandConcurrentAssociations holds 1,000 associations through the guard at once, each
// answering a C-ECHO while all are open, then releases them all.
func TestThousandConcurrentAssociations(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 100
	}
	up := upstream(t, 1, nil)
	g := startGuard(t, up.Addr(), fmt.Sprintf(`
max_associations: %d
peers:
  - name: many
    calling_ae: [MANY]
    source: 127.0.0.1
    services: [echo]
    max_associations: %d
`, n, n))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	assocs := make([]*ul.Assoc, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 100) // connection attempts in flight
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			a, err := ul.Dial(ctx, g.Addr, ul.Config{CalledAE: "ARCHIVE", CallingAE: "MANY", Contexts: dimse.ProposeQR()})
			if err != nil {
				errs <- fmt.Errorf("association %d: %w", i, err)
				return
			}
			assocs[i] = a
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := g.Active(); got != n {
		t.Fatalf("guard holds %d associations, want %d", got, n)
	}
	// One more is refused: the guard is full (rejected-transient, local limit exceeded).
	_, err := ul.Dial(ctx, g.Addr, ul.Config{CalledAE: "ARCHIVE", CallingAE: "MANY", Contexts: dimse.ProposeQR()})
	if rj, ok := rejected(err); !ok || rj.Result != 2 || rj.Source != 3 || rj.Reason != 2 {
		t.Errorf("association %d: %v, want A-ASSOCIATE-RJ 2/3/2", n+1, err)
	}
	errs = make(chan error, n)
	for i, a := range assocs {
		wg.Go(func() {
			if st, err := dimse.Echo(ctx, a); err != nil || st != dimse.Success {
				errs <- fmt.Errorf("C-ECHO on association %d: %v %v", i, st, err)
				return
			}
			if err := a.Release(ctx); err != nil {
				errs <- fmt.Errorf("release %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if up.Stats().Echo != int64(n) {
		t.Errorf("upstream answered %d echoes, want %d", up.Stats().Echo, n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for g.Active() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g.Active() != 0 {
		t.Errorf("%d associations still counted after release", g.Active())
	}
}

func TestPeerLimits(t *testing.T) {
	up := upstream(t, 1, nil)
	g := startGuard(t, up.Addr(), `
peers:
  - name: two
    calling_ae: [TWO]
    source: 127.0.0.1
    services: [echo]
    max_associations: 2
  - name: slow
    calling_ae: [SLOW]
    source: 127.0.0.1
    services: [echo]
    rate: 1/h
    burst: 2
`)
	ctx := context.Background()
	a1, a2 := mustDial(t, g.Addr, "TWO"), mustDial(t, g.Addr, "TWO")
	_, err := dial(t, g.Addr, "TWO")
	if rj, ok := rejected(err); !ok || rj != (ul.AAssociateRJ{Result: 2, Source: 3, Reason: 2}) {
		t.Errorf("third association of TWO: %v, want A-ASSOCIATE-RJ 2/3/2", err)
	}
	a1.Release(ctx)
	a2.Release(ctx)
	waitIdle(t, g)
	if _, err := dial(t, g.Addr, "TWO"); err != nil {
		t.Errorf("TWO after releases: %v", err)
	}
	for i := range 2 {
		a := mustDial(t, g.Addr, "SLOW")
		a.Release(ctx)
		_ = i
	}
	_, err = dial(t, g.Addr, "SLOW")
	if rj, ok := rejected(err); !ok || rj != (ul.AAssociateRJ{Result: 2, Source: 3, Reason: 1}) {
		t.Errorf("third association of SLOW within the hour: %v, want A-ASSOCIATE-RJ 2/3/1", err)
	}
	g.Audit.wait(t, func(r Record) bool { return r.Refusal == refusedPeerRate && r.Peer == "slow" })
	g.Audit.wait(t, func(r Record) bool { return r.Refusal == refusedPeerFull && r.Peer == "two" })
}

func waitIdle(t *testing.T, g *testGuard) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); g.Active() != 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if g.Active() != 0 {
		t.Fatalf("%d associations still active", g.Active())
	}
}
