package ul_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

// FuzzReassembler feeds a Reassembler two kinds of input. A round trip: msg is
// cut into a command set and a data set, fragmented in PDVs of frag+1 bytes,
// and must come back whole. And arbitrary PDVs, one per byte of msg (bits 0-1:
// context 1, 3, 5 or 7; bit 2: command; bit 3: last; bits 4-7: data length),
// which must end in a classified error or in messages within MaxMessage.
func FuzzReassembler(f *testing.F) {
	f.Add([]byte("command then data"), uint16(7), uint8(2))
	f.Add([]byte{}, uint16(0), uint8(0))
	f.Add(bytes.Repeat([]byte{0x0D, 0x0C, 0x08, 0x01, 0xF9}, 20), uint16(3), uint8(255))
	const maxMessage = 512
	f.Fuzz(func(t *testing.T, msg []byte, split uint16, frag uint8) {
		cmd, data := msg[:int(split)%(len(msg)+1)], msg[int(split)%(len(msg)+1):]
		r := ul.Reassembler{MaxMessage: len(msg) + 1}
		var got []ul.Message
		for _, part := range []struct {
			command bool
			b       []byte
		}{{true, cmd}, {false, data}} {
			for b := part.b; ; {
				n := min(len(b), int(frag)+1)
				m, ok, err := r.Add(ul.PDV{ContextID: 5, Command: part.command, Last: n == len(b), Data: b[:n]})
				if err != nil {
					t.Fatalf("round trip: %v", err)
				}
				if ok {
					got = append(got, m)
				}
				if b = b[n:]; len(b) == 0 {
					break
				}
			}
		}
		if len(got) != 2 || !got[0].Command || got[1].Command || !bytes.Equal(got[0].Data, cmd) || !bytes.Equal(got[1].Data, data) {
			t.Fatalf("round trip of %q and %q gave %+v", cmd, data, got)
		}

		r = ul.Reassembler{MaxMessage: maxMessage}
		filler := bytes.Repeat([]byte{'x'}, 15*30)
		for _, b := range msg {
			v := ul.PDV{ContextID: 1 + 2*(b&3), Command: b&4 != 0, Last: b&8 != 0, Data: filler[:30*int(b>>4)]}
			m, ok, err := r.Add(v)
			if err != nil {
				if !errors.Is(err, ul.ErrProtocol) && !errors.Is(err, ul.ErrMessageTooLarge) {
					t.Fatalf("unclassified error %v", err)
				}
				return
			}
			if ok && len(m.Data) > maxMessage {
				t.Fatalf("message of %d bytes, MaxMessage %d", len(m.Data), maxMessage)
			}
		}
	})
}
