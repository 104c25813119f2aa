package ul

import "fmt"

// PCResult is the Result/Reason field of a presentation context item in an
// A-ASSOCIATE-AC (PS3.8 §9.3.3.2, Table 9-18). Values outside the table are
// kept as received and print as "unknown(N)".
type PCResult byte

// Presentation context results.
const (
	PCAcceptance                   PCResult = 0
	PCUserRejection                PCResult = 1
	PCNoReason                     PCResult = 2 // provider rejection, no reason given
	PCAbstractSyntaxNotSupported   PCResult = 3 // provider rejection
	PCTransferSyntaxesNotSupported PCResult = 4 // provider rejection
)

func (r PCResult) String() string {
	switch r {
	case PCAcceptance:
		return "acceptance"
	case PCUserRejection:
		return "user-rejection"
	case PCNoReason:
		return "no-reason"
	case PCAbstractSyntaxNotSupported:
		return "abstract-syntax-not-supported"
	case PCTransferSyntaxesNotSupported:
		return "transfer-syntaxes-not-supported"
	}
	return fmt.Sprintf("unknown(%d)", byte(r))
}

// ResultString names the Result field of PS3.8 Table 9-21.
func (rj AAssociateRJ) ResultString() string {
	switch rj.Result {
	case 1:
		return "rejected-permanent"
	case 2:
		return "rejected-transient"
	}
	return fmt.Sprintf("unknown(%d)", rj.Result)
}

// SourceString names the Source field of PS3.8 Table 9-21.
func (rj AAssociateRJ) SourceString() string {
	switch rj.Source {
	case 1:
		return "service-user"
	case 2:
		return "service-provider-acse"
	case 3:
		return "service-provider-presentation"
	}
	return fmt.Sprintf("unknown(%d)", rj.Source)
}

// Meaning names the Reason/Diag. field of PS3.8 Table 9-21, whose meaning
// depends on the source: source 1 reason 3 is "calling-AE-title-not-recognized",
// source 1 reason 7 "called-AE-title-not-recognized", source 2 reason 2
// "protocol-version-not-supported", source 3 reason 1 "temporary-congestion".
// Reserved or undefined values print as "unknown(N)".
func (rj AAssociateRJ) Meaning() string {
	switch rj.Source {
	case 1:
		switch rj.Reason {
		case 1:
			return "no-reason-given"
		case 2:
			return "application-context-name-not-supported"
		case 3:
			return "calling-AE-title-not-recognized"
		case 7:
			return "called-AE-title-not-recognized"
		}
	case 2:
		switch rj.Reason {
		case 1:
			return "no-reason-given"
		case 2:
			return "protocol-version-not-supported"
		}
	case 3:
		switch rj.Reason {
		case 1:
			return "temporary-congestion"
		case 2:
			return "local-limit-exceeded"
		}
	}
	return fmt.Sprintf("unknown(%d)", rj.Reason)
}

// Meaning describes the Source and Reason/Diag. fields of PS3.8 Table 9-26:
// "service-user" for a user-initiated abort (whose reason is not
// significant), "service-provider: unexpected-PDU" and the like for a
// provider-initiated one.
func (a AAbort) Meaning() string {
	switch a.Source {
	case 0:
		return "service-user"
	case 2:
		return "service-provider: " + a.reasonString()
	}
	return fmt.Sprintf("unknown(%d): %s", a.Source, a.reasonString())
}

func (a AAbort) reasonString() string {
	switch a.Reason {
	case 0:
		return "reason-not-specified"
	case 1:
		return "unrecognized-PDU"
	case 2:
		return "unexpected-PDU"
	case 4:
		return "unrecognized-PDU-parameter"
	case 5:
		return "unexpected-PDU-parameter"
	case 6:
		return "invalid-PDU-parameter-value"
	}
	return fmt.Sprintf("unknown(%d)", a.Reason)
}
