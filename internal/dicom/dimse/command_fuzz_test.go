package dimse_test

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
)

// FuzzDecodeCommand checks that DecodeCommand never panics, and that what it
// decodes survives Encode and DecodeCommand unchanged, with Encode stable
// from then on.
func FuzzDecodeCommand(f *testing.F) {
	f.Add(cEchoRQ)
	captured, err := filepath.Glob(filepath.Join("testdata", "commands", "*.bin"))
	if err != nil || len(captured) == 0 {
		f.Fatalf("no captured command sets: %v", err)
	}
	for _, name := range captured {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, c := range []dimse.Command{
		{Field: dimse.CFindRQ, AffectedSOPClassUID: dimse.StudyRootFind, MessageID: 1, HasDataset: true},
		{Field: dimse.CFindRSP, MessageIDBeingRespondedTo: 1, Status: dimse.Pending, HasDataset: true},
		{Field: dimse.CCancelRQ, MessageIDBeingRespondedTo: 1},
		{Field: dimse.CMoveRQ, AffectedSOPClassUID: dimse.StudyRootMove, MessageID: 2, MoveDestination: "NOWHERE", HasDataset: true},
		{Field: dimse.CMoveRSP, MessageIDBeingRespondedTo: 2, Status: dimse.MoveDestinationUnknown, ErrorComment: "unknown"},
		{Field: dimse.CGetRSP, MessageIDBeingRespondedTo: 3, Status: dimse.Pending,
			Remaining: new(uint16(3)), Completed: new(uint16(1)), Failed: new(uint16(0)), Warning: new(uint16(0))},
		{Field: dimse.CStoreRQ, AffectedSOPClassUID: dimse.SecondaryCapture, AffectedSOPInstanceUID: "2.25.7", MessageID: 5,
			HasDataset: true, MoveOriginatorAE: "PACSWATCH", MoveOriginatorMessageID: 2},
		{Field: dimse.CStoreRSP, AffectedSOPClassUID: dimse.SecondaryCapture, AffectedSOPInstanceUID: "2.25.7", MessageIDBeingRespondedTo: 5},
	} {
		f.Add(c.Encode())
	}
	f.Add(command(el(dicom.CommandField, us(0x8030)), el(dicom.CommandDataSetType, us(0x0101)), el(dicom.Status, us(0)),
		el(dicom.ErrorComment, []byte("\xe9\xff\\x\x00"))))
	f.Add(command(el(dicom.CommandField, us(0x8020)), el(dicom.CommandDataSetType, us(0x0000)), el(dicom.Status, us(0xFF00)),
		el(dicom.NewTag(0x0000, 0x5010), []byte{0xFF, 0xFF, 0xFF, 0xFF}), el(dicom.PatientName, []byte("FAKE"))))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := dimse.DecodeCommand(b)
		if err != nil {
			return
		}
		enc := c.Encode()
		if enc == nil {
			t.Fatalf("Encode() of decoded %+v = nil", c)
		}
		if len(enc) > dimse.MaxCommandBytes {
			return // Encode may add a group length and required fields past the cap
		}
		back, err := dimse.DecodeCommand(enc)
		if err != nil {
			t.Fatalf("DecodeCommand(Encode(%+v)): %v", c, err)
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip changed the command:\n got %+v\nwant %+v", back, c)
		}
		if again := back.Encode(); !bytes.Equal(again, enc) {
			t.Fatalf("Encode not stable:\n% x\n% x", again, enc)
		}
	})
}
