package ul

import (
	"context"
	"fmt"
	"net"
)

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
	a.watch(ctx)
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
