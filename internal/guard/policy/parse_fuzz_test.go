package policy

import (
	"net/netip"
	"os"
	"testing"
)

// FuzzParse: any bytes either parse into a policy whose every entry is usable, or fail with
// ErrInvalid; nothing panics.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte(""))
	f.Add([]byte("peers:\n  - name: p\n    calling_ae: \"*\"\n    source: [::/0, 0.0.0.0/0]\n    services: [echo]\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("peers: [{name: x, calling_ae: A, source: 1.2.3.4, rate: 1e400/s}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		if p.MaxAssociations < 1 {
			t.Fatalf("max associations %d", p.MaxAssociations)
		}
		for _, pe := range p.Peers {
			if pe.Name == "" || len(pe.CallingAE) == 0 || len(pe.Sources) == 0 || pe.MaxAssociations < 1 {
				t.Fatalf("unusable peer %+v", pe)
			}
			if pe.Rate < 0 || (pe.Rate > 0 && pe.Burst < 1) {
				t.Fatalf("peer %q rate %v burst %d", pe.Name, pe.Rate, pe.Burst)
			}
			p.Admit(Conn{CallingAE: pe.CallingAE[0], Source: netip.MustParseAddr("127.0.0.1")})
			pe.Check(Request{Service: Find, Level: Study, Universal: true})
		}
	})
}
