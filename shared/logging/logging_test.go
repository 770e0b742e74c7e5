package logging

import (
	"bytes"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		level, format string
		wantErr       bool
		wantOut       string
	}{
		{"info", "text", false, "msg=hello"},
		{"info", "json", false, `"msg":"hello"`},
		{"error", "text", false, ""},
		{"loud", "text", true, ""},
		{"info", "xml", true, ""},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		log, err := New(&buf, tt.level, tt.format)
		if (err != nil) != tt.wantErr {
			t.Fatalf("New(%q, %q) err = %v", tt.level, tt.format, err)
		}
		if err != nil {
			continue
		}
		log.Info("hello")
		if got := buf.String(); (tt.wantOut == "") != (got == "") || !strings.Contains(got, tt.wantOut) {
			t.Errorf("New(%q, %q) logged %q, want %q", tt.level, tt.format, got, tt.wantOut)
		}
	}
}
