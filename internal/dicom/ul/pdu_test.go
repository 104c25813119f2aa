package ul_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/pacswatch/pacswatch/internal/dicom/ul"
	"github.com/pacswatch/pacswatch/internal/version"
)

var update = flag.Bool("update", false, "rewrite testdata/dcmtk-3.6.7-ac.bin from the hand-assembled helper")

func TestIdentity(t *testing.T) {
	if got, want := ul.ImplementationVersionName, "PACSWATCH_"+version.Version; got != want || len(got) > 16 {
		t.Errorf("ImplementationVersionName = %q (%d bytes), want %q of at most 16", got, len(got), want)
	}
	uid := ul.ImplementationClassUID
	if !strings.HasPrefix(uid, "2.25.") || len(uid) > 64 || strings.Trim(uid, "0123456789.") != "" || strings.HasPrefix(uid, "2.25.0") {
		t.Errorf("ImplementationClassUID = %q, want a 2.25.<decimal> UID of at most 64 characters", uid)
	}
	if strings.HasPrefix(uid, "1.2.276.0.7230010") {
		t.Errorf("ImplementationClassUID %q is DCMTK's", uid)
	}
}

func TestAppendVerificationRQ(t *testing.T) {
	rq := &ul.AAssociateRQ{
		ProtocolVersion:    1,
		CalledAE:           "ANY-SCP",
		CallingAE:          "PACSWATCH",
		ApplicationContext: ul.ApplicationContext,
		PresentationContexts: []ul.PresentationContextRQ{
			{ID: 1, AbstractSyntax: verification, TransferSyntaxes: []string{implicitLE, explicitLE}},
		},
		UserInfo: ul.UserInfo{
			MaxLength:                 16384,
			ImplementationClassUID:    ul.ImplementationClassUID,
			ImplementationVersionName: ul.ImplementationVersionName,
		},
	}
	if err := rq.Validate(); err != nil {
		t.Fatal(err)
	}
	got, want := rq.Append(nil), verificationRQ()
	if !bytes.Equal(got, want) {
		t.Errorf("A-ASSOCIATE-RQ:\n got %x\nwant %x", got, want)
	}
}

