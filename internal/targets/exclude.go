package targets

import (
	"fmt"
	"net/netip"
)

// Exclusions is a set of excluded addresses, for checks made one target at
// a time: the exclusions that arrive while a scan runs (SPEC "Safety of a
// run": applied at probe time, so that the permutation stays the same).
type Exclusions struct {
	ivs []ival
}

// ParseExclusions parses exclusion entries as Options.Exclude takes them.
func ParseExclusions(entries []string) (*Exclusions, error) {
	var ivs []ival
	for _, str := range entries {
		sp, err := parseSpec(str, true)
		if err != nil {
			return nil, fmt.Errorf("targets: %w", err)
		}
		ivs = append(ivs, ival{sp.lo, sp.hi})
	}
	return &Exclusions{ivs: merge(ivs)}, nil
}

// Contains reports whether a (its zone ignored) is excluded.
func (x *Exclusions) Contains(a netip.Addr) bool {
	return x != nil && containsAddr(x.ivs, unmap(a).WithZone(""))
}

// Len returns the number of disjoint ranges in x.
func (x *Exclusions) Len() int {
	if x == nil {
		return 0
	}
	return len(x.ivs)
}

// Without returns the exclusions of x that y does not hold: the ones a
// resumed scan's exclusion list no longer names.
func (x *Exclusions) Without(y *Exclusions) *Exclusions {
	if x == nil {
		return &Exclusions{}
	}
	var cut []ival
	if y != nil {
		cut = y.ivs
	}
	return &Exclusions{ivs: subtract(x.ivs, cut)}
}

// Ranges returns x's ranges as text ("192.0.2.7", "192.0.2.0-192.0.2.9").
func (x *Exclusions) Ranges() []string {
	if x == nil {
		return nil
	}
	out := make([]string, len(x.ivs))
	for i, v := range x.ivs {
		out[i] = v.lo.String()
		if v.hi != v.lo {
			out[i] += "-" + v.hi.String()
		}
	}
	return out
}
