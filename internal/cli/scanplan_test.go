package cli

import (
	"context"
	"strings"
	"testing"

	"github.com/pacswatch/pacswatch/internal/store"
	"github.com/pacswatch/pacswatch/internal/targets"
)

// TestSameSpace (issue 10 item 2): --resume refuses a scan whose target space changed since it
// started (a hostname resolving elsewhere, a scan stored by another version), by digest and by size.
func TestSameSpace(t *testing.T) {
	space := func(specs ...string) *targets.Space {
		sp, err := targets.Parse(context.Background(), specs, targets.Options{Ports: []uint16{104}})
		if err != nil {
			t.Fatal(err)
		}
		return sp
	}
	started := space("198.51.100.0/25", "192.0.2.7")
	sc := store.Scan{ID: "3", Seed: 1, Total: started.Order(1, 0, 1).Len(), SpaceDigest: started.Digest()}
	for _, tc := range []struct {
		name string
		now  *targets.Space
		sc   store.Scan
		ok   bool
	}{
		{"same space", space("192.0.2.7", "198.51.100.0-198.51.100.127"), sc, true},
		{"a host resolves elsewhere, same size", space("198.51.100.0/25", "192.0.2.8"), sc, false},
		{"one more address", space("198.51.100.0/25", "192.0.2.7", "192.0.2.9"), sc, false},
		{"old scan without digest, same size", space("198.51.100.0/25", "192.0.2.8"), store.Scan{ID: "3", Seed: 1, Total: sc.Total}, true},
		{"old scan without digest, other size", space("198.51.100.0/24"), store.Scan{ID: "3", Seed: 1, Total: sc.Total}, false},
	} {
		p := &scanPlan{space: tc.now, shards: 1}
		err := p.sameSpace(&tc.sc)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok %v", tc.name, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "changed since it started") {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
}

// TestLateExclusions: exclusions given on --resume beyond those the scan started with.
func TestLateExclusions(t *testing.T) {
	late, err := lateExclusions([]string{"198.51.100.0/30"}, []string{"198.51.100.0/30", "198.51.100.9"})
	if err != nil || late.Len() != 1 || strings.Join(late.Ranges(), ",") != "198.51.100.9" {
		t.Errorf("late = %v, %v; want 198.51.100.9", late.Ranges(), err)
	}
	// A dropped exclusion is no late one, and stays in force through the stored space.
	late, err = lateExclusions([]string{"198.51.100.0/30"}, nil)
	if err != nil || late.Len() != 0 {
		t.Errorf("late = %v, %v; want none", late.Ranges(), err)
	}
}
