package dicomprobe

import (
	"encoding/binary"
	"encoding/hex"
)

// studySet returns the digest of the studies counted (probe.Exposure.StudySet): the sum, modulo
// 2⁶⁴, of their 8-byte keyed hashes, which are uniform and distinct, so that the digest is the
// same whatever order a server sent them in, costs no memory, and two different sets collide with
// a chance of 2⁻⁶⁴; mixed with the count. Empty when no study was counted.
func (c *counter) studySet() string {
	if c == nil || c.seen.len() == 0 {
		return ""
	}
	sum := c.seen.sum ^ uint64(c.seen.len())*0x9e3779b97f4a7c15 // kept by the set, even once freed
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], sum)
	return hex.EncodeToString(b[:])
}