func TestDCMTKAC(t *testing.T) {
	path := filepath.Join("testdata", "dcmtk-3.6.7-ac.bin")
	if *update {
		if err := os.WriteFile(path, dcmtkAC(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(dcmtkAC()); n != 192 {
		t.Errorf("hand-assembled AC is %d bytes, want 192 (PDU length 186)", n)
	}
	for name, b := range map[string][]byte{"helper": dcmtkAC(), "file": file} {
		p, err := ul.ReadPDU(bytes.NewReader(b), 1<<20)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ac, ok := p.(*ul.AAssociateAC)
		if !ok {
			t.Fatalf("%s: got %T, want *ul.AAssociateAC", name, p)
		}
		if got := binary.BigEndian.Uint32(b[2:]); got != 186 {
			t.Errorf("%s: PDU length %d, want 186", name, got)
		}
		if got, want := ac.UserInfo.MaxLength, uint32(16384); got != want {
			t.Errorf("%s: MaxLength = %d, want %d", name, got, want)
		}
		if got, want := ac.UserInfo.ImplementationClassUID, "1.2.276.0.7230010.3.0.3.6.7"; got != want {
			t.Errorf("%s: ImplementationClassUID = %q, want %q", name, got, want)
		}
		if got, want := ac.UserInfo.ImplementationVersionName, "OFFIS_DCMTK_367"; got != want {
			t.Errorf("%s: ImplementationVersionName = %q, want %q", name, got, want)
		}
		if got, want := ac.ApplicationContext, ul.ApplicationContext; got != want {
			t.Errorf("%s: ApplicationContext = %q, want %q", name, got, want)
		}
		want := []ul.PresentationContextAC{{ID: 1, Result: ul.PCAcceptance, TransferSyntax: explicitLE}}
		if !reflect.DeepEqual(ac.PresentationContexts, want) {
			t.Errorf("%s: PresentationContexts = %+v, want %+v", name, ac.PresentationContexts, want)
		}
		if got := ac.Append(nil); name == "helper" && !bytes.Equal(got, b) {
			t.Errorf("re-encoded AC differs:\n got %x\nwant %x", got, b)
		}
	}
}

// fullUserInfo sets every sub-item.
func fullUserInfo() ul.UserInfo {
	return ul.UserInfo{
		MaxLength:                 65536,
		ImplementationClassUID:    "1.2.3.4",
		ImplementationVersionName: "X_1",
		AsyncOps:                  &ul.AsyncOps{Invoked: 3, Performed: 0},
		Roles: []ul.RoleSelection{
			{SOPClassUID: studyGet, SCU: true},
			{SOPClassUID: "1.2.840.10008.5.1.4.1.1.2", SCP: true},
		},
		Identity: &ul.UserIdentityRQ{Type: ul.IdentityUsernamePasscode, PositiveResponseRequested: true,
			Primary: []byte("user"), Secondary: []byte("pass")},
		IdentityAC: &ul.UserIdentityAC{ServerResponse: []byte("token")},
		Unknown:    []ul.Item{{Type: 0x56, Data: []byte{0x00, 0x03, '1', '.', '2', 0x01}}, {Type: 0x5F, Data: nil}},
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		pdu  ul.PDU
	}{
		{"A-ASSOCIATE-RQ", &ul.AAssociateRQ{
			ProtocolVersion: 1, CalledAE: "STORESCP", CallingAE: "PACSWATCH", ApplicationContext: ul.ApplicationContext,
			PresentationContexts: []ul.PresentationContextRQ{
				{ID: 1, AbstractSyntax: verification, TransferSyntaxes: []string{implicitLE}},
				{ID: 3, AbstractSyntax: studyFind, TransferSyntaxes: []string{explicitLE, implicitLE}},
			},
			UserInfo: fullUserInfo(),
		}},
		{"A-ASSOCIATE-RQ sixteen-character AEs", &ul.AAssociateRQ{
			ProtocolVersion: 1, CalledAE: "ABCDEFGHIJKLMNOP", CallingAE: "0123456789ABCDEF", ApplicationContext: ul.ApplicationContext,
			PresentationContexts: []ul.PresentationContextRQ{{ID: 255, AbstractSyntax: verification, TransferSyntaxes: []string{implicitLE}}},
		}},
		{"A-ASSOCIATE-AC", &ul.AAssociateAC{
			ProtocolVersion: 1, CalledAE: "ANY", CallingAE: "ME", ApplicationContext: ul.ApplicationContext,
			PresentationContexts: []ul.PresentationContextAC{
				{ID: 1, Result: ul.PCAcceptance, TransferSyntax: implicitLE},
				{ID: 3, Result: ul.PCTransferSyntaxesNotSupported},
				{ID: 5, Result: ul.PCResult(9), TransferSyntax: implicitLE},
			},
			UserInfo: fullUserInfo(),
		}},
		{"A-ASSOCIATE-RJ", &ul.AAssociateRJ{Result: 1, Source: 1, Reason: 7}},
		{"P-DATA-TF", &ul.PDataTF{PDVs: []ul.PDV{
			{ContextID: 1, Command: true, Last: false, Data: []byte{1, 2, 3}},
			{ContextID: 1, Command: true, Last: true, Data: []byte{}},
			{ContextID: 3, Command: false, Last: false, Data: []byte("data")},
			{ContextID: 3, Command: false, Last: true, Data: []byte("set")},
		}}},
		{"A-RELEASE-RQ", &ul.AReleaseRQ{}},
		{"A-RELEASE-RP", &ul.AReleaseRP{}},
		{"A-ABORT", &ul.AAbort{Source: 2, Reason: 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.pdu.Append(nil)
			if got, want := ul.Type(b[0]), tt.pdu.Type(); got != want {
				t.Errorf("type byte %v, want %v", got, want)
			}
			if got, want := int(binary.BigEndian.Uint32(b[2:])), len(b)-ul.HeaderLen; got != want {
				t.Errorf("length field %d, want %d", got, want)
			}
			got, err := ul.ReadPDU(bytes.NewReader(b), 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.pdu) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, tt.pdu)
			}
		})
	}
}

func TestUserInfoRoundTrip(t *testing.T) {
	full := fullUserInfo()
	tests := []struct {
		name string
		ui   ul.UserInfo
	}{
		{"max length only", ul.UserInfo{MaxLength: 16384}},
		{"unlimited", ul.UserInfo{}},
		{"implementation", ul.UserInfo{ImplementationClassUID: "1.2.3", ImplementationVersionName: "V"}},
		{"async ops", ul.UserInfo{AsyncOps: full.AsyncOps}},
		{"roles", ul.UserInfo{Roles: full.Roles}},
		{"identity username", ul.UserInfo{Identity: &ul.UserIdentityRQ{Type: ul.IdentityUsername, Primary: []byte("u")}}},
		{"identity passcode", ul.UserInfo{Identity: full.Identity}},
		{"identity AC", ul.UserInfo{IdentityAC: full.IdentityAC}},
		{"identity AC empty", ul.UserInfo{IdentityAC: &ul.UserIdentityAC{}}},
		{"unknown", ul.UserInfo{Unknown: full.Unknown}},
		{"all", full},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rq := &ul.AAssociateRQ{ProtocolVersion: 1, CalledAE: "A", CallingAE: "B", ApplicationContext: ul.ApplicationContext,
				PresentationContexts: []ul.PresentationContextRQ{{ID: 1, AbstractSyntax: verification, TransferSyntaxes: []string{implicitLE}}},
				UserInfo:             tt.ui}
			p, err := ul.ReadPDU(bytes.NewReader(rq.Append(nil)), 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.(*ul.AAssociateRQ).UserInfo; !reflect.DeepEqual(got, tt.ui) {
				t.Errorf("got %+v, want %+v", got, tt.ui)
			}
		})
	}
}

