package dicomprobe

import (
	"fmt"
	"io"
	"testing"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
	"github.com/pacswatch/pacswatch/internal/probe"
)

// TestClassify: the DICOM packages' errors in probe's one table of wordings. The first rows
// were probe's own test before probe stopped importing the DICOM packages (issue 11); the
// others were worded apart by a second table ("malformed answer", "answer too large").
func TestClassify(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("step: %w", err) }
	for _, tc := range []struct {
		err    error
		status probe.Status
		text   string
	}{
		{wrap(ul.ErrPDUTooLarge), probe.StatusError, "pdu too large"},
		{wrap(ul.ErrMessageTooLarge), probe.StatusError, "message too large"},
		{wrap(ul.ErrUnknownPDUType), probe.StatusError, "unknown pdu type"},
		{wrap(ul.ErrMalformed), probe.StatusError, "malformed pdu"},
		{wrap(ul.ErrProtocol), probe.StatusError, "protocol error"},
		{wrap(ul.ErrUnexpectedPDU), probe.StatusError, "protocol error"},
		{wrap(dicom.ErrTooLarge), probe.StatusError, "message too large"},
		{wrap(dicom.ErrMalformed), probe.StatusError, "malformed pdu"},
		{wrap(dicom.ErrTruncated), probe.StatusError, "malformed pdu"},
		{wrap(dicom.ErrTooDeep), probe.StatusError, "malformed pdu"},
		{fmt.Errorf("decode command: %w: %w", dimse.ErrMalformedCommand, dicom.ErrTruncated), probe.StatusError, "malformed pdu"},
		{wrap(dimse.ErrProtocol), probe.StatusError, "protocol error"},
		{wrap(dimse.ErrTooManyResponses), probe.StatusError, "protocol error"},
		{wrap(&ul.AbortedError{Abort: ul.AAbort{Source: 2, Reason: 2}}), probe.StatusError, "association aborted: " + (ul.AAbort{Source: 2, Reason: 2}).Meaning()},
		{wrap(io.ErrUnexpectedEOF), probe.StatusError, "connection closed by peer"},
		{errStepTimeout, probe.StatusError, "i/o timeout"},
		{nil, probe.StatusOpen, ""},
	} {
		s, text := classify(tc.err)
		if s != tc.status || text != tc.text {
			t.Errorf("classify(%v) = %v %q, want %v %q", tc.err, s, text, tc.status, tc.text)
		}
	}
}
