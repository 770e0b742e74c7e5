package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
)

// wsClient is a real WebSocket client of /api/ws that collects messages.
type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
	msgs chan map[string]any
	done chan struct{}
}

func dialWS(t *testing.T, c *controller) *wsClient {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial("ws://"+c.httpAddr+"/api/ws?access_token="+c.token, nil)
	if err != nil {
		t.Fatalf("dial ws: %v (%v)", err, resp)
	}
	w := &wsClient{t: t, conn: conn, msgs: make(chan map[string]any, 10000), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			_, raw, err := conn.ReadMessage()
			if err != nil {
				return
			}
			// A frame carries one or more events, one per line.
			for _, line := range strings.Split(string(raw), "\n") {
				var m map[string]any
				if json.Unmarshal([]byte(line), &m) == nil {
					w.msgs <- m
				}
			}
		}
	}()
	t.Cleanup(func() { w.close() })
	return w
}

func (w *wsClient) close() {
	w.conn.Close()
	<-w.done
}

func (w *wsClient) send(v any) {
	w.t.Helper()
	if err := w.conn.WriteJSON(v); err != nil {
		w.t.Fatal(err)
	}
}

func (w *wsClient) subscribe(session string, since int64) {
	w.t.Helper()
	w.send(map[string]any{"type": "subscribe", "sessionId": session, "since": since})
	w.expect("subscribed")
}

// expect waits for a message of one type, skipping others that are not
// events.
func (w *wsClient) expect(typ string) map[string]any {
	w.t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m := <-w.msgs:
			if m["type"] == typ {
				return m
			}
		case <-timeout:
			w.t.Fatalf("no %q message within 20 s", typ)
		}
	}
}

// events collects progress events until the final one of operation op.
func (w *wsClient) events(op string, within time.Duration) []map[string]any {
	w.t.Helper()
	var out []map[string]any
	timeout := time.After(within)
	for {
		select {
		case m := <-w.msgs:
			switch m["type"] {
			case "progress", "completed", "failed":
				out = append(out, m)
				if m["type"] != "progress" && (op == "" || m["operationId"] == op) {
					return out
				}
			}
		case <-timeout:
			w.t.Fatalf("no final event within %v; got %d events", within, len(out))
		}
	}
}

// checkStream asserts the SPEC's guarantees on one session's events: seq
// 1..n without gaps, percent never falling, exactly one final event, last.
func checkStream(t *testing.T, evs []map[string]any, wantFinal string, wantPhases ...string) {
	t.Helper()
	if len(evs) < 2 {
		t.Fatalf("only %d events", len(evs))
	}
	lastPct := -1.0
	var phases []string
	for i, ev := range evs {
		if seq := ev["seq"].(float64); int(seq) != i+1 {
			t.Fatalf("event %d has seq %v; want consecutive from 1: %v", i, seq, evs)
		}
		pct := ev["percent"].(float64)
		if pct < lastPct {
			t.Errorf("percent fell from %v to %v at seq %d", lastPct, pct, i+1)
		}
		lastPct = pct
		if (ev["type"] != "progress") != (i == len(evs)-1) {
			t.Errorf("event %d is %v; exactly the last must be final", i+1, ev["type"])
		}
		if i < len(evs)-1 && pct >= 100 {
			t.Errorf("progress event at 100%% before the end")
		}
		if p, _ := ev["phase"].(string); p != "" && ev["type"] == "progress" && (len(phases) == 0 || phases[len(phases)-1] != p) {
			phases = append(phases, p)
		}
	}
	final := evs[len(evs)-1]
	if final["type"] != wantFinal || final["percent"].(float64) != 100 {
		t.Errorf("final event = %v, want %s at 100%%", final, wantFinal)
	}
	if strings.Join(phases, ",") != strings.Join(wantPhases, ",") {
		t.Errorf("phases %v, want %v", phases, wantPhases)
	}
}

