package peertest

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// Instance is one synthetic secondary-capture image. Every patient-identifying value is fake and
// carries the token "FAKE", so a test can search any output for leaks (see Corpus.Secrets).
type Instance struct {
	PatientName, PatientID, BirthDate, Sex string
	StudyUID, SeriesUID, SOPUID            string
	StudyDate, AccessionNumber             string
	StudyDescription, SeriesDescription    string
	Institution, Modality                  string
	SeriesNumber, InstanceNumber           int
}

// Corpus is a synthetic archive and the truth a perfect scanner reports about it.
type Corpus struct {
	Instances  []Instance
	Studies    int
	Modalities map[string]int // studies per modality
}

// SecondaryCaptureImageStorage is the SOP class of every synthetic instance.
const SecondaryCaptureImageStorage = "1.2.840.10008.5.1.4.1.1.7"

// Generate makes a deterministic archive of n studies from seed: 1–3 series per study and 1–4
// instances per series, modalities CT, MR, CR, US, DX, study dates spread over 2015–2024.
// uidRoot keeps UIDs distinct between corpora loaded into the same peer.
func Generate(seed uint64, n int, uidRoot string) Corpus {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	mods := []string{"CT", "MR", "CR", "US", "DX"}
	c := Corpus{Studies: n, Modalities: map[string]int{}}
	for s := 1; s <= n; s++ {
		mod := mods[r.IntN(len(mods))]
		c.Modalities[mod]++
		p := s % (n/2 + 1) // some patients have several studies
		date := fmt.Sprintf("%04d%02d%02d", 2015+r.IntN(10), 1+r.IntN(12), 1+r.IntN(28))
		study := fmt.Sprintf("2.25.%s%d", uidRoot, 1_000_000+s)
		for se := 1; se <= 1+r.IntN(3); se++ {
			for in := 1; in <= 1+r.IntN(4); in++ {
				c.Instances = append(c.Instances, Instance{
					PatientName:       fmt.Sprintf("FAKE^PATIENT%d^%s", p, uidRoot),
					PatientID:         fmt.Sprintf("FAKEPID%s-%d", uidRoot, p),
					BirthDate:         fmt.Sprintf("19%02d0101", 30+p%60),
					Sex:               []string{"F", "M", "O"}[p%3],
					StudyUID:          study,
					SeriesUID:         fmt.Sprintf("%s.%d", study, se),
					SOPUID:            fmt.Sprintf("%s.%d.%d", study, se, in),
					StudyDate:         date,
					AccessionNumber:   fmt.Sprintf("FAKEACC%s%d", uidRoot, s),
					StudyDescription:  fmt.Sprintf("FAKE STUDY %d", s),
					SeriesDescription: fmt.Sprintf("FAKE SERIES %d", se),
					Institution:       fmt.Sprintf("FAKE INSTITUTION %s", uidRoot),
					Modality:          mod,
					SeriesNumber:      se,
					InstanceNumber:    in,
				})
			}
		}
	}
	return c
}

// Series returns the number of distinct series in the corpus.
func (c Corpus) Series() int {
	seen := map[string]bool{}
	for _, in := range c.Instances {
		seen[in.SeriesUID] = true
	}
	return len(seen)
}

