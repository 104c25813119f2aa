package dicom

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// repertoire is a character repertoire this package decodes (PS3.3
// §C.12.1.1.2, PS3.5 §6.1).
type repertoire int

const (
	repASCII  repertoire = iota // ISO_IR 6, the default repertoire
	repLatin1                   // ISO_IR 100, ISO 8859-1
	repUTF8                     // ISO_IR 192, Unicode in UTF-8
)

// maxNameInError caps how much of a peer-supplied character set name goes
// into an error message.
const maxNameInError = 64

// parseCharsets maps the values of Specific Character Set (0008,0005) to a
// repertoire. An empty first value means the default repertoire. The
// ISO 2022 terms are treated as their base repertoire. A term this package
// does not implement yields repASCII and an error wrapping
// ErrUnsupportedCharset.
func parseCharsets(charsets []string) (repertoire, error) {
	rep := repASCII
	for _, cs := range charsets {
		var r repertoire
		name := strings.TrimSpace(cs)
		if len(name) > maxNameInError {
			name = name[:maxNameInError]
		}
		switch name {
		case "", "ISO_IR 6", "ISO 2022 IR 6":
			continue
		case "ISO_IR 100", "ISO 2022 IR 100":
			r = repLatin1
		case "ISO_IR 192":
			r = repUTF8
		default:
			return repASCII, fmt.Errorf("character set %q: %w", name, ErrUnsupportedCharset)
		}
		if rep != repASCII && rep != r {
			return repASCII, fmt.Errorf("character set %q mixed with another repertoire: %w", name, ErrUnsupportedCharset)
		}
		rep = r
	}
	return rep, nil
}

// DecodeString decodes b, a value in the character sets named by the values
// of Specific Character Set (0008,0005), to a UTF-8 string. Nil or empty
// charsets mean the default repertoire. Supported are ISO_IR 6 (ASCII),
// ISO_IR 100 (Latin-1) and ISO_IR 192 (UTF-8), with "ISO 2022 IR 6" and
// "ISO 2022 IR 100" read as their base and their designating escape sequences
// dropped (PS3.5 §6.1.2.5).
//
// Bytes that are not valid in the repertoire become U+FFFD. For a character
// set this package does not implement, or an escape sequence to one, bytes
// from 0x80 become U+FFFD and the best-effort string is returned with an error
// wrapping ErrUnsupportedCharset, which callers may log and otherwise ignore.
func DecodeString(b []byte, charsets []string) (string, error) {
	rep, err := parseCharsets(charsets)
	if rep == repUTF8 {
		if utf8.Valid(b) {
			return string(b), nil
		}
		var sb strings.Builder
		sb.Grow(len(b) + 8)
		for len(b) > 0 {
			r, n := utf8.DecodeRune(b) // RuneError, 1 on an invalid byte
			sb.WriteRune(r)
			b = b[n:]
		}
		return sb.String(), nil
	}
	if isPlainASCII(b) {
		return string(b), err
	}
	var sb strings.Builder
	sb.Grow(len(b) + 8)
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c == 0x1B: // ESC: ISO 2022 escape sequence (ISO/IEC 2022 §13)
			j := i + 1
			for j < len(b) && b[j] >= 0x20 && b[j] <= 0x2F { // intermediate bytes
				j++
			}
			if j < len(b) && b[j] >= 0x30 && b[j] <= 0x7E { // final byte
				j++
			}
			switch seq := string(b[i+1 : j]); seq {
			case "(B", "-A": // G0 ← ISO-IR 6, G1 ← ISO-IR 100
				if seq == "-A" && rep != repLatin1 {
					rep = repLatin1
					if err == nil {
						err = fmt.Errorf("escape to ISO-IR 100 without it in the character sets: %w", ErrUnsupportedCharset)
					}
				}
			default:
				sb.WriteRune(utf8.RuneError)
				if err == nil {
					err = fmt.Errorf("escape sequence %q: %w", seq, ErrUnsupportedCharset)
				}
			}
			i = j - 1
		case c < 0x80:
			sb.WriteByte(c)
		case rep == repLatin1:
			sb.WriteRune(rune(c))
		default:
			sb.WriteRune(utf8.RuneError)
		}
	}
	return sb.String(), err
}

func isPlainASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 || c == 0x1B {
			return false
		}
	}
	return true
}

// EncodeString encodes s in the character set named by a Specific Character
// Set (0008,0005) term: "" or ISO_IR 6 (ASCII), ISO_IR 100 (Latin-1) or
// ISO_IR 192 (UTF-8); the ISO 2022 IR 6 and IR 100 terms encode as their
// base. A character outside the set, or invalid UTF-8 in s, fails with
// ErrNotRepresentable; another term fails with ErrUnsupportedCharset.
func EncodeString(s string, charset string) ([]byte, error) {
	rep, err := parseCharsets([]string{charset})
	if err != nil {
		return nil, err
	}
	if rep == repUTF8 {
		if !utf8.ValidString(s) {
			return nil, fmt.Errorf("encode string: invalid UTF-8: %w", ErrNotRepresentable)
		}
		return []byte(s), nil
	}
	limit := rune(0x7F)
	if rep == repLatin1 {
		limit = 0xFF
	}
	b := make([]byte, 0, len(s))
	for i, r := range s {
		if r > limit || r == utf8.RuneError || r == 0x1B {
			return nil, fmt.Errorf("encode string: character at byte %d: %w", i, ErrNotRepresentable)
		}
		b = append(b, byte(r))
	}
	return b, nil
}
