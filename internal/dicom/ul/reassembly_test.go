package ul_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

// pdv is a PDV of context id with the flags of pdata and data.
func pdv(id, flags byte, data string) ul.PDV {
	return ul.PDV{ContextID: id, Command: flags&0x01 != 0, Last: flags&0x02 != 0, Data: []byte(data)}
}

// messages renders reassembled messages as "c1 C" (command on context 1) and
// "d1 D" (data set).
func messages(ms []ul.Message) []string {
	var s []string
	for _, m := range ms {
		kind := "d"
		if m.Command {
			kind = "c"
		}
		s = append(s, fmt.Sprintf("%s%d %s", kind, m.ContextID, m.Data))
	}
	return s
}

func TestReassembler(t *testing.T) {
	big := string(bytes.Repeat([]byte("x"), 40))
	tests := []struct {
		name    string
		r       ul.Reassembler
		pdvs    []ul.PDV
		want    []string
		wantErr error // of the last PDV; nil: success
	}{
		{"command", ul.Reassembler{}, []ul.PDV{pdv(1, cmdLast, "C")}, []string{"c1 C"}, nil},
		{"command and data set in fragments", ul.Reassembler{}, []ul.PDV{
			pdv(3, cmdMore, "C1"), pdv(3, cmdLast, "C2"), pdv(3, dataMore, "D1"), pdv(3, dataLast, "D2"),
		}, []string{"c3 C1C2", "d3 D1D2"}, nil},
		{"commands without data sets", ul.Reassembler{}, []ul.PDV{
			pdv(1, cmdLast, "C"), pdv(3, cmdLast, "E"), pdv(3, dataLast, "D"),
		}, []string{"c1 C", "c3 E", "d3 D"}, nil},
		{"empty data set", ul.Reassembler{}, []ul.PDV{pdv(1, cmdLast, "C"), pdv(1, dataLast, "")}, []string{"c1 C", "d1 "}, nil},
		{"context 0 is the caller's to refuse", ul.Reassembler{}, []ul.PDV{pdv(0, cmdLast, "C"), pdv(0, dataLast, "D")},
			[]string{"c0 C", "d0 D"}, nil},
		{"at MaxMessage", ul.Reassembler{MaxMessage: 80}, []ul.PDV{pdv(1, cmdMore, big), pdv(1, cmdLast, big)},
			[]string{"c1 " + big + big}, nil},
		{"DiscardData keeps no data", ul.Reassembler{MaxMessage: 50, DiscardData: true}, []ul.PDV{
			pdv(1, cmdLast, "C"), pdv(1, dataMore, big), pdv(1, dataLast, big), pdv(1, cmdLast, "E"),
		}, []string{"c1 C", "d1 ", "c1 E"}, nil},

		{"data set first", ul.Reassembler{}, []ul.PDV{pdv(1, dataLast, "D")}, nil, ul.ErrProtocol},
		{"data set twice", ul.Reassembler{}, []ul.PDV{pdv(1, cmdLast, "C"), pdv(1, dataLast, "D"), pdv(1, dataLast, "D")},
			[]string{"c1 C", "d1 D"}, ul.ErrProtocol},
		{"data set on another context", ul.Reassembler{}, []ul.PDV{pdv(1, cmdLast, "C"), pdv(3, dataLast, "D")},
			[]string{"c1 C"}, ul.ErrProtocol},
		{"command fragments on two contexts", ul.Reassembler{}, []ul.PDV{pdv(1, cmdMore, "C"), pdv(3, cmdLast, "C")}, nil, ul.ErrProtocol},
		{"data fragments on two contexts", ul.Reassembler{}, []ul.PDV{pdv(1, cmdLast, "C"), pdv(1, dataMore, "D"), pdv(3, dataLast, "D")},
			[]string{"c1 C"}, ul.ErrProtocol},
		{"command inside a data set", ul.Reassembler{}, []ul.PDV{pdv(1, cmdLast, "C"), pdv(1, dataMore, "D"), pdv(1, cmdLast, "E")},
			[]string{"c1 C"}, ul.ErrProtocol},
		{"data inside a command", ul.Reassembler{}, []ul.PDV{pdv(1, cmdMore, "C"), pdv(1, dataLast, "D")}, nil, ul.ErrProtocol},
		{"command over MaxMessage", ul.Reassembler{MaxMessage: 79}, []ul.PDV{pdv(1, cmdMore, big), pdv(1, cmdLast, big)}, nil,
			ul.ErrMessageTooLarge},
		{"data set over MaxMessage", ul.Reassembler{MaxMessage: 79}, []ul.PDV{pdv(1, cmdLast, ""), pdv(1, dataMore, big), pdv(1, dataLast, big)},
			[]string{"c1 "}, ul.ErrMessageTooLarge},
		{"DiscardData still bounds commands", ul.Reassembler{MaxMessage: 79, DiscardData: true}, []ul.PDV{pdv(1, cmdMore, big), pdv(1, cmdLast, big)},
			nil, ul.ErrMessageTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []ul.Message
			var err error
			for i, v := range tt.pdvs {
				var m ul.Message
				var ok bool
				m, ok, err = tt.r.Add(v)
				if err != nil {
					if i != len(tt.pdvs)-1 {
						t.Fatalf("PDV %d: %v", i, err)
					}
					break
				}
				if ok {
					got = append(got, m)
				}
			}
			switch {
			case tt.wantErr == nil && err != nil:
				t.Errorf("error %v, want none", err)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
			if s := messages(got); !reflect.DeepEqual(s, tt.want) {
				t.Errorf("messages %q, want %q", s, tt.want)
			}
		})
	}
}

