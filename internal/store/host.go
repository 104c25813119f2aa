package store

import (
	"context"
	"net/netip"

	"github.com/pacswatch/pacswatch/internal/probe"
)

// HostReader is a Reader that reads one address's results of a scan without reading the
// scan's other results (SQLite: a range of its primary key). serve's host page and watch's time
// to fix read a system's history through HostResults, which uses it when a backend offers it.
type HostReader interface {
	// HostResults calls fn for every stored result of address ip in scan scanID, ordered by
	// port, and stops at the first error fn returns, returning it. It returns ErrNotFound for
	// an unknown scan; an address without results is no call and no error.
	HostResults(ctx context.Context, scanID string, ip netip.Addr, fn func(probe.Result) error) error
}

// HostResults calls fn for every stored result of address ip in scan scanID, ordered by port, as
// HostReader documents: through r's own HostResults when r is a HostReader, else by reading the
// scan's results in address order up to ip's last.
func HostResults(ctx context.Context, r Reader, scanID string, ip netip.Addr, fn func(probe.Result) error) error {
	if h, ok := r.(HostReader); ok {
		return h.HostResults(ctx, scanID, ip, fn)
	}
	err := r.Results(ctx, scanID, func(res probe.Result) error {
		switch c := res.IP.Compare(ip); {
		case c < 0:
			return nil
		case c > 0:
			return errStop
		}
		return fn(res)
	})
	if err == errStop {
		return nil
	}
	return err
}
