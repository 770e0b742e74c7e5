package envflag

import (
	"flag"
	"testing"
)

func TestApply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    string
		wantErr bool
	}{
		{name: "default", want: "def"},
		{name: "env", env: map[string]string{"RSGO_DATA_DIR": "/env"}, want: "/env"},
		{name: "flag wins", args: []string{"--data-dir", "/flag"}, env: map[string]string{"RSGO_DATA_DIR": "/env"}, want: "/flag"},
		{name: "bad value", env: map[string]string{"RSGO_PORT": "x"}, want: "def", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			dir := fs.String("data-dir", "def", "")
			fs.Int("port", 1, "")
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := Apply(fs, func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got := *dir; got != tt.want {
				t.Errorf("data-dir = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestName(t *testing.T) {
	t.Parallel()
	if got, want := Name("admin-token"), "RSGO_ADMIN_TOKEN"; got != want {
		t.Errorf("Name = %q, want %q", got, want)
	}
}