func TestProgressOfDeployUpgradeRollback(t *testing.T) {
	t.Parallel()
	u := newUpgradeEnv(t,
		stackVersion{product: "e2e.ws", version: "1.0.0", web: "shop/web:1.0.0", db: "shop/db:1.0.0"},
		stackVersion{product: "e2e.ws", version: "2.0.0", web: "shop/web:crash", db: "shop/db:2.0.0"})
	ws := dialWS(t, u.c)

	// Deploy, subscribed before the call.
	ws.subscribe("ws-deploy", 0)
	status, resp := u.c.api("POST", "/api/environments/"+u.env+"/deployments",
		fmt.Sprintf(`{"name":"wsdep","stackId":"e2e:e2e.ws:main@1.0.0","sessionId":"ws-deploy","variables":{"HTTP_PORT":"%d","DB_PASSWORD":"x"}}`, freePort(t)))
	if status != 202 || resp["sessionId"] != "ws-deploy" {
		t.Fatalf("deploy: %d %v", status, resp)
	}
	depID := resp["deploymentId"].(string)
	u.cleanup(t, depID)
	deployEvents := ws.events(resp["operationId"].(string), 60*time.Second)
	checkStream(t, deployEvents, "completed", "PullingImages", "StartingServices", "Verifying")
	for _, ev := range deployEvents[:len(deployEvents)-1] {
		if ev["totalServices"].(float64) != 2 || ev["environmentId"] != u.env || ev["deploymentId"] != depID || ev["operation"] != "deploy" {
			t.Fatalf("event lacks its context: %v", ev)
		}
	}

	// A failing upgrade: the final event says failed, where, and that a
	// rollback is possible.
	ws.subscribe("ws-up", 0)
	status, resp = u.c.api("POST", u.path(depID)+"/upgrade", `{"sessionId":"ws-up","variables":{"NEW_VAR":"n"}}`)
	if status != 202 {
		t.Fatalf("upgrade: %d %v", status, resp)
	}
	upEvents := ws.events(resp["operationId"].(string), 60*time.Second)
	checkStream(t, upEvents, "failed", "PullingImages", "StartingServices", "Verifying")
	final := upEvents[len(upEvents)-1]
	if final["phase"] != "Verifying" || final["canRollback"] != true || !strings.Contains(fmt.Sprint(final["error"]), "service web") {
		t.Errorf("failed event = %v", final)
	}

	ws.subscribe("ws-rb", 0)
	status, resp = u.c.api("POST", u.path(depID)+"/rollback", `{"sessionId":"ws-rb"}`)
	if status != 202 {
		t.Fatalf("rollback: %d %v", status, resp)
	}
	rbEvents := ws.events(resp["operationId"].(string), 60*time.Second)
	checkStream(t, rbEvents, "completed", "RemovingContainers", "PullingImages", "StartingServices", "Verifying")

	// A late subscriber gets the deploy's events from the start.
	late := dialWS(t, u.c)
	late.subscribe("ws-deploy", 0)
	if got := late.events("", 20*time.Second); len(got) != len(deployEvents) {
		t.Errorf("late subscriber got %d events, the live one %d", len(got), len(deployEvents))
	}
	// The same events over HTTP, with since.
	_, evs := u.c.api("GET", u.path(depID)+"/events?since=2", "")
	if list := evs["events"].([]any); len(list) != len(rbEvents)-2 || evs["sessionId"] != "ws-rb" {
		t.Errorf("GET events?since=2 returned %d events of %v, want %d of ws-rb", len(list), evs["sessionId"], len(rbEvents)-2)
	}
}

