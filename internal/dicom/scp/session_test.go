package scp

import (
	"testing"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
)

const ctImage = "1.2.840.10008.5.1.4.1.1.2"

func studyIdentifier(t testing.TB) []byte {
	t.Helper()
	var q dicom.Dataset
	q.Set(dicom.NewString(dicom.QueryRetrieveLevel, "STUDY"))
	q.Set(dicom.NewString(dicom.StudyInstanceUID))
	b, err := dicom.Encode(q, true)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func storeRSP(id uint16) []byte {
	return message(7, dimse.Command{Field: dimse.CStoreRSP, AffectedSOPClassUID: ctImage, MessageIDBeingRespondedTo: id}, nil)
}

// TestSessions runs scripted conversations over net.Pipe: the client's bytes
// are sent at once, and the server's counters tell what it made of them.
func TestSessions(t *testing.T) {
	ident := studyIdentifier(t)
	echo := message(1, dimse.Command{Field: dimse.CEchoRQ, AffectedSOPClassUID: dimse.Verification, MessageID: 1}, nil)
	findRQ := message(3, dimse.Command{Field: dimse.CFindRQ, AffectedSOPClassUID: dimse.StudyRootFind, MessageID: 2}, ident)
	getRQ := message(5, dimse.Command{Field: dimse.CGetRQ, AffectedSOPClassUID: dimse.StudyRootGet, MessageID: 3}, ident)
	cancel := message(3, dimse.Command{Field: dimse.CCancelRQ, MessageIDBeingRespondedTo: 2}, nil)
	storeRQ := message(7, dimse.Command{Field: dimse.CStoreRQ, AffectedSOPClassUID: ctImage, MessageID: 4, AffectedSOPInstanceUID: "1.2"},
		[]byte{8, 0, 0x18, 0, 'U', 'I', 2, 0, '1', 0})
	twoCT := &Tree{Studies: []Study{{UID: "1", Date: "20200101", PatientID: "P", Series: []Series{{UID: "1.1", Modality: "CT",
		Instances: []Instance{{SOPUID: "1.1.1", SOPClassUID: ctImage}, {SOPUID: "1.1.2", SOPClassUID: ctImage}}}}}}}
	dataFirst := (&ul.PDataTF{PDVs: []ul.PDV{{ContextID: 1, Last: true, Data: []byte{0, 0}}}}).Append(nil)

	for _, tc := range []struct {
		name string
		cfg  Config
		in   []byte
		want Stats
	}{
		{"echo", Config{}, sessionSeed(echo), Stats{Connections: 1, Associations: 1, Echo: 1}},
		{"echo find echo", Config{Tree: NewTree(1, 4)}, sessionSeed(echo, findRQ, echo), Stats{Connections: 1, Associations: 1, Echo: 2, Find: 1}},
		{"cancel after the find", Config{Tree: NewTree(1, 4)}, sessionSeed(findRQ, cancel), Stats{Connections: 1, Associations: 1, Find: 1, Cancels: 1}},
		{"get", Config{Tree: twoCT}, sessionSeed(getRQ, storeRSP(1), storeRSP(2), echo), Stats{Connections: 1, Associations: 1, Get: 1, Echo: 1}},
		{"get answered out of turn", Config{Tree: twoCT}, sessionSeed(getRQ, storeRSP(2)), Stats{Connections: 1, Associations: 1, Get: 1, Aborted: 1}},
		{"store", Config{}, sessionSeed(storeRQ), Stats{Connections: 1, Associations: 1, Store: 1}},
		{"store refused", Config{Refused: Services{Store: true}}, sessionSeed(storeRQ, echo), Stats{Connections: 1, Associations: 1, Store: 1, Aborted: 1}},
		{"find refused by status", Config{Refused: Services{Find: true}, Refusal: RefuseStatus}, sessionSeed(findRQ, echo),
			Stats{Connections: 1, Associations: 1, Find: 1, Echo: 1}},
		{"calling refused", Config{AllowedCalling: []string{"OTHER"}}, sessionSeed(echo), Stats{Connections: 1, Rejected: 1}},
		{"abort first", Config{}, ul.AAbort{}.Append(nil), Stats{Connections: 1, Aborted: 1}},
		{"data before command", Config{}, sessionSeed(dataFirst, echo), Stats{Connections: 1, Associations: 1, Aborted: 1}},
		{"not dicom", Config{}, []byte("GET / HTTP/1.0\r\n\r\n"), Stats{Connections: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := runSession(t, tc.cfg, tc.in); got != tc.want {
				t.Errorf("stats = %+v\nwant    %+v", got, tc.want)
			}
		})
	}
}
