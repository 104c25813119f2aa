package cli

import (
	"fmt"
	"io"
	"log/slog"
)

// logAttr is the log handlers' ReplaceAttr: each record has one "level" key, the record's
// own (a result's exposure level, logged as "level", becomes "exposure_level"), and an
// "error" attribute without an error (nil, or an empty text) is left out rather than printed as
// error=<nil> or error="".
func logAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return dropNoError(a)
	}
	if a.Key == slog.LevelKey {
		if _, ok := a.Value.Any().(slog.Level); !ok {
			a.Key = "exposure_level"
		}
		return a
	}
	return dropNoError(a)
}

func dropNoError(a slog.Attr) slog.Attr {
	if a.Key != "error" {
		return a
	}
	v := a.Value.Resolve()
	switch {
	case v.Kind() == slog.KindString && v.String() == "",
		v.Kind() == slog.KindAny && v.Any() == nil:
		return slog.Attr{}
	}
	if err, ok := v.Any().(error); ok && err == nil {
		return slog.Attr{}
	}
	return a
}

// say writes one line for a person on w, or, with --log-format json, one JSON log record of
// level INFO (message msg, the attributes args as slog takes them): stderr then holds nothing
// but JSON. text is the line a person reads.
func say(w io.Writer, format, text, msg string, args ...any) {
	if format != "json" {
		fmt.Fprintln(w, text)
		return
	}
	slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{ReplaceAttr: logAttr})).Info(msg, args...)
}
