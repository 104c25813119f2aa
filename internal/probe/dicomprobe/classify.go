package dicomprobe

import (
	"errors"

	"github.com/pacswatch/pacswatch/internal/dicom"
	"github.com/pacswatch/pacswatch/internal/dicom/dimse"
	"github.com/pacswatch/pacswatch/internal/dicom/ul"
	"github.com/pacswatch/pacswatch/internal/probe"
)

// failureOf is the kind of protocol failure err shows, from the sentinels of the DICOM
// packages: the Upper Layer's PDUs (PS3.8), the DIMSE command sets (PS3.7) and the data set
// codec (PS3.5). probe.Classify words each kind.
func failureOf(err error) probe.Failure {
	switch {
	case errors.Is(err, ul.ErrPDUTooLarge):
		return probe.FailurePDUTooLarge
	case errors.Is(err, ul.ErrMessageTooLarge), errors.Is(err, dicom.ErrTooLarge):
		return probe.FailureMessageTooLarge
	case errors.Is(err, ul.ErrUnknownPDUType):
		return probe.FailureUnknownPDU
	case errors.Is(err, ul.ErrMalformed), errors.Is(err, dicom.ErrMalformed), errors.Is(err, dicom.ErrTruncated),
		errors.Is(err, dicom.ErrTooDeep), errors.Is(err, dimse.ErrMalformedCommand):
		return probe.FailureMalformed
	case errors.Is(err, ul.ErrProtocol), errors.Is(err, ul.ErrUnexpectedPDU), errors.Is(err, dimse.ErrProtocol),
		errors.Is(err, dimse.ErrTooManyResponses):
		return probe.FailureProtocol
	}
	return probe.FailureNone
}

// classify is probe.Classify for an error of a DICOM exchange: an A-ABORT is "association
// aborted: " and its reason (PS3.8 §9.3.8), the DICOM packages' failures are marked with
// their kind, and the rest is the network's.
func classify(err error) (probe.Status, string) {
	var ab *ul.AbortedError
	if errors.As(err, &ab) {
		return probe.StatusError, abortText(ab)
	}
	return probe.Classify(probe.Mark(err, failureOf(err)))
}

// errorText is classify's text for err.
func errorText(err error) string {
	_, text := classify(err)
	return text
}

// abortText words an A-ABORT the peer sent.
func abortText(ab *ul.AbortedError) string { return "association aborted: " + ab.Abort.Meaning() }
