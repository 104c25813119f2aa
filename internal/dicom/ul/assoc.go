package ul

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// Defaults for Config and ServerConfig.
const (
	DefaultMaxPDU     = 16384   // advertised maximum P-DATA-TF variable field
	DefaultMaxReadPDU = 1 << 20 // cap on any PDU read
	DefaultMaxMessage = 4 << 20 // cap on a reassembled command or data set
	DefaultCallingAE  = "PACSWATCH"
)

const (
	releaseTimeout = 10 * time.Second // Release's own bound on waiting for A-RELEASE-RP
	abortTimeout   = time.Second      // Abort's bound on sending A-ABORT
	maxDiscard     = 256              // P-DATA-TF PDUs Release discards while waiting
	smallPDV       = 64 << 10         // PDV data copied to be sent in one write
)

// Config configures an association requestor.
type Config struct {
	CalledAE  string // required
	CallingAE string // default DefaultCallingAE
	// Contexts are proposed in order with IDs 1, 3, 5, ... (at most 128).
	Contexts []ContextProposal
	Roles    []RoleSelection
	Identity *UserIdentityRQ
	// MaxPDU is the maximum P-DATA-TF variable field we advertise; default
	// DefaultMaxPDU.
	MaxPDU uint32
	// MaxReadPDU caps the length of any PDU we read, whatever we advertised;
	// default DefaultMaxReadPDU, and never below MaxPDU.
	MaxReadPDU uint32
	// MaxMessage caps a reassembled command set (ReadCommand) or data set
	// (ReadData); default DefaultMaxMessage.
	MaxMessage int
	// ImplementationClassUID and ImplementationVersionName default to
	// pacswatch's own.
	ImplementationClassUID, ImplementationVersionName string
}

// ContextProposal is a presentation context to propose.
type ContextProposal struct {
	AbstractSyntax   string
	TransferSyntaxes []string // in order of preference
}

// ServerConfig configures an association acceptor.
type ServerConfig struct {
	// Decide answers a request with an A-ASSOCIATE-AC or an
	// A-ASSOCIATE-RJ. The AC's empty fields are filled in: protocol
	// version 1, the application context, the request's AE titles, and
	// the user information MaxLength and implementation identity from this
	// config. Returning neither rejects permanently with no reason given.
	// A nil Decide rejects a request whose protocol version lacks bit 0 or
	// whose application context is not DICOM's, and otherwise answers with
	// DefaultAC(rq, nil, nil).
	Decide func(rq *AAssociateRQ) (*AAssociateAC, *AAssociateRJ)

	// The limits and identity are as in Config.
	MaxPDU, MaxReadPDU                                uint32
	MaxMessage                                        int
	ImplementationClassUID, ImplementationVersionName string
}

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

	queue    []PDV // PDVs of the last P-DATA-TF not yet consumed
	dataCtx  byte  // context of the data set that may follow the last command; 0: none
	inData   bool  // a data set has been partly consumed
	releaseQ bool  // the peer sent A-RELEASE-RQ

	closeOnce sync.Once
	closeErr  error
	closed    chan struct{}
}

// Dial connects to addr over TCP and requests an association; see NewClient.
func Dial(ctx context.Context, addr string, cfg Config) (*Assoc, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return NewClient(ctx, conn, cfg)
}

