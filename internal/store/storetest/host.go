package storetest

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/store"
)

// readerOnly hides every method of a store but the Reader's: store.HostResults then takes its
// fallback, which reads the whole scan.
type readerOnly struct{ store.Reader }

// testHostResults checks store.HostResults, through the backend's HostReader when it has one and
// through the fallback: one address's results of one scan, in port order, nothing of another
// address or scan.
func testHostResults(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := mustOpen(t, open)
	a := createScan(t, s, newScan())
	b := createScan(t, s, newScan())
	ips := []string{"10.0.0.1", "10.0.0.2", "10.0.0.20", "2001:db8::1", "fe80::1%eth0"}
	var rs []probe.Result
	for _, ip := range ips {
		for _, port := range []uint16{11112, 104, 4242} {
			rs = append(rs, result(a.ID, ip, port, probe.StatusOpen))
		}
	}
	if err := s.PutResults(ctx, a.ID, rs, store.Progress{Done: uint64(len(rs))}); err != nil {
		t.Fatal(err)
	}
	other := []probe.Result{result(b.ID, "10.0.0.2", 2762, probe.StatusOpen)}
	if err := s.PutResults(ctx, b.ID, other, store.Progress{Done: 1}); err != nil {
		t.Fatal(err)
	}
	all := readResults(t, s, a.ID)
	for _, r := range []store.Reader{s, readerOnly{s}} {
		for _, ip := range append(ips, "10.0.0.3", "::1") {
			addr := netip.MustParseAddr(ip)
			var want, got []probe.Result
			for _, x := range all {
				if x.IP == addr {
					want = append(want, x)
				}
			}
			err := store.HostResults(ctx, r, a.ID, addr, func(x probe.Result) error {
				got = append(got, x)
				return nil
			})
			if err != nil {
				t.Fatalf("HostResults(%s, %s) through %T: %v", a.ID, ip, r, err)
			}
			equalResults(t, got, want)
			for i := 1; i < len(got); i++ {
				if got[i-1].Port >= got[i].Port {
					t.Errorf("HostResults(%s) through %T: port %d before %d", ip, r, got[i-1].Port, got[i].Port)
				}
			}
		}
		stop := errors.New("stop")
		calls := 0
		err := store.HostResults(ctx, r, a.ID, netip.MustParseAddr("10.0.0.2"), func(probe.Result) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("HostResults through %T with fn failing = %v after %d calls, want stop after 1", r, err, calls)
		}
		err = store.HostResults(ctx, r, "no-such-scan", netip.MustParseAddr("10.0.0.2"), func(probe.Result) error { return nil })
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("HostResults of an unknown scan through %T = %v, want ErrNotFound", r, err)
		}
	}
}
