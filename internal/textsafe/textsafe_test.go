package textsafe

import "testing"

func TestClean(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"ORTHANC", 16, "ORTHANC"},
		{"  padded  ", 16, "padded"},
		{"a\x00b\x1bc", 16, "abc"},
		{"line\nbreak\ttab", 32, "line break tab"},
		{"bad\xffutf8", 16, "bad\uFFFDutf8"},
		{"zero\u200bwidth", 16, "zerowidth"},
		{"0123456789abcdefXYZ", 16, "0123456789abcdef"},
		{"ééééééééé", 5, "éé"}, // cut on a rune boundary
		{"", 8, ""},
	} {
		if got := Clean(tc.in, tc.n); got != tc.want {
			t.Errorf("Clean(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