// Secrets lists every patient-identifying string in the corpus: names (and their components),
// IDs, accession numbers, institutions, descriptions. None may appear in any pacswatch output.
func (c Corpus) Secrets() []string {
	set := map[string]bool{}
	for _, in := range c.Instances {
		for _, v := range []string{in.PatientName, in.PatientID, in.AccessionNumber, in.Institution, in.StudyDescription, in.SeriesDescription} {
			set[v] = true
		}
	}
	out := make([]string, 0, len(set))
	for v := range set {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// WriteFiles writes the corpus as DICOM Part 10 files into dir and returns their paths.
func (c Corpus) WriteFiles(t testing.TB, dir string) []string {
	t.Helper()
	paths := make([]string, len(c.Instances))
	for i, in := range c.Instances {
		paths[i] = filepath.Join(dir, fmt.Sprintf("i%06d.dcm", i))
		if err := os.WriteFile(paths[i], in.Part10(), 0o644); err != nil {
			t.Fatalf("write synthetic instance: %v", err)
		}
	}
	return paths
}

// Part10 encodes the instance as a DICOM file (PS3.10): preamble, "DICM", file meta information
// and a 4x4 8-bit image, all Explicit VR Little Endian. Trusted data only: it is test input.
func (in Instance) Part10() []byte {
	var meta []byte
	meta = el(meta, 0x0002, 0x0001, "OB", "\x00\x01")
	meta = el(meta, 0x0002, 0x0002, "UI", SecondaryCaptureImageStorage)
	meta = el(meta, 0x0002, 0x0003, "UI", in.SOPUID)
	meta = el(meta, 0x0002, 0x0010, "UI", "1.2.840.10008.1.2.1")
	meta = el(meta, 0x0002, 0x0012, "UI", "2.25.1")
	meta = el(meta, 0x0002, 0x0013, "SH", "PEERTEST")
	b := make([]byte, 128, 128+4+12+len(meta)+1024)
	b = append(b, "DICM"...)
	b = el(b, 0x0002, 0x0000, "UL", string(binary.LittleEndian.AppendUint32(nil, uint32(len(meta)))))
	b = append(b, meta...)
	us := func(v uint16) string { return string(binary.LittleEndian.AppendUint16(nil, v)) }
	b = el(b, 0x0008, 0x0005, "CS", "ISO_IR 100")
	b = el(b, 0x0008, 0x0016, "UI", SecondaryCaptureImageStorage)
	b = el(b, 0x0008, 0x0018, "UI", in.SOPUID)
	b = el(b, 0x0008, 0x0020, "DA", in.StudyDate)
	b = el(b, 0x0008, 0x0030, "TM", "101500")
	b = el(b, 0x0008, 0x0050, "SH", in.AccessionNumber)
	b = el(b, 0x0008, 0x0060, "CS", in.Modality)
	b = el(b, 0x0008, 0x0064, "CS", "WSD")
	b = el(b, 0x0008, 0x0080, "LO", in.Institution)
	b = el(b, 0x0008, 0x0090, "PN", "FAKE^REFERRER")
	b = el(b, 0x0008, 0x1030, "LO", in.StudyDescription)
	b = el(b, 0x0008, 0x103e, "LO", in.SeriesDescription)
	b = el(b, 0x0010, 0x0010, "PN", in.PatientName)
	b = el(b, 0x0010, 0x0020, "LO", in.PatientID)
	b = el(b, 0x0010, 0x0030, "DA", in.BirthDate)
	b = el(b, 0x0010, 0x0040, "CS", in.Sex)
	b = el(b, 0x0020, 0x000d, "UI", in.StudyUID)
	b = el(b, 0x0020, 0x000e, "UI", in.SeriesUID)
	b = el(b, 0x0020, 0x0010, "SH", "FAKE1")
	b = el(b, 0x0020, 0x0011, "IS", fmt.Sprint(in.SeriesNumber))
	b = el(b, 0x0020, 0x0013, "IS", fmt.Sprint(in.InstanceNumber))
	b = el(b, 0x0028, 0x0002, "US", us(1))
	b = el(b, 0x0028, 0x0004, "CS", "MONOCHROME2")
	b = el(b, 0x0028, 0x0010, "US", us(4))
	b = el(b, 0x0028, 0x0011, "US", us(4))
	b = el(b, 0x0028, 0x0100, "US", us(8))
	b = el(b, 0x0028, 0x0101, "US", us(8))
	b = el(b, 0x0028, 0x0102, "US", us(7))
	b = el(b, 0x0028, 0x0103, "US", us(0))
	b = el(b, 0x7fe0, 0x0010, "OB", "\x00\x10\x20\x30\x40\x50\x60\x70\x80\x90\xa0\xb0\xc0\xd0\xe0\xf0")
	return b
}

// el appends one Explicit VR Little Endian element, padding the value to even length
// (NUL for UI and binary VRs, space for text).
func el(b []byte, group, elem uint16, vr, value string) []byte {
	if len(value)%2 == 1 {
		pad := " "
		if vr == "UI" || vr == "OB" {
			pad = "\x00"
		}
		value += pad
	}
	b = binary.LittleEndian.AppendUint16(b, group)
	b = binary.LittleEndian.AppendUint16(b, elem)
	b = append(b, vr...)
	switch vr {
	case "OB", "OW", "SQ", "UN", "UT":
		b = append(b, 0, 0)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(value)))
	default:
		b = binary.LittleEndian.AppendUint16(b, uint16(len(value)))
	}
	return append(b, value...)
}