// NewClient requests an association over conn, which it owns from then on:
// it sends an A-ASSOCIATE-RQ and reads one PDU. An A-ASSOCIATE-AC yields an
// *Assoc; an A-ASSOCIATE-RJ a *RejectedError, an A-ABORT an *AbortedError,
// any other PDU ErrUnexpectedPDU, and an AC that answers a context ID or
// accepts a transfer syntax that was not proposed ErrMalformed. A proposed
// context the AC does not answer is recorded as refused with PCNoReason. On
// any error conn is closed at once: some servers stall while a rejected
// socket stays open.
func NewClient(ctx context.Context, conn net.Conn, cfg Config) (_ *Assoc, err error) {
	defer func() {
		if err != nil {
			conn.Close()
		}
	}()
	rq, err := cfg.request()
	if err != nil {
		return nil, err
	}
	a := newAssoc(conn, false, cfg.MaxPDU, cfg.MaxReadPDU, cfg.MaxMessage)
	a.rq = rq
	defer a.watch(ctx)()
	if err := a.writePDU(ctx, rq); err != nil {
		return nil, fmt.Errorf("send A-ASSOCIATE-RQ: %w", err)
	}
	p, err := a.readPDU(ctx)
	if err != nil {
		return nil, fmt.Errorf("read A-ASSOCIATE-AC: %w", err)
	}
	switch p := p.(type) {
	case *AAssociateAC:
		if err := a.establishClient(p); err != nil {
			return nil, err
		}
		return a, nil
	case *AAssociateRJ:
		return nil, &RejectedError{RJ: *p}
	case *AAbort:
		return nil, &AbortedError{Abort: *p}
	default:
		return nil, fmt.Errorf("%w: %s in reply to A-ASSOCIATE-RQ", ErrUnexpectedPDU, p.Type())
	}
}

