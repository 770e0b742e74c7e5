// Package logging builds the structured logger both binaries use, so their
// --log-level and --log-format flags behave the same.
package logging

import (
	"fmt"
	"io"
	"log/slog"
)

// New returns a slog logger writing to w. level is debug, info, warn or
// error; format is text or json.
func New(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: must be text or json", format)
}
