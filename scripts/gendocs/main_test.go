package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGenerate: the man pages and completions come from the command definitions: every
// command has a page, the scan page lists its flags, each shell gets a script.
func TestGenerate(t *testing.T) {
	dir := t.TempDir()
	if err := run(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"man1/pacswatch.1", "man1/pacswatch-scan.1", "man1/pacswatch-report.1", "man1/pacswatch-scans.1",
		"completions/pacswatch.bash", "completions/pacswatch.zsh", "completions/pacswatch.fish"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || len(b) == 0 {
			t.Errorf("%s: %v (%d bytes)", name, err, len(b))
		}
	}
	scan, _ := os.ReadFile(filepath.Join(dir, "man1/pacswatch-scan.1"))
	for _, flag := range []string{"--resume", "--yes", "--exclude-file", "--rate"} {
		if !strings.Contains(string(scan), strings.ReplaceAll(flag, "-", `\-`)) && !strings.Contains(string(scan), flag) {
			t.Errorf("pacswatch-scan.1 does not document %s", flag)
		}
	}
}
