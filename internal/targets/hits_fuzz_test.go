package targets

import (
	"strings"
	"testing"
)

// FuzzReadTargets: any input gives targets that Parse takes, or one line of error.
func FuzzReadTargets(f *testing.F) {
	for _, seed := range []string{
		"saddr,sport\n192.0.2.1,104\n",
		"saddr,daddr,sport,classification,success\n192.0.2.1,198.18.0.1,104,synack,1\n",
		"#masscan\nopen tcp 104 192.0.2.1 1700000000\n# end\n",
		"192.0.2.1\n",
		"saddr\n::ffff:192.0.2.1\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		specs, err := ReadTargets(strings.NewReader(in), "fuzz")
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error of more than one line: %q", err)
			}
			return
		}
		for _, s := range specs {
			if _, err := parseSpec(s, false); err != nil {
				t.Errorf("ReadTargets gave %q, which does not parse: %v", s, err)
			}
		}
	})
}
