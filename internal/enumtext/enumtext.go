// Package enumtext gives pacswatch's small typed enumerations their text form, for
// encoding.TextMarshaler and encoding.TextUnmarshaler (JSON records, truth files) and for
// flags: a value's name is its String, and only the values from first up to end have one.
// The errors name the package and the kind of value, and quote at most MaxQuoted bytes of
// what was read.
package enumtext

import "fmt"

// MaxQuoted is how many bytes of an unknown name an error quotes, at most.
const MaxQuoted = 32

// An Enum is a typed enumeration whose String names each valid value.
type Enum interface {
	~uint8
	String() string
}

// Marshal returns v's name when v is in [first, end), else an error such as
// "probe: invalid status 9" (pkg "probe", kind "status").
func Marshal[E Enum](v, first, end E, pkg, kind string) ([]byte, error) {
	if v < first || v >= end {
		return nil, fmt.Errorf("%s: invalid %s %d", pkg, kind, uint8(v))
	}
	return []byte(v.String()), nil
}

// Parse returns the value of [first, end) named s, else an error such as
// `sim: unknown personality "x"`.
func Parse[E Enum](s string, first, end E, pkg, kind string) (E, error) {
	for e := first; e < end; e++ {
		if e.String() == s {
			return e, nil
		}
	}
	if len(s) > MaxQuoted {
		s = s[:MaxQuoted]
	}
	return 0, fmt.Errorf("%s: unknown %s %q", pkg, kind, s)
}

// Unmarshal sets *v to the value of [first, end) named b, as Parse finds it.
func Unmarshal[E Enum](v *E, b []byte, first, end E, pkg, kind string) error {
	e, err := Parse(string(b), first, end, pkg, kind)
	if err != nil {
		return err
	}
	*v = e
	return nil
}