// request builds the A-ASSOCIATE-RQ of cfg, filling in defaults.
func (cfg *Config) request() (*AAssociateRQ, error) {
	if cfg.CallingAE == "" {
		cfg.CallingAE = DefaultCallingAE
	}
	if len(cfg.Contexts) > maxContexts {
		return nil, fmt.Errorf("ul: %d presentation contexts, at most %d", len(cfg.Contexts), maxContexts)
	}
	cfg.MaxPDU, cfg.MaxReadPDU, cfg.MaxMessage = limits(cfg.MaxPDU, cfg.MaxReadPDU, cfg.MaxMessage)
	rq := &AAssociateRQ{
		ProtocolVersion:    1,
		CalledAE:           cfg.CalledAE,
		CallingAE:          cfg.CallingAE,
		ApplicationContext: ApplicationContext,
		UserInfo: UserInfo{
			MaxLength:                 cfg.MaxPDU,
			ImplementationClassUID:    orDefault(cfg.ImplementationClassUID, ImplementationClassUID),
			ImplementationVersionName: orDefault(cfg.ImplementationVersionName, ImplementationVersionName),
			Roles:                     cfg.Roles,
			Identity:                  cfg.Identity,
		},
	}
	for i, c := range cfg.Contexts {
		rq.PresentationContexts = append(rq.PresentationContexts, PresentationContextRQ{
			ID: byte(2*i + 1), AbstractSyntax: c.AbstractSyntax, TransferSyntaxes: c.TransferSyntaxes,
		})
	}
	if err := rq.Validate(); err != nil {
		return nil, fmt.Errorf("ul: %w", err)
	}
	return rq, nil
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

// establishClient checks an A-ASSOCIATE-AC against our request and records
// what it tells.
func (a *Assoc) establishClient(ac *AAssociateAC) error {
	proposed := make(map[byte]*PresentationContextRQ, len(a.rq.PresentationContexts))
	for i := range a.rq.PresentationContexts {
		pc := &a.rq.PresentationContexts[i]
		proposed[pc.ID] = pc
	}
	var answered [256]bool
	for _, pc := range ac.PresentationContexts {
		rq, ok := proposed[pc.ID]
		switch {
		case !ok:
			return fmt.Errorf("%w: A-ASSOCIATE-AC answers presentation context %d, which was not proposed", ErrMalformed, pc.ID)
		case answered[pc.ID]:
			return fmt.Errorf("%w: A-ASSOCIATE-AC answers presentation context %d twice", ErrMalformed, pc.ID)
		}
		answered[pc.ID] = true
		if pc.Result != PCAcceptance {
			a.info.Refused = append(a.info.Refused, RefusedContext{ID: pc.ID, AbstractSyntax: rq.AbstractSyntax, Result: pc.Result})
			continue
		}
		if !contains(rq.TransferSyntaxes, pc.TransferSyntax) {
			return fmt.Errorf("%w: A-ASSOCIATE-AC accepts presentation context %d with transfer syntax %q, which was not proposed",
				ErrMalformed, pc.ID, pc.TransferSyntax)
		}
		a.accepted[pc.ID] = true
		a.info.Accepted = append(a.info.Accepted, Context{ID: pc.ID, AbstractSyntax: rq.AbstractSyntax, TransferSyntax: pc.TransferSyntax})
	}
	for _, pc := range a.rq.PresentationContexts {
		if !answered[pc.ID] {
			a.info.Refused = append(a.info.Refused, RefusedContext{ID: pc.ID, AbstractSyntax: pc.AbstractSyntax, Result: PCNoReason})
		}
	}
	a.info.CalledAE, a.info.CallingAE = a.rq.CalledAE, a.rq.CallingAE
	a.info.IdentityAC = ac.UserInfo.IdentityAC
	a.setPeer(&ac.UserInfo)
	return nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Accept reads an A-ASSOCIATE-RQ from conn, which it owns from then on, and
// answers it as cfg.Decide says. It returns an *Assoc when it accepted, and a
// *RejectedError (after sending the A-ASSOCIATE-RJ) when it rejected. Any
// other PDU first is ErrUnexpectedPDU (an A-ABORT is an *AbortedError). On any
// error conn is closed.
func Accept(ctx context.Context, conn net.Conn, cfg ServerConfig) (_ *Assoc, err error) {
	defer func() {
		if err != nil {
			conn.Close()
		}
	}()
	a := newAssoc(conn, true, cfg.MaxPDU, cfg.MaxReadPDU, cfg.MaxMessage)
	defer a.watch(ctx)()
	p, err := a.readPDU(ctx)
	if err != nil {
		return nil, fmt.Errorf("read A-ASSOCIATE-RQ: %w", err)
	}
	var rq *AAssociateRQ
	switch p := p.(type) {
	case *AAssociateRQ:
		rq = p
	case *AAbort:
		return nil, &AbortedError{Abort: *p}
	default:
		return nil, fmt.Errorf("%w: %s instead of A-ASSOCIATE-RQ", ErrUnexpectedPDU, p.Type())
	}
	a.rq = rq
	decide := cfg.Decide
	if decide == nil {
		decide = defaultDecide
	}
	ac, rj := decide(rq)
	if ac == nil && rj == nil {
		rj = &AAssociateRJ{Result: 1, Source: 1, Reason: 1}
	}
	if rj != nil {
		if err := a.writePDU(ctx, rj); err != nil {
			return nil, fmt.Errorf("send A-ASSOCIATE-RJ: %w", err)
		}
		return nil, &RejectedError{RJ: *rj}
	}
	ac = a.completeAC(ac, &cfg)
	if err := ac.Validate(); err != nil {
		return nil, fmt.Errorf("ul: %w", err)
	}
	if err := a.writePDU(ctx, ac); err != nil {
		return nil, fmt.Errorf("send A-ASSOCIATE-AC: %w", err)
	}
	return a, nil
}

// completeAC fills in the empty fields of a decided AC and records it.
func (a *Assoc) completeAC(decided *AAssociateAC, cfg *ServerConfig) *AAssociateAC {
	ac := *decided
	rq := a.rq
	if ac.ProtocolVersion == 0 {
		ac.ProtocolVersion = 1
	}
	ac.ApplicationContext = orDefault(ac.ApplicationContext, ApplicationContext)
	ac.CalledAE = orDefault(ac.CalledAE, rq.CalledAE)
	ac.CallingAE = orDefault(ac.CallingAE, rq.CallingAE)
	maxPDU, _, _ := limits(cfg.MaxPDU, cfg.MaxReadPDU, cfg.MaxMessage)
	if ac.UserInfo.MaxLength == 0 {
		ac.UserInfo.MaxLength = maxPDU
	}
	ac.UserInfo.ImplementationClassUID = orDefault(ac.UserInfo.ImplementationClassUID,
		orDefault(cfg.ImplementationClassUID, ImplementationClassUID))
	ac.UserInfo.ImplementationVersionName = orDefault(ac.UserInfo.ImplementationVersionName,
		orDefault(cfg.ImplementationVersionName, ImplementationVersionName))

	abstract := make(map[byte]string, len(rq.PresentationContexts))
	for _, pc := range rq.PresentationContexts {
		abstract[pc.ID] = pc.AbstractSyntax
	}
	for _, pc := range ac.PresentationContexts {
		if pc.Result == PCAcceptance {
			a.accepted[pc.ID] = true
			a.info.Accepted = append(a.info.Accepted, Context{ID: pc.ID, AbstractSyntax: abstract[pc.ID], TransferSyntax: pc.TransferSyntax})
		} else {
			a.info.Refused = append(a.info.Refused, RefusedContext{ID: pc.ID, AbstractSyntax: abstract[pc.ID], Result: pc.Result})
		}
	}
	a.info.CalledAE, a.info.CallingAE = rq.CalledAE, rq.CallingAE
	a.setPeer(&rq.UserInfo)
	return &ac
}

func defaultDecide(rq *AAssociateRQ) (*AAssociateAC, *AAssociateRJ) {
	if rq.ProtocolVersion&1 == 0 {
		return nil, &AAssociateRJ{Result: 1, Source: 2, Reason: 2}
	}
	if rq.ApplicationContext != ApplicationContext {
		return nil, &AAssociateRJ{Result: 1, Source: 1, Reason: 2}
	}
	return DefaultAC(rq, nil, nil), nil
}

// DefaultAC builds an A-ASSOCIATE-AC that answers every presentation context
// of rq: one with an even ID is refused (PCNoReason), one whose abstract
// syntax is not supported (nil supports all) is refused with
// PCAbstractSyntaxNotSupported, and the others are accepted with the first
// of prefer that the requestor proposed, or, when prefer is empty, with the
// requestor's first choice; when none of prefer was proposed the context is
// refused with PCTransferSyntaxesNotSupported. The other fields are left
// for Accept to fill in.
func DefaultAC(rq *AAssociateRQ, supported func(abstractSyntax string) bool, prefer []string) *AAssociateAC {
	ac := &AAssociateAC{}
	for _, pc := range rq.PresentationContexts {
		r := PresentationContextAC{ID: pc.ID, Result: PCTransferSyntaxesNotSupported}
		switch {
		case pc.ID%2 == 0:
			r.Result = PCNoReason
		case supported != nil && !supported(pc.AbstractSyntax):
			r.Result = PCAbstractSyntaxNotSupported
		case len(prefer) == 0 && len(pc.TransferSyntaxes) > 0:
			r.Result, r.TransferSyntax = PCAcceptance, pc.TransferSyntaxes[0]
		default:
			for _, ts := range prefer {
				if contains(pc.TransferSyntaxes, ts) {
					r.Result, r.TransferSyntax = PCAcceptance, ts
					break
				}
			}
		}
		ac.PresentationContexts = append(ac.PresentationContexts, r)
	}
	return ac
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

// watch makes ctx govern the connection until the returned function is
// called: ctx's deadline becomes the connection's, and cancelling ctx moves
// the deadline into the past so that no read or write outlives ctx.
func (a *Assoc) watch(ctx context.Context) (stop func()) {
	d, _ := ctx.Deadline() // zero: none
	a.conn.SetDeadline(d)
	done := make(chan struct{})
	stopf := context.AfterFunc(ctx, func() {
		a.conn.SetDeadline(time.Unix(1, 0)) // in the past
		close(done)
	})
	return func() {
		if !stopf() {
			<-done // the past deadline is set: the next watch overrides it
		}
	}
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

// Send sends a message on an accepted presentation context: the command set,
// then the data set if data is not empty, each fragmented into PDVs sized to
// the peer's maximum length, one PDV per P-DATA-TF.
func (a *Assoc) Send(ctx context.Context, contextID byte, command, data []byte) error {
	if !a.accepted[contextID] {
		return fmt.Errorf("%w: send on presentation context %d, which is not accepted", ErrProtocol, contextID)
	}
	if a.fragment <= 0 {
		return fmt.Errorf("%w: peer maximum PDU length %d leaves no room for data", ErrProtocol, a.info.PeerMaxPDU)
	}
	defer a.watch(ctx)()
	if err := a.sendPDVs(contextID, true, command); err != nil {
		return fmt.Errorf("send command: %w", ctxErr(ctx, err))
	}
	if len(data) == 0 {
		return nil
	}
	if err := a.sendPDVs(contextID, false, data); err != nil {
		return fmt.Errorf("send data set: %w", ctxErr(ctx, err))
	}
	return nil
}

func (a *Assoc) sendPDVs(contextID byte, command bool, b []byte) error {
	for {
		n := min(len(b), a.fragment)
		v := PDV{ContextID: contextID, Command: command, Last: n == len(b)}
		h := a.wbuf[:]
		h[0], h[1] = byte(TypePDataTF), 0
		binary.BigEndian.PutUint32(h[2:], uint32(n+6))
		binary.BigEndian.PutUint32(h[6:], uint32(n+2))
		h[10], h[11] = contextID, v.controlHeader()
		var err error
		if n <= smallPDV { // one write, so one TLS record and one segment
			a.sbuf = append(append(a.sbuf[:0], h...), b[:n]...)
			_, err = a.conn.Write(a.sbuf)
		} else { // writev where the connection has it, no copy
			bufs := net.Buffers{h, b[:n]}
			_, err = bufs.WriteTo(a.conn)
		}
		if err != nil {
			return err
		}
		if v.Last {
			return nil
		}
		b = b[n:]
	}
}

// next returns the next PDV on an accepted context, reading a P-DATA-TF when
// none is queued.
func (a *Assoc) next(ctx context.Context) (PDV, error) {
	for len(a.queue) == 0 {
		p, err := a.readPDU(ctx)
		if err != nil {
			return PDV{}, err
		}
		switch p := p.(type) {
		case *PDataTF:
			a.queue = p.PDVs
		case *AAbort:
			a.Close()
			return PDV{}, &AbortedError{Abort: *p}
		case *AReleaseRQ:
			a.releaseQ = true
			return PDV{}, ErrReleaseRequested
		default:
			return PDV{}, fmt.Errorf("%w: %s during data transfer", ErrUnexpectedPDU, p.Type())
		}
	}
	v := a.queue[0]
	a.queue = a.queue[1:]
	if !a.accepted[v.ContextID] {
		return PDV{}, fmt.Errorf("%w: pdv on presentation context %d, which is not accepted", ErrProtocol, v.ContextID)
	}
	return v, nil
}

// nextData returns the next fragment of the data set that follows the last
// command.
func (a *Assoc) nextData(ctx context.Context) (PDV, error) {
	if a.dataCtx == 0 {
		return PDV{}, fmt.Errorf("%w: no command read before the data set", ErrProtocol)
	}
	v, err := a.next(ctx)
	switch {
	case err != nil:
		return PDV{}, err
	case v.Command:
		return PDV{}, fmt.Errorf("%w: command fragment where a data set was expected", ErrProtocol)
	case v.ContextID != a.dataCtx:
		return PDV{}, fmt.Errorf("%w: data set on presentation context %d after a command on %d", ErrProtocol, v.ContextID, a.dataCtx)
	}
	a.inData = !v.Last
	if v.Last {
		a.dataCtx = 0
	}
	return v, nil
}

// ReadCommand reads the next command set, reassembled from its fragments and
// bounded by MaxMessage (ErrMessageTooLarge), and the presentation context it
// came on. The rest of a data set that was partly read through DataReader is
// discarded first. A data fragment where the command should start, a
// context that was not accepted, or fragments on different contexts are
// ErrProtocol; an A-RELEASE-RQ is ErrReleaseRequested; an A-ABORT an
// *AbortedError.
func (a *Assoc) ReadCommand(ctx context.Context) (contextID byte, cmd []byte, err error) {
	defer a.watch(ctx)()
	for a.inData {
		if _, err := a.nextData(ctx); err != nil {
			return 0, nil, fmt.Errorf("discard data set: %w", err)
		}
	}
	a.dataCtx = 0
	for {
		v, err := a.next(ctx)
		if err != nil {
			return 0, nil, fmt.Errorf("read command: %w", err)
		}
		switch {
		case !v.Command:
			return 0, nil, fmt.Errorf("read command: %w: data fragment where a command was expected", ErrProtocol)
		case contextID == 0:
			contextID = v.ContextID
		case v.ContextID != contextID:
			return 0, nil, fmt.Errorf("read command: %w: command fragments on presentation contexts %d and %d", ErrProtocol, contextID, v.ContextID)
		}
		if len(v.Data) > a.maxMsg-len(cmd) {
			return 0, nil, fmt.Errorf("read command: %w: over %d bytes", ErrMessageTooLarge, a.maxMsg)
		}
		cmd = append(cmd, v.Data...)
		if v.Last {
			a.dataCtx = contextID
			return contextID, cmd, nil
		}
	}
}

// ReadData reads the data set that follows the last command, reassembled and
// bounded by MaxMessage (ErrMessageTooLarge). It is ErrProtocol when no
// command was read, when the data set was already read, when a command
// fragment comes instead, or when the data set is on another context than its
// command. Call it only when the command says a data set follows.
func (a *Assoc) ReadData(ctx context.Context) ([]byte, error) {
	defer a.watch(ctx)()
	var data []byte
	for {
		v, err := a.nextData(ctx)
		if err != nil {
			return nil, fmt.Errorf("read data set: %w", err)
		}
		if len(v.Data) > a.maxMsg-len(data) {
			return nil, fmt.Errorf("read data set: %w: over %d bytes", ErrMessageTooLarge, a.maxMsg)
		}
		data = append(data, v.Data...)
		if v.Last {
			if data == nil {
				data = []byte{}
			}
			return data, nil
		}
	}
}

// DataReader returns a reader of the data set that follows the last command,
// one fragment at a time, so that memory stays within one PDU whatever the
// data set's size; it returns io.EOF after the last fragment. Its reads are
// governed by ctx and report errors as ReadData does; it has no byte cap of
// its own. A following ReadCommand discards the rest of a data set partly read
// through it; one not read at all is the caller's to drain, since only the
// command says whether a data set follows (dimse does so).
func (a *Assoc) DataReader(ctx context.Context) io.Reader {
	return &dataReader{a: a, ctx: ctx}
}

type dataReader struct {
	a    *Assoc
	ctx  context.Context
	buf  []byte
	last bool
	err  error
}

func (r *dataReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		switch {
		case r.last:
			return 0, io.EOF
		case r.err != nil:
			return 0, r.err
		}
		stop := r.a.watch(r.ctx)
		v, err := r.a.nextData(r.ctx)
		stop()
		if err != nil {
			r.err = fmt.Errorf("read data set: %w", err)
			return 0, r.err
		}
		r.buf, r.last = v.Data, v.Last
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
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
	defer a.watch(ctx)()
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
	defer a.watch(ctx)()
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
