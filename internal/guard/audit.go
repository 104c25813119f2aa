package guard

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

// Events of audit records.
const (
	EventConnection     = "connection"      // a connection that never became an association request
	EventAssociation    = "association"     // an association request, accepted or rejected
	EventAssociationEnd = "association-end" // an accepted association ended
	EventRequest        = "request"         // a DIMSE request, forwarded or refused
)

// Record is one audit record, one JSON line. It holds only allow-listed facts: who (calling AE,
// policy entry, client certificate's common name), where from (address), what (service, query
// level, whether the query was universal, move destination), what became of it (decision,
// refusal, status, counts, bytes, durations). No value of any identifier or data set is ever
// put in a Record.
type Record struct {
	Time     string `json:"time"` // RFC 3339, UTC, milliseconds
	Event    string `json:"event"`
	Assoc    uint64 `json:"assoc"` // the guard's number for the connection
	Source   string `json:"source"`
	TLS      bool   `json:"tls"`
	ClientCN string `json:"client_cert_cn,omitempty"`
	CalledAE string `json:"called_ae,omitempty"`
	Calling  string `json:"calling_ae,omitempty"`
	Peer     string `json:"peer,omitempty"` // the policy entry that admitted the peer

	// association: "accepted" or "rejected"; connection: why nothing came of it.
	Result string `json:"result,omitempty"`
	// Refusal names the rule that refused (policy.Refusal values and the guard's own).
	Refusal string    `json:"refusal,omitempty"`
	By      string    `json:"by,omitempty"` // "guard" or "upstream": who refused
	Reject  *RejectRJ `json:"reject,omitempty"`

	// association-end.
	End      string `json:"end,omitempty"`
	Requests int    `json:"requests,omitempty"`

	// request.
	Service         string    `json:"service,omitempty"` // echo, find, get, move, store
	Command         string    `json:"command,omitempty"` // C-FIND-RQ and the like
	SOPClass        string    `json:"sop_class,omitempty"`
	MessageID       *uint16   `json:"message_id,omitempty"`
	Level           string    `json:"level,omitempty"`
	Universal       *bool     `json:"universal,omitempty"` // C-FIND
	MoveDestination string    `json:"move_destination,omitempty"`
	Decision        string    `json:"decision,omitempty"` // forwarded, refused
	Status          string    `json:"status,omitempty"`   // 0x0000 and the like
	StatusClass     string    `json:"status_class,omitempty"`
	Outcome         string    `json:"outcome,omitempty"` // "incomplete": the association ended first
	Results         *int      `json:"results,omitempty"` // pending responses: C-FIND matches
	Instances       *int      `json:"instances,omitempty"`
	SubOps          *SubOpRec `json:"sub_operations,omitempty"`

	BytesIn    int64 `json:"bytes_in"`  // client to upstream
	BytesOut   int64 `json:"bytes_out"` // upstream to client
	DurationMS int64 `json:"duration_ms"`
}

// RejectRJ is an A-ASSOCIATE-RJ's fields and their meaning (PS3.8 Table 9-21).
type RejectRJ struct {
	Result  byte   `json:"result"`
	Source  byte   `json:"source"`
	Reason  byte   `json:"reason"`
	Meaning string `json:"meaning"`
}

// SubOpRec is the sub-operation counts of a C-GET or C-MOVE's last response.
type SubOpRec struct {
	Remaining int `json:"remaining"`
	Completed int `json:"completed"`
	Failed    int `json:"failed"`
	Warning   int `json:"warning"`
}

// auditLog writes records as JSON Lines, one write per record.
type auditLog struct {
	mu     sync.Mutex // protects w
	w      io.Writer
	events func(Record)
	now    func() time.Time
	log    *slog.Logger
	failed bool
}