func TestParseTrims(t *testing.T) {
	// AEs with leading spaces and NUL padding; UIDs padded with NUL and space.
	b := verificationRQ()
	copy(b[10:26], "  ANY-SCP\x00\x00\x00\x00\x00\x00\x00")
	b = bytes.Replace(b, []byte("\x11"+"1.2.840.10008.1.2\x40"), []byte("\x11"+"1.2.840.10008.1.\x00\x40"), 1)
	p, err := ul.ReadPDU(bytes.NewReader(b), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	rq := p.(*ul.AAssociateRQ)
	if got, want := rq.CalledAE, "ANY-SCP"; got != want {
		t.Errorf("CalledAE = %q, want %q", got, want)
	}
	if got, want := rq.PresentationContexts[0].TransferSyntaxes, []string{"1.2.840.10008.1.", explicitLE}; !reflect.DeepEqual(got, want) {
		t.Errorf("TransferSyntaxes = %q, want %q", got, want)
	}
}

func TestValidate(t *testing.T) {
	good := func() *ul.AAssociateRQ {
		return &ul.AAssociateRQ{ProtocolVersion: 1, CalledAE: "ANY-SCP", CallingAE: "PACSWATCH", ApplicationContext: ul.ApplicationContext,
			PresentationContexts: []ul.PresentationContextRQ{{ID: 1, AbstractSyntax: verification, TransferSyntaxes: []string{implicitLE}}},
			UserInfo:             ul.UserInfo{MaxLength: 16384, ImplementationClassUID: ul.ImplementationClassUID}}
	}
	tests := []struct {
		name   string
		change func(*ul.AAssociateRQ)
		want   string // in the error; "" for none
	}{
		{"good", func(*ul.AAssociateRQ) {}, ""},
		{"even context ID", func(rq *ul.AAssociateRQ) { rq.PresentationContexts[0].ID = 2 }, "ID 2 is even"},
		{"repeated context ID", func(rq *ul.AAssociateRQ) {
			rq.PresentationContexts = append(rq.PresentationContexts, rq.PresentationContexts[0])
		}, "ID 1 is repeated"},
		{"AE of 17", func(rq *ul.AAssociateRQ) { rq.CalledAE = "ABCDEFGHIJKLMNOPQ" }, "17 characters"},
		{"empty AE", func(rq *ul.AAssociateRQ) { rq.CallingAE = "  " }, "calling AE: empty"},
		{"AE with backslash", func(rq *ul.AAssociateRQ) { rq.CallingAE = `A\B` }, "forbidden character"},
		{"no contexts", func(rq *ul.AAssociateRQ) { rq.PresentationContexts = nil }, "no presentation context"},
		{"no transfer syntax", func(rq *ul.AAssociateRQ) { rq.PresentationContexts[0].TransferSyntaxes = nil }, "no transfer syntax"},
		{"bad UID", func(rq *ul.AAssociateRQ) { rq.PresentationContexts[0].AbstractSyntax = "1.2.x" }, "not a UID"},
		{"long UID", func(rq *ul.AAssociateRQ) { rq.UserInfo.ImplementationClassUID = strings.Repeat("1", 65) }, "at most 64"},
		{"long version", func(rq *ul.AAssociateRQ) { rq.UserInfo.ImplementationVersionName = strings.Repeat("V", 17) }, "at most 16"},
		{"huge identity", func(rq *ul.AAssociateRQ) {
			rq.UserInfo.Identity = &ul.UserIdentityRQ{Type: 1, Primary: make([]byte, 70000)}
		}, "over 65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rq := good()
			tt.change(rq)
			err := rq.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestRJMeaning(t *testing.T) {
	tests := []struct {
		rj                      ul.AAssociateRJ
		result, source, meaning string
	}{
		{ul.AAssociateRJ{Result: 1, Source: 1, Reason: 1}, "rejected-permanent", "service-user", "no-reason-given"},
		{ul.AAssociateRJ{Result: 1, Source: 1, Reason: 2}, "rejected-permanent", "service-user", "application-context-name-not-supported"},
		{ul.AAssociateRJ{Result: 1, Source: 1, Reason: 3}, "rejected-permanent", "service-user", "calling-AE-title-not-recognized"},
		{ul.AAssociateRJ{Result: 1, Source: 1, Reason: 5}, "rejected-permanent", "service-user", "unknown(5)"},
		{ul.AAssociateRJ{Result: 1, Source: 1, Reason: 7}, "rejected-permanent", "service-user", "called-AE-title-not-recognized"},
		{ul.AAssociateRJ{Result: 1, Source: 2, Reason: 1}, "rejected-permanent", "service-provider-acse", "no-reason-given"},
		{ul.AAssociateRJ{Result: 1, Source: 2, Reason: 2}, "rejected-permanent", "service-provider-acse", "protocol-version-not-supported"},
		{ul.AAssociateRJ{Result: 2, Source: 3, Reason: 1}, "rejected-transient", "service-provider-presentation", "temporary-congestion"},
		{ul.AAssociateRJ{Result: 2, Source: 3, Reason: 2}, "rejected-transient", "service-provider-presentation", "local-limit-exceeded"},
		{ul.AAssociateRJ{Result: 2, Source: 3, Reason: 7}, "rejected-transient", "service-provider-presentation", "unknown(7)"},
		{ul.AAssociateRJ{Result: 0, Source: 9, Reason: 3}, "unknown(0)", "unknown(9)", "unknown(3)"},
	}
	for _, tt := range tests {
		if got := tt.rj.ResultString(); got != tt.result {
			t.Errorf("%+v ResultString() = %q, want %q", tt.rj, got, tt.result)
		}
		if got := tt.rj.SourceString(); got != tt.source {
			t.Errorf("%+v SourceString() = %q, want %q", tt.rj, got, tt.source)
		}
		if got := tt.rj.Meaning(); got != tt.meaning {
			t.Errorf("%+v Meaning() = %q, want %q", tt.rj, got, tt.meaning)
		}
		if got := (&ul.RejectedError{RJ: tt.rj}).Error(); !strings.Contains(got, tt.meaning) || !strings.Contains(got, tt.source) {
			t.Errorf("RejectedError = %q, want it to hold %q and %q", got, tt.meaning, tt.source)
		}
	}
}

func TestAbortMeaning(t *testing.T) {
	tests := []struct {
		a    ul.AAbort
		want string
	}{
		{ul.AAbort{Source: 0, Reason: 0}, "service-user"},
		{ul.AAbort{Source: 0, Reason: 5}, "service-user"},
		{ul.AAbort{Source: 2, Reason: 0}, "service-provider: reason-not-specified"},
		{ul.AAbort{Source: 2, Reason: 1}, "service-provider: unrecognized-PDU"},
		{ul.AAbort{Source: 2, Reason: 2}, "service-provider: unexpected-PDU"},
		{ul.AAbort{Source: 2, Reason: 3}, "service-provider: unknown(3)"},
		{ul.AAbort{Source: 2, Reason: 4}, "service-provider: unrecognized-PDU-parameter"},
		{ul.AAbort{Source: 2, Reason: 5}, "service-provider: unexpected-PDU-parameter"},
		{ul.AAbort{Source: 2, Reason: 6}, "service-provider: invalid-PDU-parameter-value"},
		{ul.AAbort{Source: 1, Reason: 2}, "unknown(1): unexpected-PDU"},
	}
	for _, tt := range tests {
		if got := tt.a.Meaning(); got != tt.want {
			t.Errorf("%+v Meaning() = %q, want %q", tt.a, got, tt.want)
		}
		if got := (&ul.AbortedError{Abort: tt.a}).Error(); !strings.Contains(got, tt.want) {
			t.Errorf("AbortedError = %q, want it to hold %q", got, tt.want)
		}
	}
}

func TestStrings(t *testing.T) {
	tests := []struct {
		got  string
		want string
	}{
		{ul.PCAcceptance.String(), "acceptance"},
		{ul.PCUserRejection.String(), "user-rejection"},
		{ul.PCNoReason.String(), "no-reason"},
		{ul.PCAbstractSyntaxNotSupported.String(), "abstract-syntax-not-supported"},
		{ul.PCTransferSyntaxesNotSupported.String(), "transfer-syntaxes-not-supported"},
		{ul.PCResult(9).String(), "unknown(9)"},
		{ul.PCResult(255).String(), "unknown(255)"},
		{ul.TypeAAssociateRQ.String(), "A-ASSOCIATE-RQ"},
		{ul.TypeAAssociateAC.String(), "A-ASSOCIATE-AC"},
		{ul.TypeAAssociateRJ.String(), "A-ASSOCIATE-RJ"},
		{ul.TypePDataTF.String(), "P-DATA-TF"},
		{ul.TypeAReleaseRQ.String(), "A-RELEASE-RQ"},
		{ul.TypeAReleaseRP.String(), "A-RELEASE-RP"},
		{ul.TypeAAbort.String(), "A-ABORT"},
		{ul.Type(0x48).String(), "unknown(0x48)"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// items returns n items of type typ with empty values.
func items(typ byte, n int) []byte {
	return bytes.Repeat([]byte{typ, 0, 0, 0}, n)
}

func pduOf(t ul.Type, body []byte) []byte {
	b := []byte{byte(t), 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[2:], uint32(len(body)))
	return append(b, body...)
}

func TestReadPDUHostile(t *testing.T) {
	fixed := make([]byte, 68)
	fixed[1] = 1
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, io.EOF},
		{"truncated header", []byte{0x02, 0x00, 0x00}, io.ErrUnexpectedEOF},
		{"truncated body", []byte{0x07, 0x00, 0, 0, 0, 10, 0, 0, 0, 0}, io.ErrUnexpectedEOF},
		{"huge length", []byte{0x04, 0x00, 0xFF, 0xFF, 0xFF, 0xF0}, ul.ErrPDUTooLarge},
		{"http", []byte("HTTP/1.1 400 Bad Request\r\n\r\n"), ul.ErrUnknownPDUType},
		{"type zero", []byte{0x00, 0x00, 0, 0, 0, 4, 0, 0, 0, 0}, ul.ErrUnknownPDUType},
		{"type 8", []byte{0x08, 0x00, 0, 0, 0, 4, 0, 0, 0, 0}, ul.ErrUnknownPDUType},
		{"short A-ABORT", pduOf(ul.TypeAAbort, []byte{0, 0}), ul.ErrMalformed},
		{"short A-ASSOCIATE-RJ", pduOf(ul.TypeAAssociateRJ, nil), ul.ErrMalformed},
		{"short A-RELEASE-RQ", pduOf(ul.TypeAReleaseRQ, []byte{0}), ul.ErrMalformed},
		{"short A-RELEASE-RP", pduOf(ul.TypeAReleaseRP, []byte{0}), ul.ErrMalformed},
		{"AC without fixed fields", pduOf(ul.TypeAAssociateAC, fixed[:67]), ul.ErrMalformed},
		{"item longer than PDU", pduOf(ul.TypeAAssociateAC, cat(fixed, []byte{0x10, 0, 0, 21, '1', '.'})), ul.ErrMalformed},
		{"truncated item header", pduOf(ul.TypeAAssociateRQ, cat(fixed, []byte{0x10, 0})), ul.ErrMalformed},
		{"sub-item longer than item", pduOf(ul.TypeAAssociateRQ, cat(fixed, []byte{0x20, 0, 0, 8, 1, 0, 0, 0, 0x30, 0, 0, 9})), ul.ErrMalformed},
		{"short presentation context", pduOf(ul.TypeAAssociateAC, cat(fixed, []byte{0x21, 0, 0, 2, 1, 0})), ul.ErrMalformed},
		{"too many items", pduOf(ul.TypeAAssociateRQ, cat(fixed, items(0x77, 513))), ul.ErrMalformed},
		{"too many contexts", pduOf(ul.TypeAAssociateAC, cat(fixed, bytes.Repeat([]byte{0x21, 0, 0, 4, 1, 0, 0, 0}, 129))), ul.ErrMalformed},
		{"too many transfer syntaxes", pduOf(ul.TypeAAssociateRQ, cat(fixed, []byte{0x20, 0, 0x08, 0x08, 1, 0, 0, 0}, items(0x40, 513))), ul.ErrMalformed},
		{"max length of 2", pduOf(ul.TypeAAssociateAC, cat(fixed, []byte{0x50, 0, 0, 6, 0x51, 0, 0, 2, 0, 1})), ul.ErrMalformed},
		{"async ops of 3", pduOf(ul.TypeAAssociateAC, cat(fixed, []byte{0x50, 0, 0, 7, 0x53, 0, 0, 3, 0, 1, 0})), ul.ErrMalformed},
		{"role UID past end", pduOf(ul.TypeAAssociateRQ, cat(fixed, []byte{0x50, 0, 0, 10, 0x54, 0, 0, 6, 0, 9, '1', '.', 1, 0})), ul.ErrMalformed},
		{"role without flags", pduOf(ul.TypeAAssociateRQ, cat(fixed, []byte{0x50, 0, 0, 8, 0x54, 0, 0, 4, 0, 2, '1', '.'})), ul.ErrMalformed},
		{"identity past end", pduOf(ul.TypeAAssociateRQ, cat(fixed, []byte{0x50, 0, 0, 10, 0x58, 0, 0, 6, 1, 0, 0, 9, 0, 0})), ul.ErrMalformed},
		{"identity trailing", pduOf(ul.TypeAAssociateRQ, cat(fixed, []byte{0x50, 0, 0, 11, 0x58, 0, 0, 7, 1, 0, 0, 0, 0, 0, 9})), ul.ErrMalformed},
		{"identity AC short", pduOf(ul.TypeAAssociateAC, cat(fixed, []byte{0x50, 0, 0, 5, 0x59, 0, 0, 1, 0})), ul.ErrMalformed},
		{"empty P-DATA-TF", pduOf(ul.TypePDataTF, nil), ul.ErrMalformed},
		{"PDV length 1", pduOf(ul.TypePDataTF, []byte{0, 0, 0, 1, 1, 3}), ul.ErrMalformed},
		{"PDV longer than PDU", pduOf(ul.TypePDataTF, []byte{0, 0, 0, 9, 1, 3, 0}), ul.ErrMalformed},
		{"PDV length 4G", pduOf(ul.TypePDataTF, []byte{0xFF, 0xFF, 0xFF, 0xFF, 1, 3}), ul.ErrMalformed},
		{"trailing partial PDV", pduOf(ul.TypePDataTF, []byte{0, 0, 0, 2, 1, 3, 0, 0}), ul.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ul.ReadPDU(bytes.NewReader(tt.in), 1<<20)
			if !errors.Is(err, tt.want) {
				t.Errorf("ReadPDU = %v, %v; want error %v", p, err, tt.want)
			}
		})
	}
}

func TestReadPDUTolerates(t *testing.T) {
	fixed := make([]byte, 68)
	tests := []struct {
		name string
		in   []byte
		want ul.PDU
	}{
		{"long A-ABORT", pduOf(ul.TypeAAbort, []byte{0, 0, 2, 1, 9, 9}), &ul.AAbort{Source: 2, Reason: 1}},
		{"unknown items skipped", pduOf(ul.TypeAAssociateAC, cat(fixed, []byte{0x77, 0, 0, 1, 9}, []byte{0x10, 0, 0, 3, '1', '.', '2'})),
			&ul.AAssociateAC{ApplicationContext: "1.2"}},
		{"first application context counts", pduOf(ul.TypeAAssociateAC, cat(fixed, []byte{0x10, 0, 0, 1, '1', 0x10, 0, 0, 1, '2'})),
			&ul.AAssociateAC{ApplicationContext: "1"}},
		{"AC without transfer syntax", pduOf(ul.TypeAAssociateAC, cat(fixed, []byte{0x21, 0, 0, 4, 3, 0, 4, 0})),
			&ul.AAssociateAC{PresentationContexts: []ul.PresentationContextAC{{ID: 3, Result: ul.PCTransferSyntaxesNotSupported}}}},
		{"AC result 9", pduOf(ul.TypeAAssociateAC, cat(fixed, []byte{0x21, 0, 0, 9, 1, 0, 9, 0, 0x40, 0, 0, 1, '1'})),
			&ul.AAssociateAC{PresentationContexts: []ul.PresentationContextAC{{ID: 1, Result: 9, TransferSyntax: "1"}}}},
		{"PDV reserved bits", pduOf(ul.TypePDataTF, []byte{0, 0, 0, 3, 1, 0xFC, 7}),
			&ul.PDataTF{PDVs: []ul.PDV{{ContextID: 1, Data: []byte{7}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ul.ReadPDU(bytes.NewReader(tt.in), 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestReadPDUNoAllocation checks that a huge announced length is refused
// before anything is allocated for it.
func TestReadPDUNoAllocation(t *testing.T) {
	hdr := []byte{0x04, 0x00, 0xFF, 0xFF, 0xFF, 0xF0}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 100 {
		if _, err := ul.ReadPDU(bytes.NewReader(hdr), 1<<20); !errors.Is(err, ul.ErrPDUTooLarge) {
			t.Fatalf("ReadPDU: %v, want ErrPDUTooLarge", err)
		}
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 256<<10 {
		t.Errorf("100 refused PDUs allocated %d bytes", got)
	}
}

// TestReadPDUGrowsWithData checks that a large PDU is read whole, and that
// one announced large but cut short fails without a buffer of its announced
// size.
func TestReadPDUGrowsWithData(t *testing.T) {
	data := bytes.Repeat([]byte{0xAB}, 300<<10)
	b := pdata(1, dataLast, data)
	p, err := ul.ReadPDU(bytes.NewReader(b), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.(*ul.PDataTF).PDVs[0].Data; !bytes.Equal(got, data) {
		t.Errorf("data of %d bytes differs", len(got))
	}
	short := []byte{0x04, 0x00, 0x0F, 0xFF, 0xFF, 0xFF, 0, 0}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = ul.ReadPDU(bytes.NewReader(short), 1<<30)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut PDU: %v, want io.ErrUnexpectedEOF", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("a PDU announcing 256 MiB and sending 2 bytes allocated %d bytes", got)
	}
}

func TestParseUnknownType(t *testing.T) {
	if _, err := ul.Parse(ul.Type(0x09), []byte{0, 0, 0, 0}); !errors.Is(err, ul.ErrUnknownPDUType) {
		t.Errorf("Parse(0x09) = %v, want ErrUnknownPDUType", err)
	}
}

func TestValidateAC(t *testing.T) {
	good := func() *ul.AAssociateAC {
		return &ul.AAssociateAC{ProtocolVersion: 1, ApplicationContext: ul.ApplicationContext,
			PresentationContexts: []ul.PresentationContextAC{{ID: 1, TransferSyntax: implicitLE}, {ID: 2, Result: ul.PCNoReason}},
			UserInfo:             ul.UserInfo{MaxLength: 16384, Roles: []ul.RoleSelection{{SOPClassUID: "not a UID but echoed"}}}}
	}
	tests := []struct {
		name   string
		change func(*ul.AAssociateAC)
		want   string // in the error; "" for none
	}{
		{"good, empty AEs, even ID echoed", func(*ul.AAssociateAC) {}, ""},
		{"accepted without transfer syntax", func(ac *ul.AAssociateAC) { ac.PresentationContexts[0].TransferSyntax = "" }, "accepted without transfer syntax"},
		{"no application context", func(ac *ul.AAssociateAC) { ac.ApplicationContext = "" }, "application context: empty"},
		{"AE of 17", func(ac *ul.AAssociateAC) { ac.CallingAE = "ABCDEFGHIJKLMNOPQ" }, "17 characters"},
		{"long transfer syntax", func(ac *ul.AAssociateAC) { ac.PresentationContexts[0].TransferSyntax = strings.Repeat("1", 65) }, "65 characters"},
		{"129 contexts", func(ac *ul.AAssociateAC) {
			ac.PresentationContexts = make([]ul.PresentationContextAC, 129)
			for i := range ac.PresentationContexts {
				ac.PresentationContexts[i].Result = ul.PCNoReason
			}
		}, "129 presentation contexts"},
		{"huge user information", func(ac *ul.AAssociateAC) {
			for range 3 {
				ac.UserInfo.Unknown = append(ac.UserInfo.Unknown, ul.Item{Type: 0x56, Data: make([]byte, 30000)})
			}
		}, "user information item of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ac := good()
			tt.change(ac)
			err := ac.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestUserInfoKeepsBoundedItems: a user information item with hundreds of sub-items parses,
// keeps a bounded number of them, and re-encodes to something that parses again (found by
// FuzzUserInfo: 512 unknown items plus the maximum length item re-encoded to 513).
func TestUserInfoKeepsBoundedItems(t *testing.T) {
	var v []byte
	for range 511 {
		v = append(v, 0x99, 0, 0, 0)
	}
	p, err := ul.Parse(ul.TypeAAssociateRQ, rqWithUserInfo(v))
	if err != nil {
		t.Fatal(err)
	}
	u := p.(*ul.AAssociateRQ).UserInfo
	if len(u.Unknown) != 64 {
		t.Errorf("kept %d unknown items, want 64", len(u.Unknown))
	}
	if _, err := ul.ReadPDU(bytes.NewReader(p.Append(nil)), 1<<20); err != nil {
		t.Errorf("re-encoded PDU does not parse: %v", err)
	}
}
