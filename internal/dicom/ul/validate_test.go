package ul_test

import (
	"strings"
	"testing"

	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

// TestValidAE: PS3.5 §6.2's AE value, the one definition the PDUs and the probes share.
func TestValidAE(t *testing.T) {
	for _, tc := range []struct {
		ae   string
		want string // in the error; "" for none
	}{
		{"PACSWATCH", ""},
		{"ANY-SCP", ""},
		{" A B ", ""},
		{"~!@#$%^&*()_+{}|", ""}, // 16 bytes of the repertoire's punctuation
		{"", "AE title is empty"},
		{"    ", "AE title is empty"},
		{"ABCDEFGHIJKLMNOPQ", "17 characters, longer than 16"},
		{`A\B`, "forbidden character at 1"},
		{"A\tB", "forbidden character at 1"},
		{"A\x7fB", "forbidden character at 1"},
		{"ÄRCHIV", "forbidden character at 0"},     // above 0x7E: outside the default repertoire
		{"ARCH\xffIV", "forbidden character at 4"}, // not UTF-8 either
		{"PACS😀", "default repertoire"},            // the wording the command line shows
	} {
		err := ul.ValidAE(tc.ae)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("ValidAE(%q) = %v, want nil", tc.ae, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("ValidAE(%q) = %v, want an error containing %q", tc.ae, err, tc.want)
		}
	}
}

// TestValidateAEAboveASCII: an A-ASSOCIATE-RQ or -AC with an AE byte above 0x7E does not
// encode, as ValidAE says (ul accepted them before issue 11).
func TestValidateAEAboveASCII(t *testing.T) {
	rq := &ul.AAssociateRQ{ProtocolVersion: 1, CalledAE: "ÄRCHIV", CallingAE: "PACSWATCH", ApplicationContext: ul.ApplicationContext,
		PresentationContexts: []ul.PresentationContextRQ{{ID: 1, AbstractSyntax: "1.2.840.10008.1.1", TransferSyntaxes: []string{"1.2.840.10008.1.2"}}}}
	if err := rq.Validate(); err == nil || !strings.Contains(err.Error(), "called AE: ") {
		t.Errorf("RQ Validate() = %v, want a called AE error", err)
	}
	ac := &ul.AAssociateAC{ProtocolVersion: 1, CalledAE: "ANY-SCP", CallingAE: "PACS\xe9", ApplicationContext: ul.ApplicationContext}
	if err := ac.Validate(); err == nil || !strings.Contains(err.Error(), "calling AE: ") {
		t.Errorf("AC Validate() = %v, want a calling AE error", err)
	}
	ac.CallingAE = ""
	if err := ac.Validate(); err != nil {
		t.Errorf("AC Validate() with an empty calling AE = %v, want nil (it echoes the request)", err)
	}
}
