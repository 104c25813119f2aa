//go:build race

package dicomprobe

// raceEnabled: the race detector slows CPU-bound work about ninefold.
const raceEnabled = true
