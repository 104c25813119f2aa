package enumtext

import (
	"fmt"
	"strings"
	"testing"
)

type color uint8

const (
	red color = iota + 1
	green
	colorEnd
)

func (c color) String() string {
	switch c {
	case red:
		return "red"
	case green:
		return "green"
	}
	return "color?"
}

func TestMarshal(t *testing.T) {
	if b, err := Marshal(green, red, colorEnd, "paint", "color"); err != nil || string(b) != "green" {
		t.Errorf("Marshal(green) = %q, %v", b, err)
	}
	for _, c := range []color{0, colorEnd, 200} {
		if b, err := Marshal(c, red, colorEnd, "paint", "color"); err == nil || err.Error() != fmt.Sprintf("paint: invalid color %d", c) {
			t.Errorf("Marshal(%d) = %q, %v; want an invalid color error", c, b, err)
		}
	}
}

func TestParse(t *testing.T) {
	if c, err := Parse("red", red, colorEnd, "paint", "color"); err != nil || c != red {
		t.Errorf("Parse(red) = %v, %v", c, err)
	}
	for _, tc := range []struct{ in, want string }{
		{"blue", `paint: unknown color "blue"`},
		{"color?", `paint: unknown color "color?"`}, // the String of an invalid value names none
		{"", `paint: unknown color ""`},
		{strings.Repeat("x", 100), `paint: unknown color "` + strings.Repeat("x", MaxQuoted) + `"`},
	} {
		if c, err := Parse(tc.in, red, colorEnd, "paint", "color"); err == nil || err.Error() != tc.want || c != 0 {
			t.Errorf("Parse(%.40q) = %v, %v; want %s", tc.in, c, err, tc.want)
		}
	}
	var c color
	if err := Unmarshal(&c, []byte("green"), red, colorEnd, "paint", "color"); err != nil || c != green {
		t.Errorf("Unmarshal(green) = %v, %v", c, err)
	}
	if err := Unmarshal(&c, []byte("blue"), red, colorEnd, "paint", "color"); err == nil || c != green {
		t.Errorf("Unmarshal(blue) = %v, %v; want an error and c unchanged", c, err)
	}
}
