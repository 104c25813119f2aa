package targets

import (
	"slices"
	"strings"
	"testing"
)

func TestReadTargets(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"plain list", "192.0.2.1\n# comment\n192.0.2.0/30 198.51.100.7:104\n", []string{"192.0.2.1", "192.0.2.0/30", "198.51.100.7:104"}},
		{"zmap default output", "192.0.2.1\n192.0.2.9\n", []string{"192.0.2.1", "192.0.2.9"}},
		{"zmap csv saddr", "saddr\n192.0.2.1\n192.0.2.9\n", []string{"192.0.2.1", "192.0.2.9"}},
		{"zmap csv saddr sport", "saddr,sport\n192.0.2.1,104\n192.0.2.9,11112\n", []string{"192.0.2.1:104", "192.0.2.9:11112"}},
		{"zmap csv with success", "saddr,daddr,sport,classification,success\n192.0.2.1,198.18.0.1,104,synack,1\n192.0.2.2,198.18.0.1,104,rst,0\n",
			[]string{"192.0.2.1:104"}},
		{"zmap csv ipv6", "saddr,sport\n2001:db8::1,104\n", []string{"[2001:db8::1]:104"}},
		{"masscan -oL", "#masscan\nopen tcp 104 192.0.2.1 1700000000\nopen tcp 4242 192.0.2.7 1700000001\nopen udp 53 192.0.2.8 1700000002\n# end\n",
			[]string{"192.0.2.1:104", "192.0.2.7:4242"}},
		{"masscan without header", "open tcp 104 192.0.2.1 1700000000\n", []string{"192.0.2.1:104"}},
		{"byte order mark", "\uFEFFsaddr,sport\n192.0.2.1,104\n", []string{"192.0.2.1:104"}},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadTargets(strings.NewReader(tt.in), "hits")
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("ReadTargets = %q, %v, want %q", got, err, tt.want)
			}
		})
	}
}

func TestReadTargetsErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"bad saddr", "saddr,sport\n192.0.2.1,104\nnope,104\n", "hits:3: zmap csv: bad saddr"},
		{"bad sport", "saddr,sport\n192.0.2.1,70000\n", "hits:2: zmap csv: bad sport"},
		{"short row", "saddr,sport\n192.0.2.1\n", "hits:2: zmap csv: 1 columns, the header has 2"},
		{"bad masscan address", "#masscan\nopen tcp 104 nope 1\n", "hits:2: masscan list: bad address"},
		{"bad masscan port", "open tcp 0 192.0.2.1 1\n", "hits:1: masscan list:"},
		{"plain bad target", "192.0.2.1\n300.1.1.1\n", "hits:2:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadTargets(strings.NewReader(tt.in), "hits")
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("ReadTargets error = %v, want one line starting %q", err, tt.want)
			}
		})
	}
}
