package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/rsgo/rsgo/controller/internal/daemon"
)

const adminToken = "test-admin-token-0123456789"

// startController runs a whole controller on loopback with its store on disk.
func startController(t *testing.T) *daemon.Controller {
	t.Helper()
	c, err := daemon.Start(daemon.Config{
		DataDir:    t.TempDir(),
		HTTPAddr:   "127.0.0.1:0",
		AgentAddr:  "127.0.0.1:0",
		AdminToken: adminToken,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return c
}

type reply struct {
	status int
	body   map[string]any
}

func call(t *testing.T, c *daemon.Controller, method, path, token, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+c.HTTPAddr.String()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s %s: body is not JSON: %q", method, path, raw)
	}
	return reply{resp.StatusCode, m}
}

func errorOf(r reply) (code, message string) {
	e, _ := r.body["error"].(map[string]any)
	code, _ = e["code"].(string)
	message, _ = e["message"].(string)
	return code, message
}

func TestErrorsHaveTheSpecShape(t *testing.T) {
	t.Parallel()
	c := startController(t)
	call(t, c, "POST", "/api/environments", adminToken, `{"name":"taken"}`)

	tests := []struct {
		name, method, path, token, body string
		status                          int
		code, inMessage                 string
	}{
		{"no token", "GET", "/api/environments", "", "", 401, "unauthorized", "missing"},
		{"wrong token", "GET", "/api/environments", "wrong-token-wrong-token", "", 401, "unauthorized", "invalid"},
		{"unknown environment", "GET", "/api/environments/nope", adminToken, "", 404, "not_found", `"nope"`},
		{"unknown route", "GET", "/api/nothing", adminToken, "", 404, "not_found", "/api/nothing"},
		{"empty body", "POST", "/api/environments", adminToken, "", 400, "bad_request", "JSON object"},
		{"not json", "POST", "/api/environments", adminToken, "{", 400, "bad_request", "not valid JSON"},
		{"unknown field", "POST", "/api/environments", adminToken, `{"name":"a","colour":1}`, 400, "bad_request", "colour"},
		{"wrong type", "POST", "/api/environments", adminToken, `{"name":5}`, 400, "bad_request", `"name"`},
		{"bad name", "POST", "/api/environments", adminToken, `{"name":"Bad Name"}`, 400, "bad_request", `"name"`},
		{"taken name", "POST", "/api/environments", adminToken, `{"name":"taken"}`, 409, "conflict", "taken"},
		{"offline agent", "POST", "/api/environments/taken/ping", adminToken, "", 503, "agent_offline", "Environment agent is offline"},
		{"offline docker", "GET", "/api/environments/taken/docker", adminToken, "", 503, "agent_offline", "Environment agent is offline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, c, tt.method, tt.path, tt.token, tt.body)
			code, msg := errorOf(r)
			if r.status != tt.status || code != tt.code || r.body["success"] != false {
				t.Fatalf("got %d %v, want %d with code %s and success false", r.status, r.body, tt.status, tt.code)
			}
			if !strings.Contains(msg, tt.inMessage) {
				t.Errorf("message %q does not contain %q", msg, tt.inMessage)
			}
		})
	}
}

func TestHealthNeedsNoToken(t *testing.T) {
	t.Parallel()
	c := startController(t)
	r := call(t, c, "GET", "/api/health", "", "")
	if r.status != 200 || r.body["success"] != true {
		t.Fatalf("health = %d %v", r.status, r.body)
	}
}

func TestEnvironmentLifecycle(t *testing.T) {
	t.Parallel()
	c := startController(t)
	r := call(t, c, "POST", "/api/environments", adminToken, `{"name":"edge-1"}`)
	if r.status != 201 {
		t.Fatalf("create = %d %v", r.status, r.body)
	}
	env := r.body["environment"].(map[string]any)
	id := env["id"].(string)
	if env["status"] != "pending" {
		t.Errorf("new environment status = %v, want pending", env["status"])
	}
	token, _ := r.body["joinToken"].(string)
	if !strings.HasPrefix(token, "rsgo1.") || !strings.Contains(r.body["joinCommand"].(string), token) {
		t.Errorf("join token %q / command %v not usable", token, r.body["joinCommand"])
	}

	for _, ref := range []string{id, "edge-1"} {
		r = call(t, c, "GET", "/api/environments/"+ref, adminToken, "")
		if r.status != 200 || r.body["environment"].(map[string]any)["id"] != id {
			t.Errorf("get %s = %d %v", ref, r.status, r.body)
		}
	}
	r = call(t, c, "POST", "/api/environments/edge-1/join-token", adminToken, "")
	if r.status != 201 || r.body["joinToken"] == token {
		t.Errorf("new join token = %d %v", r.status, r.body)
	}
	r = call(t, c, "GET", "/api/environments", adminToken, "")
	if n := len(r.body["environments"].([]any)); n != 1 {
		t.Errorf("list has %d environments, want 1", n)
	}
	r = call(t, c, "DELETE", "/api/environments/edge-1", adminToken, "")
	if r.status != 200 || r.body["deleted"] != id {
		t.Fatalf("delete = %d %v", r.status, r.body)
	}
	r = call(t, c, "GET", "/api/environments/"+id, adminToken, "")
	if r.status != 404 {
		t.Errorf("deleted environment still answers: %d", r.status)
	}
	// The name is free again.
	if r = call(t, c, "POST", "/api/environments", adminToken, `{"name":"edge-1"}`); r.status != 201 {
		t.Errorf("re-create after delete = %d %v", r.status, r.body)
	}
}
