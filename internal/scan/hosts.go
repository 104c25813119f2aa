package scan

import (
	"net/netip"
	"sync"
)

// hosts holds the addresses being probed, so that each address has one
// probe at a time (SPEC: per-host concurrency of 1).
type hosts struct {
	mu   sync.Mutex            // protects busy
	busy map[netip.Addr][]*job // address being probed → jobs waiting for it, oldest first
}

// acquire marks j's address busy and reports true when it was free;
// otherwise it queues j behind the address's probe.
func (h *hosts) acquire(j *job) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if q, busy := h.busy[j.t.Addr]; busy {
		h.busy[j.t.Addr] = append(q, j)
		return false
	}
	h.busy[j.t.Addr] = nil
	return true
}

// release hands on addr: it returns the next job waiting for it, which the
// caller runs, or frees addr and returns nil.
func (h *hosts) release(addr netip.Addr) *job {
	h.mu.Lock()
	defer h.mu.Unlock()
	q := h.busy[addr]
	if len(q) == 0 {
		delete(h.busy, addr)
		return nil
	}
	j := q[0]
	q[0] = nil
	h.busy[addr] = q[1:]
	return j
}
