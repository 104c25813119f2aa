package ul

import (
	"context"
	"fmt"
	"net"
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
	a.watch(ctx)
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
