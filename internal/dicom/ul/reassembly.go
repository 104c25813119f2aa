package ul

import "fmt"

// Reassembler rebuilds the messages that PDVs carry (PS3.8 §9.3.5.1 and Annex
// E, PS3.7 §6.3.1): a command set from its fragments, then the data set of
// that command, if any, on the same presentation context. It reads no
// connection: whatever reads P-DATA-TF PDUs, an Assoc or a proxy that forwards
// them, hands it their PDVs in order, one Reassembler for each direction of an
// association. It does not know which presentation contexts were accepted:
// that is its caller's to check. The zero value is ready to use.
type Reassembler struct {
	// MaxMessage caps a reassembled command set or data set
	// (ErrMessageTooLarge); default DefaultMaxMessage.
	MaxMessage int
	// DiscardData checks the fragments of data sets but keeps none of their
	// bytes: a data set's Message has no Data, and MaxMessage does not bound
	// it. A proxy that reads the commands and forwards data sets of any size
	// stays within one PDU of memory this way.
	DiscardData bool

	busy    bool   // a message is partly rebuilt
	ctxID   byte   // the presentation context of that message, or of the last one
	command bool   // that message is a command set
	dataOK  bool   // a data set may follow the last command
	dataCtx byte   // on this presentation context
	buf     []byte // the message so far
}

// Message is a reassembled command set or data set.
type Message struct {
	ContextID byte
	Command   bool   // a command set; false: a data set
	Data      []byte // the caller's: the Reassembler keeps no reference to it
}

// expect is the kind of fragment a reader expects where a message starts.
type expect uint8

const (
	anyFragment expect = iota
	commandFragment
	dataFragment
)

// Add takes the next PDV. When v completes a message, Add returns it with ok
// true. A data fragment with no command before it or on another presentation
// context than its command, a fragment of one kind inside a message of the
// other, and fragments of one message on two contexts are ErrProtocol; a
// message over MaxMessage is ErrMessageTooLarge. After an error the
// Reassembler is unusable, as the association is.
//
// Only a command says whether a data set follows it (Command Data Set Type,
// PS3.7 §E.1), so after a command Add takes either its data set or the next
// command.
func (r *Reassembler) Add(v PDV) (m Message, ok bool, err error) {
	return r.add(v, anyFragment)
}

// add is Add for a reader that expects want where a message starts.
func (r *Reassembler) add(v PDV, want expect) (Message, bool, error) {
	if err := r.step(v, want); err != nil {
		return Message{}, false, err
	}
	if r.command || !r.DiscardData {
		limit := r.MaxMessage
		if limit <= 0 {
			limit = DefaultMaxMessage
		}
		if len(v.Data) > limit-len(r.buf) {
			return Message{}, false, fmt.Errorf("%w: over %d bytes", ErrMessageTooLarge, limit)
		}
		r.buf = append(r.buf, v.Data...)
	}
	if !v.Last {
		return Message{}, false, nil
	}
	m := Message{ContextID: r.ctxID, Command: r.command, Data: r.buf}
	r.buf = nil
	return m, true, nil
}

// step checks v against the messages so far and records it, without keeping
// its bytes.
func (r *Reassembler) step(v PDV, want expect) error {
	if err := r.check(v, want); err != nil {
		return err
	}
	if !r.busy {
		r.busy, r.ctxID, r.command, r.dataOK, r.buf = true, v.ContextID, v.Command, false, nil
	}
	if v.Last {
		r.busy = false
		r.dataOK, r.dataCtx = r.command, r.ctxID
	}
	return nil
}

func (r *Reassembler) check(v PDV, want expect) error {
	kind := func(command bool) string {
		if command {
			return "command"
		}
		return "data set"
	}
	switch {
	case r.busy && v.ContextID != r.ctxID:
		return fmt.Errorf("%w: %s fragments on presentation contexts %d and %d", ErrProtocol, kind(r.command), r.ctxID, v.ContextID)
	case r.busy && v.Command != r.command:
		return fmt.Errorf("%w: %s fragment inside a %s", ErrProtocol, kind(v.Command), kind(r.command))
	case r.busy:
		return nil
	case v.Command && want == dataFragment:
		return fmt.Errorf("%w: command fragment where a data set was expected", ErrProtocol)
	case v.Command:
		return nil
	case want == commandFragment:
		return fmt.Errorf("%w: data fragment where a command was expected", ErrProtocol)
	case !r.dataOK:
		return fmt.Errorf("%w: data set fragment with no command before it", ErrProtocol)
	case v.ContextID != r.dataCtx:
		return fmt.Errorf("%w: data set on presentation context %d after a command on %d", ErrProtocol, v.ContextID, r.dataCtx)
	}
	return nil
}

// inData reports whether a data set is partly read.
func (r *Reassembler) inData() bool { return r.busy && !r.command }

// dataExpected reports whether a data set may come next: one is partly read,
// or the last command was read and no data set after it.
func (r *Reassembler) dataExpected() bool { return r.inData() || (!r.busy && r.dataOK) }

// noData records that the last command has no more data set to read.
func (r *Reassembler) noData() { r.dataOK = false }
