package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/pacswatch/pacswatch/internal/store"
)

// Lease timing: a running scan renews its lease every leaseRenew for leaseTTL. A process that
// died on another machine frees its scan after leaseTTL; on this machine at once (see stale).
const (
	leaseTTL   = 60 * time.Second
	leaseRenew = 15 * time.Second
)

// thisProcess returns the lease this process takes: host, pid and the process's start time
// (so that a reused pid is not mistaken for the holder).
func thisProcess() store.Lease {
	host, _ := os.Hostname()
	pid := os.Getpid()
	return store.Lease{
		Holder:  fmt.Sprintf("%s/%d/%s", host, pid, procStart(pid)),
		Host:    host,
		PID:     pid,
		Expires: time.Now().Add(leaseTTL),
	}
}

// procStart returns the start time of process pid in clock ticks since boot (field 22 of
// /proc/PID/stat), or "" where there is no /proc.
func procStart(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name (field 2) may hold spaces; fields after it follow its closing parenthesis.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 {
		return ""
	}
	return fields[19]
}

// stale reports whether a current lease's holder is gone: a process of this host that no longer
// runs (or whose pid now belongs to a process started later). A holder on another host is
// trusted until its lease expires.
func stale(l store.Lease) bool {
	host, _ := os.Hostname()
	if l.Host != host || l.PID <= 0 {
		return false
	}
	if err := syscall.Kill(l.PID, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	parts := strings.Split(l.Holder, "/")
	if start := procStart(l.PID); len(parts) == 3 && parts[2] != "" && start != "" && start != parts[2] {
		return true
	}
	return false
}

// holdLease takes the scan's lease and keeps it renewed until the returned function is called,
// which releases it.
func holdLease(ctx context.Context, st store.Store, sc store.Scan) (func(), error) {
	me := thisProcess()
	cur, err := st.AcquireLease(ctx, sc.ID, me, stale)
	if errors.Is(err, store.ErrLeased) {
		return nil, fmt.Errorf("scan %s is running in process %d on %s; wait for it to end or stop it, then --resume", sc.ID, cur.PID, cur.Host)
	}
	if err != nil {
		return nil, fmt.Errorf("scan %s: take its lease: %w", sc.ID, err)
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(leaseRenew)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				// A failed renewal is retried at the next tick; the lease lasts four of them.
				_ = st.RenewLease(context.WithoutCancel(ctx), sc.ID, me.Holder, time.Now().Add(leaseTTL))
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
		_ = st.ReleaseLease(context.WithoutCancel(ctx), sc.ID, me.Holder)
	}, nil
}
