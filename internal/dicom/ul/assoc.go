package ul

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/pacswatch/pacswatch/internal/version"
)

// Defaults for Config and ServerConfig.
const (
	DefaultMaxPDU     = 16384   // advertised maximum P-DATA-TF variable field
	DefaultMaxReadPDU = 1 << 20 // cap on any PDU read
	DefaultMaxMessage = 4 << 20 // cap on a reassembled command or data set
	DefaultCallingAE  = version.CallingAE
)

const (
	releaseTimeout = 10 * time.Second // Release's own bound on waiting for A-RELEASE-RP
	abortTimeout   = time.Second      // Abort's bound on sending A-ABORT
	maxDiscard     = 256              // P-DATA-TF PDUs Release discards while waiting
	smallPDV       = 64 << 10         // PDV data copied to be sent in one write
)

// Info is what an association tells about itself and its peer, for audits.
// It holds no raw PDU bytes.
type Info struct {
	// CalledAE and CallingAE are the titles of the A-ASSOCIATE-RQ.
	CalledAE, CallingAE string
	// The peer's user information: implementation identity, maximum
	// P-DATA-TF variable field (0: no limit), asynchronous operations
	// window, and role selections.
	PeerImplementationClassUID, PeerImplementationVersion string
	PeerMaxPDU                                            uint32
	PeerAsyncOps                                          *AsyncOps
	PeerRoles                                             []RoleSelection
	// Accepted and Refused are the presentation contexts, in the order of
	// the A-ASSOCIATE-AC.
	Accepted []Context
	Refused  []RefusedContext
	// IdentityAC is the acceptor's user identity response, on the
	// requestor side.
	IdentityAC *UserIdentityAC
}

// Context is an accepted presentation context.
type Context struct {
	ID                             byte
	AbstractSyntax, TransferSyntax string
}

// RefusedContext is a presentation context that was not accepted.
type RefusedContext struct {
	ID             byte
	AbstractSyntax string
	Result         PCResult
}

// Assoc is an established association, on the requestor or the acceptor
// side. Its methods are not safe for concurrent use, except Close, which may
// be called from any goroutine to end blocked calls. After an error other than
// ErrReleaseRequested, an Assoc is unusable: Abort or Close it.
type Assoc struct {
	conn     net.Conn
	r        *bufio.Reader
	server   bool
	rq       *AAssociateRQ
	info     Info
	accepted [256]bool
	maxRead  uint32
	maxMsg   int
	fragment int      // largest PDV data we send; <= 0: the peer takes none
	wbuf     [12]byte // P-DATA-TF and PDV headers
	sbuf     []byte   // a small P-DATA-TF

	queue    []PDV       // PDVs of the last P-DATA-TF not yet consumed
	pdvs     []PDV       // queue's array, reused
	body     []byte      // the last P-DATA-TF's body, reused (readData)
	re       Reassembler // the messages the peer sends
	releaseQ bool        // the peer sent A-RELEASE-RQ

	wmu   sync.Mutex      // protects the fields below: the context that governs the connection
	wctx  context.Context // nil: none
	wstop func() bool     // unregisters wctx's AfterFunc
	wdone chan struct{}   // closed once that AfterFunc has moved the deadline into the past

	closeOnce sync.Once
	closeErr  error
	closed    chan struct{}
}

