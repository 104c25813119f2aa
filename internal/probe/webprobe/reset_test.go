package webprobe_test

import (
	"context"
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/pacswatch/pacswatch/internal/peertest"
	"github.com/pacswatch/pacswatch/internal/probe"
	"github.com/pacswatch/pacswatch/internal/probe/webprobe"
)

// TestResetOnConnect: a web port that accepts and resets at once gets one record, whichever
// side of the reset the dial returned on: open, not-dicom, "connection reset", no web. Before,
// a reset the dial saw was an error result.
func TestResetOnConnect(t *testing.T) {
	srv := peertest.StartResetter(t)
	var got [2]string
	for i, dial := range []func(context.Context, string, string) (net.Conn, error){srv.DialAfter, srv.DialBefore} {
		r := webprobe.New(webprobe.Config{Timeout: 2 * time.Second, Dial: dial}).Probe(context.Background(), targetOf(t, srv.Addr))
		if r.Status != probe.StatusOpen || r.Error != "connection reset" || r.Exposure == nil || r.Exposure.Level != probe.LevelNotDICOM || r.Web != nil {
			t.Errorf("status %v, error %q, exposure %+v, web %+v; want open, connection reset, not-dicom, no web", r.Status, r.Error, r.Exposure, r.Web)
		}
		r.Time = time.Time{}
		b, _ := json.Marshal(r)
		got[i] = string(b)
	}
	if got[0] != got[1] {
		t.Errorf("records differ:\n%s\n%s", got[0], got[1])
	}
}
