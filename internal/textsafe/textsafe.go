// Package textsafe makes strings from untrusted sources (servers, databases, users) safe to
// store and show: valid UTF-8, no control or format characters, bounded length.
package textsafe

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Clean returns s as valid UTF-8 without control (Cc), format (Cf) or
// line/paragraph separator characters (those that are white space become
// spaces), trimmed of surrounding white space and cut to at most n bytes on
// a rune boundary.
func Clean(s string, n int) string {
	if isClean(s, n) {
		return s
	}
	var b strings.Builder
	b.Grow(min(len(s), n+utf8.UTFMax))
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) {
			if !unicode.IsSpace(r) {
				continue
			}
			r = ' ' // tabs, newlines and separators keep words apart
		}
		if b.Len() == 0 && unicode.IsSpace(r) {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > n {
			break
		}
		b.WriteRune(r)
	}
	return strings.TrimRightFunc(b.String(), unicode.IsSpace)
}

// isClean reports whether s is printable ASCII without surrounding spaces
// and at most n bytes long, the common case that needs no copy.
func isClean(s string, n int) bool {
	if len(s) > n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return s == "" || (s[0] != ' ' && s[len(s)-1] != ' ')
}
