package probe

import "strings"

// ModalityOther is the Exposure.Modalities key of every value outside PS3.3's defined terms
// (SPEC "Result record").
const ModalityOther = "OTHER"

// modalityTerms are the defined terms of Modality (0008,0060) in PS3.3 §C.7.3.1.1.1, current
// and retired: the only values a record keeps as they came. A server may put anything in
// Modality or ModalitiesInStudy (a patient's name, say); a list of terms, not a pattern of
// letters, is what keeps such a value out of a published report.
var modalityTerms = func() map[string]bool {
	terms := map[string]bool{}
	for _, t := range strings.Fields(`
		ANN AR ASMT AU BDUS BI BMD CFM CR CT CTPROTOCOL DG DMS DOC DX ECG EEG EMG EOG EPS ES FID
		GM HC HD IO IOL IVOCT IVUS KER KO LEN LS M3D MG MR NM OAM OCT OP OPM OPT OPTBSV OPTENF
		OPV OSS OT PA PLAN POS PR PT PX REG RESP RF RG RTDOSE RTIMAGE RTINTENT RTPLAN RTRAD
		RTRECORD RTSEGANN RTSTRUCT RWV SEG SM SMR SR SRF STAIN TEXTUREMAP TG US VA XA
		XAPROTOCOL XC
		AS CD CF CP CS DD DF DM DS EC FA FS LP MA MS OPR ST VF`) { // the last line: retired terms
		terms[t] = true
	}
	return terms
}()

// Modality returns the Exposure.Modalities key for a Modality or ModalitiesInStudy value: the
// value itself, without surrounding spaces, when it is one of PS3.3's defined terms (current or
// retired; matched exactly: the terms are upper case), "" for an empty value, and ModalityOther
// for anything else.
func Modality(v string) string {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return ""
	case v == ModalityOther || modalityTerms[v]:
		return v
	}
	return ModalityOther
}