func TestProgressSurvivesDisconnectsAndALinkCut(t *testing.T) {
	t.Parallel()
	u := newUpgradeEnv(t,
		stackVersion{product: "e2e.wsc", version: "1.0.0", web: "shop/web:1.0.0", db: "shop/db:1.0.0"},
		stackVersion{product: "e2e.wsc", version: "2.0.0", web: "slow/web:2.0.0", db: "shop/db:1.0.0", webHealth: "1s"})
	depID, _ := u.deployV1(t, "wscut", "e2e.wsc")
	ws := dialWS(t, u.c)
	ws.subscribe("ws-cut", 0)
	status, resp := u.c.api("POST", u.path(depID)+"/upgrade", `{"sessionId":"ws-cut","variables":{"NEW_VAR":"n"}}`)
	if status != 202 {
		t.Fatalf("upgrade: %d %v", status, resp)
	}
	opID := resp["operationId"].(string)
	first := ws.expect("progress")
	got := map[float64]map[string]any{first["seq"].(float64): first}
	// The WebSocket drops, and the controller restarts: the agent's link is
	// cut while it pulls; its events wait in its outbox.
	ws.close()
	u.c.p.stop()
	time.Sleep(2 * time.Second)
	u.c.start()
	u.c.waitStatus(u.env, "online", 30*time.Second)
	var last float64
	for s := range got {
		last = max(last, s)
	}
	again := dialWS(t, u.c)
	again.subscribe("ws-cut", int64(last))
	for _, ev := range again.events(opID, 90*time.Second) {
		s := ev["seq"].(float64)
		if _, dup := got[s]; dup {
			t.Errorf("seq %v delivered twice", s)
		}
		got[s] = ev
	}
	for i := 1; i <= len(got); i++ {
		if got[float64(i)] == nil {
			t.Fatalf("seq %d missing; have %d events", i, len(got))
		}
	}
	// Stored once per (operation, opSeq), even though the agent re-sent.
	_, evs := u.c.api("GET", u.path(depID)+"/events", "")
	seen := map[float64]bool{}
	for _, e := range evs["events"].([]any) {
		ev := e.(map[string]any)
		if seen[ev["opSeq"].(float64)] {
			t.Errorf("opSeq %v stored twice", ev["opSeq"])
		}
		seen[ev["opSeq"].(float64)] = true
	}
	if final := got[float64(len(got))]; final["type"] != "completed" {
		t.Errorf("last event %v, want completed", final)
	}
}

func TestWebSocketRefusals(t *testing.T) {
	t.Parallel()
	c := newController(t)
	_, resp, err := websocket.DefaultDialer.Dial("ws://"+c.httpAddr+"/api/ws", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: err %v, response %v; want 401 before the upgrade", err, resp)
	}
	_, resp, err = websocket.DefaultDialer.Dial("ws://"+c.httpAddr+"/api/ws?access_token=wrong-token-wrong-token", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad token: err %v, response %v; want 401", err, resp)
	}

	ws := dialWS(t, c)
	ws.conn.WriteMessage(websocket.TextMessage, []byte("{not json"))
	if m := ws.expect("error"); !strings.Contains(fmt.Sprint(m["message"]), "not valid JSON") {
		t.Errorf("malformed: %v", m)
	}
	ws.send(map[string]any{"type": "subscribe"})
	if m := ws.expect("error"); !strings.Contains(fmt.Sprint(m["message"]), "sessionId or an environmentId") {
		t.Errorf("empty subscribe: %v", m)
	}
	ws.send(map[string]any{"type": "subscribe", "environmentId": "nope"})
	ws.expect("error")
	ws.send(map[string]any{"type": "dance"})
	ws.expect("error")
	ws.send(map[string]any{"type": "subscribe", "sessionId": "a", "environmentId": "b"})
	ws.expect("error")
	select {
	case <-ws.done:
	case <-time.After(5 * time.Second):
		t.Error("connection still open after five bad messages")
	}

	big := dialWS(t, c)
	big.conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe","sessionId":"`+strings.Repeat("x", 10000)+`"}`))
	if m := big.expect("error"); !strings.Contains(fmt.Sprint(m["message"]), "too large") {
		t.Errorf("oversized: %v", m)
	}
	huge := dialWS(t, c)
	huge.conn.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 100<<10)))
	select {
	case <-huge.done:
	case <-time.After(5 * time.Second):
		t.Error("a 100 KiB message did not close the connection")
	}

	ok := dialWS(t, c)
	ok.send(map[string]any{"type": "ping"})
	ok.expect("pong")
}
