package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/pacswatch/pacswatch/internal/probe"
)

// TestLogJSON: with --log-format json each record has one level key, a result's level is
// exposure_level, no error=<nil> or empty error, and say writes JSON, not a line of text.
func TestLogJSON(t *testing.T) {
	var buf bytes.Buffer
	logger, err := newLogger(&buf, 1, "json")
	if err != nil {
		t.Fatal(err)
	}
	var noErr error
	logger.Debug("target done", "target", "127.0.0.1:104", "level", probe.LevelQuery, "error", noErr)
	logger.Debug("count", "error", probe.SafeError(nil), "studies", 3)
	logger.Warn("failed", "error", errors.New("c-find: refused"))
	say(&buf, "json", "scan 1: 5 targets, 2 open", "scan finished", "scan", "1", "targets", 5)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4:\n%s", len(lines), buf.String())
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Errorf("not JSON: %s", l)
		}
		if n := strings.Count(l, `"level":`); n != 1 {
			t.Errorf("%d level keys: %s", n, l)
		}
		if strings.Contains(l, `"error":""`) || strings.Contains(l, "<nil>") || strings.Contains(l, `"error":null`) {
			t.Errorf("an error without an error: %s", l)
		}
	}
	if !strings.Contains(lines[0], `"exposure_level":"query"`) || !strings.Contains(lines[2], `"error":"c-find: refused"`) ||
		!strings.Contains(lines[3], `"msg":"scan finished"`) {
		t.Errorf("records:\n%s", buf.String())
	}

	buf.Reset()
	text, _ := newLogger(&buf, 1, "text")
	text.Debug("count", "error", noErr, "level", probe.LevelEcho)
	say(&buf, "text", "scan 1: 5 targets", "scan finished")
	if got := buf.String(); strings.Contains(got, "error=") || !strings.Contains(got, "exposure_level=echo") || !strings.HasSuffix(got, "scan 1: 5 targets\n") {
		t.Errorf("text log:\n%s", got)
	}
}
