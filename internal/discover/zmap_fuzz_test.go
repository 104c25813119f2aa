package discover

import (
	"strings"
	"testing"
)

// FuzzReadZMapCSV: any output of a zmap process gives valid hits or an error, never a panic.
func FuzzReadZMapCSV(f *testing.F) {
	for _, seed := range []string{
		"saddr,sport,classification,success,repeat\n198.18.64.7,104,synack,1,0\n198.18.64.8,104,rst,0,0\n",
		"198.18.64.7,0,synack,1,0\n",
		"saddr,sport,classification,success,repeat\n::ffff:198.18.64.7,104,synack,1,1\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		err := readZMapCSV(strings.NewReader(in), 104, func(h Hit) {
			if !h.Addr.IsValid() || h.Addr.Port() == 0 || h.Addr.Addr().Zone() != "" || h.Addr.Addr().Is4In6() {
				t.Errorf("hit %v: want a valid address and port", h.Addr)
			}
		})
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("error of more than one line: %q", err)
		}
	})
}