// TestReassemblerOwnership: a message's Data is the caller's; the next
// messages do not write into it.
func TestReassemblerOwnership(t *testing.T) {
	var r ul.Reassembler
	first, ok, err := r.Add(pdv(1, cmdLast, "first"))
	if err != nil || !ok {
		t.Fatalf("Add: %v, %v", ok, err)
	}
	for _, v := range []ul.PDV{pdv(1, dataMore, "sec"), pdv(1, dataLast, "ond"), pdv(1, cmdLast, "third")} {
		if _, _, err := r.Add(v); err != nil {
			t.Fatal(err)
		}
	}
	if string(first.Data) != "first" {
		t.Errorf("first message now %q", first.Data)
	}
}

// TestReassemblerStream reads a PDU stream as a proxy would, with ReadPDU, and
// rebuilds its messages: dcmqrscp's C-ECHO-RSP as captured, then a command
// and a data set whose fragments share P-DATA-TF PDUs.
func TestReassemblerStream(t *testing.T) {
	captured, err := os.ReadFile(filepath.Join("testdata", "captured", "dcmqrscp-3.6.7-pdata-echo-rsp.bin"))
	if err != nil {
		t.Fatal(err)
	}
	stream := cat(captured,
		(&ul.PDataTF{PDVs: []ul.PDV{pdv(3, cmdMore, "C1"), pdv(3, cmdLast, "C2"), pdv(3, dataMore, "D1")}}).Append(nil),
		pdata(3, dataLast, []byte("D2")))
	var r ul.Reassembler
	var got []ul.Message
	for in := bytes.NewReader(stream); ; {
		p, err := ul.ReadPDU(in, ul.DefaultMaxReadPDU)
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pd, ok := p.(*ul.PDataTF)
		if !ok {
			t.Fatalf("%s in the stream", p.Type())
		}
		for _, v := range pd.PDVs {
			m, ok, err := r.Add(v)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				got = append(got, m)
			}
		}
	}
	if len(got) != 3 || !got[0].Command || got[0].ContextID != 1 || !bytes.Equal(got[0].Data, captured[12:]) {
		t.Fatalf("first of %d messages %+v, want the captured C-ECHO-RSP command on context 1", len(got), got)
	}
	if s, want := messages(got[1:]), []string{"c3 C1C2", "d3 D1D2"}; !reflect.DeepEqual(s, want) {
		t.Errorf("messages %q, want %q", s, want)
	}
}
