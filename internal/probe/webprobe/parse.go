package webprobe

import (
	"bytes"
	"cmp"
	"encoding/json"
	"html"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/pacswatch/pacswatch/internal/probe"
)

// The parsers below read bodies from untrusted servers. Each decodes into a small struct,
// keeps strings short, and fails (ok false) rather than guess.

const (
	maxTitle = 128 // bytes of an HTML title kept for matching
	maxAETs  = 16  // AE titles kept from dcm4chee-arc's list
)

// system is what pacswatch keeps of Orthanc's GET /system.
type system struct {
	Version  string // Orthanc's version, e.g. "1.10.1"
	DicomAet string // its DICOM AE title
}

// parseSystem parses Orthanc's /system answer. It is Orthanc's only if it names both a version
// and a DICOM AE title.
func parseSystem(b []byte) (system, bool) {
	var v struct {
		Version  *string
		DicomAet *string
	}
	if json.Unmarshal(b, &v) != nil || v.Version == nil || v.DicomAet == nil || *v.Version == "" {
		return system{}, false
	}
	return system{Version: clip(*v.Version, probe.MaxVersion), DicomAet: clip(*v.DicomAet, probe.MaxAETitle)}, true
}

// statistics is what pacswatch keeps of Orthanc's GET /statistics: counts, nothing listed.
type statistics struct {
	CountStudies, CountInstances int64
}

// parseStatistics parses Orthanc's /statistics answer; counts must be present and not negative.
func parseStatistics(b []byte) (statistics, bool) {
	var v struct {
		CountStudies, CountInstances *int64
	}
	if json.Unmarshal(b, &v) != nil || v.CountStudies == nil || v.CountInstances == nil ||
		*v.CountStudies < 0 || *v.CountInstances < 0 {
		return statistics{}, false
	}
	return statistics{*v.CountStudies, *v.CountInstances}, true
}

// parseCount parses dcm4chee-arc's QIDO-RS count extension: {"count":N}, N not negative.
func parseCount(b []byte) (int64, bool) {
	var v struct {
		Count *int64 `json:"count"`
	}
	if json.Unmarshal(b, &v) != nil || v.Count == nil || *v.Count < 0 {
		return 0, false
	}
	return *v.Count, true
}

// parseVersion parses Dicoogle's /ext/version: {"version":"3.4.0"}.
func parseVersion(b []byte) (string, bool) {
	var v struct {
		Version *string `json:"version"`
	}
	if json.Unmarshal(b, &v) != nil || v.Version == nil {
		return "", false
	}
	return clip(*v.Version, probe.MaxVersion), true
}

// parseAETs parses dcm4chee-arc's GET /dcm4chee-arc/aets, a JSON array of application entities
// ({"dicomAETitle": ...} in 5.x, {"title": ...} in early versions), and returns at most maxAETs
// valid AE titles. It streams the array: a long list costs no memory.
func parseAETs(b []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('[') {
		return nil
	}
	var aets []string
	for len(aets) < maxAETs && dec.More() {
		var v struct {
			DicomAETitle string `json:"dicomAETitle"`
			Title        string `json:"title"`
		}
		if dec.Decode(&v) != nil {
			break
		}
		if ae := cmp.Or(v.DicomAETitle, v.Title); validAE(ae) {
			aets = append(aets, ae)
		}
	}
	return aets
}

// validAE reports whether s is an AE title as PS3.5 §6.2 defines the AE VR: 1 to 16 characters of
// the default repertoire, no backslash, not only spaces. It ends up in a URL path.
func validAE(s string) bool {
	if len(s) == 0 || len(s) > probe.MaxAETitle || strings.TrimSpace(s) == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e || s[i] == '\\' {
			return false
		}
	}
	return true
}

// htmlTitle returns the text of the first <title> element of an HTML page, entities decoded,
// runs of white space collapsed, at most maxTitle bytes. "" if there is none.
func htmlTitle(b []byte) string {
	lower := lowerASCII(b) // same length as b: offsets into one are offsets into the other
	for i := 0; ; {
		k := bytes.Index(lower[i:], []byte("<title"))
		if k < 0 {
			return ""
		}
		i += k + len("<title")
		// "<title" must end the tag name: "<title>" or "<title lang=...>", not "<titlebar>".
		if i == len(lower) || strings.IndexByte("> \t\r\n", lower[i]) < 0 {
			continue
		}
		j := bytes.IndexByte(lower[i:], '>')
		if j < 0 {
			return ""
		}
		start := i + j + 1
		end := bytes.Index(lower[start:], []byte("</title"))
		if end < 0 {
			return ""
		}
		raw := b[start : start+min(end, 4*maxTitle)] // entities shrink when decoded; spaces collapse
		t := strings.Join(strings.Fields(html.UnescapeString(string(raw))), " ")
		return clip(t, maxTitle)
	}
}

// lowerASCII returns a copy of b with ASCII letters lowered and every other byte unchanged.
func lowerASCII(b []byte) []byte {
	l := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		l[i] = c
	}
	return l
}

// qidoAnswered reports whether r is a QIDO-RS answer (PS3.18 §10.6.3): 200 with a DICOM JSON
// array of objects ("[{" or "[]"), or, when noContent is allowed, 204 (no study matches, as
// dcm4chee-arc says). Only the array's first bytes are looked at; nothing is kept.
func qidoAnswered(r *response, noContent bool) bool {
	if r.status == http.StatusNoContent {
		return noContent
	}
	if r.status != http.StatusOK {
		return false
	}
	mt, _, err := mime.ParseMediaType(r.header.Get("Content-Type"))
	if err != nil || (mt != "application/dicom+json" && mt != "application/json") {
		return false
	}
	b := bytes.TrimLeft(r.body, " \t\r\n")
	if len(b) == 0 || b[0] != '[' {
		return false
	}
	b = bytes.TrimLeft(b[1:], " \t\r\n")
	return len(b) > 0 && (b[0] == '{' || b[0] == ']')
}

// clip returns s, made valid UTF-8, cut to at most n bytes on a rune boundary, in its own memory
// (a short string must not keep a long body alive).
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > n {
		i := n
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		s = s[:i]
	}
	return strings.Clone(s)
}