func limits(maxPDU, maxRead uint32, maxMsg int) (uint32, uint32, int) {
	if maxPDU == 0 {
		maxPDU = DefaultMaxPDU
	}
	if maxRead == 0 {
		maxRead = DefaultMaxReadPDU
	}
	if maxMsg <= 0 {
		maxMsg = DefaultMaxMessage
	}
	return maxPDU, max(maxRead, maxPDU), maxMsg
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func newAssoc(conn net.Conn, server bool, maxPDU, maxRead uint32, maxMsg int) *Assoc {
	maxPDU, maxRead, maxMsg = limits(maxPDU, maxRead, maxMsg)
	return &Assoc{
		conn:     conn,
		r:        bufio.NewReader(conn),
		server:   server,
		maxRead:  maxRead,
		maxMsg:   maxMsg,
		re:       Reassembler{MaxMessage: maxMsg},
		fragment: int(maxPDU) - 6, // replaced by the peer's limit
		closed:   make(chan struct{}),
	}
}

// setPeerMax sets the fragment size from the peer's maximum length: a PDV
// takes 6 bytes of the P-DATA-TF variable field; 0 means no limit, where our
// own advertised maximum is used.
func (a *Assoc) setPeerMax(peerMax uint32) {
	a.info.PeerMaxPDU = peerMax
	if peerMax != 0 {
		a.fragment = int(min(peerMax, 1<<30)) - 6
	}
}

func (a *Assoc) setPeer(u *UserInfo) {
	a.info.PeerImplementationClassUID = u.ImplementationClassUID
	a.info.PeerImplementationVersion = u.ImplementationVersionName
	a.info.PeerAsyncOps = u.AsyncOps
	a.info.PeerRoles = u.Roles
	a.setPeerMax(u.MaxLength)
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Info returns what the association negotiated.
func (a *Assoc) Info() Info { return a.info }

// RQ returns the association's A-ASSOCIATE-RQ: the peer's on the acceptor
// side, ours on the requestor side.
func (a *Assoc) RQ() *AAssociateRQ { return a.rq }

// Context returns the first accepted presentation context for abstractSyntax.
func (a *Assoc) Context(abstractSyntax string) (Context, bool) {
	for _, c := range a.info.Accepted {
		if c.AbstractSyntax == abstractSyntax {
			return c, true
		}
	}
	return Context{}, false
}

// watch makes ctx govern the connection: ctx's deadline becomes the connection's, and cancelling
// ctx moves the deadline into the past so that no read or write outlives ctx. The context stays in
// charge after the call, until a call under another context, Abort or Close takes over: the
// thousands of reads of a C-FIND under one context set the deadline and register with the context
// once, not once a read.
func (a *Assoc) watch(ctx context.Context) {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	if ctx == a.wctx {
		return
	}
	a.unwatchLocked()
	d, _ := ctx.Deadline() // zero: none
	a.conn.SetDeadline(d)
	done := make(chan struct{})
	a.wctx, a.wdone = ctx, done
	a.wstop = context.AfterFunc(ctx, func() {
		a.conn.SetDeadline(time.Unix(1, 0)) // in the past
		close(done)
	})
}

// unwatch ends the governing context's hold on the connection, so that the Assoc is no longer
// referenced from it.
func (a *Assoc) unwatch() {
	a.wmu.Lock()
	a.unwatchLocked()
	a.wmu.Unlock()
}

func (a *Assoc) unwatchLocked() {
	if a.wctx == nil {
		return
	}
	if !a.wstop() {
		<-a.wdone // the past deadline is set: the next watch overrides it
	}
	a.wctx, a.wstop, a.wdone = nil, nil, nil
}

// ctxErr adds the context's error, if any, to an I/O error caused by it. The
// connection's deadline may fire a moment before the context notices its own.
func ctxErr(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if d, ok := ctx.Deadline(); ok && cerr == nil && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(d) {
		cerr = context.DeadlineExceeded
	}
	if cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w (%w)", cerr, err)
	}
	return err
}

func (a *Assoc) readPDU(ctx context.Context) (PDU, error) {
	p, err := ReadPDU(a.r, a.maxRead)
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	return p, nil
}

func (a *Assoc) writePDU(ctx context.Context, p PDU) error {
	var buf [64]byte
	if _, err := a.conn.Write(p.Append(buf[:0])); err != nil {
		return ctxErr(ctx, err)
	}
	return nil
}

// Release releases the association (PS3.8 §7.2): it sends A-RELEASE-RQ,
// waits for A-RELEASE-RP, discarding P-DATA-TF PDUs still in flight, and
// closes the connection. It waits at most until ctx is done and at most 10
// seconds. A release collision (PS3.8 §7.2.1) is resolved as the standard
// says. Calling it on a closed association does nothing.
func (a *Assoc) Release(ctx context.Context) error {
	if a.isClosed() {
		return nil
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(ctx, releaseTimeout)
	defer cancel()
	a.watch(ctx)
	if err := a.writePDU(ctx, AReleaseRQ{}); err != nil {
		return fmt.Errorf("send A-RELEASE-RQ: %w", err)
	}
	collision := false
	for range maxDiscard {
		p, err := a.readPDU(ctx)
		if err != nil {
			return fmt.Errorf("read A-RELEASE-RP: %w", err)
		}
		switch p := p.(type) {
		case *PDataTF:
		case *AReleaseRP:
			if collision { // acceptor: answer the requestor's A-RELEASE-RQ last
				if err := a.writePDU(ctx, AReleaseRP{}); err != nil {
					return fmt.Errorf("send A-RELEASE-RP: %w", err)
				}
			}
			return nil
		case *AReleaseRQ:
			if !a.server { // requestor: answer first, then wait for ours
				if err := a.writePDU(ctx, AReleaseRP{}); err != nil {
					return fmt.Errorf("send A-RELEASE-RP: %w", err)
				}
			}
			collision = true
		case *AAbort:
			return &AbortedError{Abort: *p}
		default:
			return fmt.Errorf("%w: %s while waiting for A-RELEASE-RP", ErrUnexpectedPDU, p.Type())
		}
	}
	return fmt.Errorf("%w: no A-RELEASE-RP after %d PDUs", ErrProtocol, maxDiscard)
}

// ReplyRelease answers the peer's A-RELEASE-RQ (after ReadCommand returned
// ErrReleaseRequested) with A-RELEASE-RP and closes the connection.
func (a *Assoc) ReplyRelease(ctx context.Context) error {
	if !a.releaseQ {
		return fmt.Errorf("%w: no A-RELEASE-RQ to reply to", ErrProtocol)
	}
	if a.isClosed() {
		return nil
	}
	defer a.Close()
	a.watch(ctx)
	if err := a.writePDU(ctx, AReleaseRP{}); err != nil {
		return fmt.Errorf("send A-RELEASE-RP: %w", err)
	}
	return nil
}

// Abort sends an A-ABORT (source service-user, reason 0), waiting at most a
// second, and closes the connection. Calling it on a closed association does
// nothing.
func (a *Assoc) Abort() error {
	if a.isClosed() {
		return nil
	}
	defer a.Close()
	a.unwatch() // a context ending now must not cut the A-ABORT short
	a.conn.SetDeadline(time.Now().Add(abortTimeout))
	if err := a.writePDU(context.Background(), AAbort{}); err != nil {
		return fmt.Errorf("send A-ABORT: %w", err)
	}
	return nil
}

// Close closes the connection without a word to the peer. Calling it again
// returns the first result.
func (a *Assoc) Close() error {
	a.closeOnce.Do(func() {
		close(a.closed)
		a.closeErr = a.conn.Close()
		a.unwatch()
	})
	return a.closeErr
}

func (a *Assoc) isClosed() bool {
	select {
	case <-a.closed:
		return true
	default:
		return false
	}
}
