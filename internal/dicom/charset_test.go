package dicom_test

import (
	"errors"
	"testing"

	"github.com/pacswatch/pacswatch/internal/dicom"
)

func TestDecodeString(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		charsets []string
		want     string
		err      error
	}{
		{"default ASCII", "FAKE^A", nil, "FAKE^A", nil},
		{"default, high byte", "A\xe9", nil, "A\uFFFD", nil},
		{"ISO_IR 6", "A\xe9", []string{"ISO_IR 6"}, "A\uFFFD", nil},
		{"Latin-1", "Andr\xe9 \xc6", []string{"ISO_IR 100"}, "André Æ", nil},
		{"Latin-1 padded term", "\xe9", []string{"ISO_IR 100 "}, "é", nil},
		{"ISO 2022 IR 100", "\xe9", []string{"ISO 2022 IR 100"}, "é", nil},
		{"ISO 2022 escapes dropped", "\x1b(BA\x1b-A\xe9", []string{"", "ISO 2022 IR 100"}, "Aé", nil},
		{"UTF-8", "Jörg 山田", []string{"ISO_IR 192"}, "Jörg 山田", nil},
		{"UTF-8 invalid", "a\xff\xfeb", []string{"ISO_IR 192"}, "a\uFFFD\uFFFDb", nil},
		{"unsupported", "\xb0abc", []string{"ISO_IR 144"}, "\uFFFDabc", dicom.ErrUnsupportedCharset},
		{"unsupported ISO 2022", "\x1b$B0B\x1b(B", []string{"", "ISO 2022 IR 87"}, "\uFFFD0B", dicom.ErrUnsupportedCharset},
		{"undeclared escape", "\x1b$B0B\x1b(Bx", nil, "\uFFFD0Bx", dicom.ErrUnsupportedCharset},
		{"undeclared Latin-1 escape", "\x1b-A\xe9", nil, "é", dicom.ErrUnsupportedCharset},
		{"truncated escape", "a\x1b", nil, "a\uFFFD", dicom.ErrUnsupportedCharset},
		{"mixed repertoires", "\xe9", []string{"ISO_IR 100", "ISO_IR 192"}, "\uFFFD", dicom.ErrUnsupportedCharset},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dicom.DecodeString([]byte(tt.in), tt.charsets)
			if got != tt.want || !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Errorf("DecodeString = %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestEncodeString(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		charset string
		want    string
		err     error
	}{
		{"ASCII", "FAKE^A", "", "FAKE^A", nil},
		{"ASCII, accent", "é", "ISO_IR 6", "", dicom.ErrNotRepresentable},
		{"ASCII, escape", "\x1b(B", "", "", dicom.ErrNotRepresentable},
		{"Latin-1", "André", "ISO_IR 100", "Andr\xe9", nil},
		{"ISO 2022 IR 100", "é", "ISO 2022 IR 100", "\xe9", nil},
		{"Latin-1, euro", "€", "ISO_IR 100", "", dicom.ErrNotRepresentable},
		{"Latin-1, invalid UTF-8", "\xff", "ISO_IR 100", "", dicom.ErrNotRepresentable},
		{"UTF-8", "山田", "ISO_IR 192", "山田", nil},
		{"UTF-8, invalid", "\xff", "ISO_IR 192", "", dicom.ErrNotRepresentable},
		{"unsupported", "A", "ISO_IR 13", "", dicom.ErrUnsupportedCharset},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dicom.EncodeString(tt.in, tt.charset)
			if string(got) != tt.want || !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Errorf("EncodeString = %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
		})
	}
}
