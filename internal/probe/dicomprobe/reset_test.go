package dicomprobe

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/peertest"
	"github.com/pacswatch/pacswatch/internal/probe"
)

// TestResetOnConnect: a server that accepts and resets at once gets one record, whichever side
// of the reset the dial returned on: open, not-dicom, "connection reset" (at depth connect:
// open). Before, a reset the dial saw was an error result, one the association's read saw an
// open port: the same server counted apart from scan to scan.
func TestResetOnConnect(t *testing.T) {
	srv := peertest.StartResetter(t)
	tg := target(t, srv.Addr.String())
	for _, depth := range []Depth{DepthConnect, DepthQuery} {
		probeWith := func(dial func(context.Context, string, string) (net.Conn, error)) probe.Result {
			return New(Config{Depth: depth, Timeout: 2 * time.Second, TLS: TLSOff, Dial: dial}).Probe(context.Background(), tg)
		}
		a, b := probeWith(srv.DialAfter), probeWith(srv.DialBefore)
		sameRecord(t, a, b)
		if b.Status != probe.StatusOpen || b.DICOM != nil {
			t.Errorf("depth %v: status %v, dicom %+v; want open, no dicom", depth, b.Status, b.DICOM)
		}
		if depth == DepthQuery && (b.Exposure == nil || b.Exposure.Level != probe.LevelNotDICOM || b.Error != "connection reset") {
			t.Errorf("depth %v: exposure %+v, error %q; want not-dicom, connection reset", depth, b.Exposure, b.Error)
		}
	}
}