func (a *auditLog) emit(r Record) {
	r.Time = a.now().UTC().Format("2006-01-02T15:04:05.000Z07:00")
	if a.events != nil {
		a.events(r)
	}
	if a.w == nil {
		return
	}
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	b = append(b, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.w.Write(b); err != nil && !a.failed {
		a.failed = true
		a.log.Error("audit log write failed", "error", err.Error())
	}
}

// base fills in who and where.
func (s *session) base(event string) Record {
	r := Record{Event: event, Assoc: s.id, Source: s.from.String(), TLS: s.tls}
	if s.cert != nil {
		r.ClientCN = s.cert.Subject.CommonName
	}
	if s.rq != nil {
		r.CalledAE, r.Calling = s.rq.CalledAE, s.rq.CallingAE
	}
	if s.peer != nil {
		r.Peer = s.peer.Name
	}
	return r
}

func (a *auditLog) connection(s *session, why string) {
	r := s.base(EventConnection)
	r.Result = why
	a.emit(r)
}

func (a *auditLog) rejected(s *session, rj ul.AAssociateRJ, why, by string) {
	r := s.base(EventAssociation)
	r.Result, r.Refusal, r.By = "rejected", why, by
	if rj != (ul.AAssociateRJ{}) {
		r.Reject = &RejectRJ{Result: rj.Result, Source: rj.Source, Reason: rj.Reason, Meaning: rj.Meaning()}
	}
	if m := s.g.cfg.Metrics; m != nil {
		m.associations.WithLabelValues("rejected", why).Inc()
	}
	a.emit(r)
}

func (a *auditLog) accepted(s *session) {
	r := s.base(EventAssociation)
	r.Result = "accepted"
	if m := s.g.cfg.Metrics; m != nil {
		m.associations.WithLabelValues("accepted", "").Inc()
	}
	a.emit(r)
}

func (a *auditLog) ended(s *session) {
	r := s.base(EventAssociationEnd)
	s.mu.Lock()
	r.End, r.Requests = s.end, s.nreq
	s.mu.Unlock()
	if r.End == "" {
		r.End = endGuardClosed
	}
	r.BytesIn, r.BytesOut = s.in.Load(), s.out.Load()
	r.DurationMS = a.now().Sub(s.t0).Milliseconds()
	if m := s.g.cfg.Metrics; m != nil {
		m.bytes.WithLabelValues("in").Add(float64(r.BytesIn))
		m.bytes.WithLabelValues("out").Add(float64(r.BytesOut))
	}
	a.emit(r)
}

func (a *auditLog) request(s *session, q *request, outcome string) {
	r := s.base(EventRequest)
	r.Service, r.Command, r.SOPClass = string(q.service), q.field.String(), q.sopClass
	id := q.msgID
	r.MessageID = &id
	r.Level, r.MoveDestination = string(q.level), q.moveDest
	if q.field == dimse.CFindRQ && q.level != "" {
		u := q.universal
		r.Universal = &u
	}
	r.Decision, r.Refusal = "forwarded", q.refusal
	if q.refusal != "" {
		r.Decision, r.By = "refused", "guard"
	}
	if q.answered {
		r.Status = fmt.Sprintf("0x%04X", uint16(q.status))
		r.StatusClass = q.status.Class().String()
	}
	r.Outcome = outcome
	if q.refusal == "" {
		switch q.field {
		case dimse.CFindRQ, dimse.CGetRQ, dimse.CMoveRQ:
			n := q.results
			r.Results = &n
		}
		if q.field == dimse.CGetRQ {
			n := q.stores
			r.Instances = &n
		}
		if q.hasSubOps {
			r.SubOps = &SubOpRec{Remaining: q.subOps[0], Completed: q.subOps[1], Failed: q.subOps[2], Warning: q.subOps[3]}
		}
	}
	r.BytesIn, r.BytesOut = q.bytesIn.Load(), q.bytesOut.Load()
	r.DurationMS = a.now().Sub(q.t0).Milliseconds()
	a.emit(r)
}
