// Package cli is rsgoctl: deploy, upgrade, roll back and watch from a
// terminal or a CI pipeline, with live progress from the controller's
// WebSocket and an exit code that tells success from failure.
package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/rsgo/rsgo/shared/envflag"
	"github.com/rsgo/rsgo/shared/protocol"
)

// Exit codes.
const (
	ExitOK     = 0
	ExitFailed = 1 // the operation ran and failed
	ExitUsage  = 2 // bad flags, API refusal, unreachable controller
)

const usage = `Usage: rsgoctl COMMAND [flags]

Commands:
  deploy    --env ENV --name NAME --stack STACK_ID [--var K=V ...]
  upgrade   --env ENV --deployment DEP [--stack STACK_ID] [--var K=V ...] [--auto-rollback]
  rollback  --env ENV --deployment DEP
  watch     --session SESSION_ID | --env ENV --deployment DEP

Common flags: --url (controller HTTP address, default http://127.0.0.1:8080),
--admin-token, --no-wait (return after the controller accepted). Flags can be
set from the environment: RSGO_URL, RSGO_ADMIN_TOKEN.

Exit status: 0 the operation completed, 1 it failed, 2 it could not be started.
`

type vars map[string]string

func (v vars) String() string { return "" }
func (v vars) Set(s string) error {
	k, val, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("--var %q: want KEY=VALUE", s)
	}
	v[k] = val
	return nil
}

// Run executes one rsgoctl command and returns the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	cmd := args[0]
	fs := flag.NewFlagSet("rsgoctl "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &client{vars: vars{}}
	fs.StringVar(&c.base, "url", "http://127.0.0.1:8080", "controller HTTP address")
	fs.StringVar(&c.token, "admin-token", "", "operator bearer token")
	fs.StringVar(&c.env, "env", "", "environment id or name")
	fs.StringVar(&c.name, "name", "", "deployment name (deploy)")
	fs.StringVar(&c.dep, "deployment", "", "deployment id or name")
	fs.StringVar(&c.stack, "stack", "", "stack id, source:product:stack[@version]")
	fs.StringVar(&c.session, "session", "", "session id to use or to watch")
	fs.Var(c.vars, "var", "variable KEY=VALUE; repeatable")
	fs.BoolVar(&c.autoRollback, "auto-rollback", false, "roll back by itself when the upgrade fails")
	noWait := fs.Bool("no-wait", false, "return once the controller accepted the operation")
	if err := fs.Parse(args[1:]); err != nil {
		return ExitUsage
	}
	if err := envflag.Apply(fs, os.LookupEnv); err != nil {
		fmt.Fprintln(stderr, "rsgoctl:", err)
		return ExitUsage
	}
	c.base = strings.TrimSuffix(c.base, "/")
	c.out, c.err = stdout, stderr
	c.tty = isTerminal(stdout)
	if c.session == "" && cmd != "watch" {
		b := make([]byte, 8)
		rand.Read(b)
		c.session = "ctl-" + hex.EncodeToString(b)
	}
	var err error
	switch cmd {
	case "deploy":
		err = c.operation(ctx, "POST", "/api/environments/"+url.PathEscape(c.env)+"/deployments",
			map[string]any{"name": c.name, "stackId": c.stack, "variables": c.vars, "sessionId": c.session}, !*noWait, need(c.env, "--env", c.name, "--name", c.stack, "--stack"))
	case "upgrade":
		err = c.operation(ctx, "POST", c.depPath()+"/upgrade",
			map[string]any{"stackId": c.stack, "variables": c.vars, "sessionId": c.session, "autoRollback": c.autoRollback}, !*noWait, need(c.env, "--env", c.dep, "--deployment"))
	case "rollback":
		err = c.operation(ctx, "POST", c.depPath()+"/rollback", map[string]any{"sessionId": c.session}, !*noWait, need(c.env, "--env", c.dep, "--deployment"))
	case "watch":
		err = c.watch(ctx)
	default:
		fmt.Fprint(stderr, usage)
		err = usageError{fmt.Errorf("unknown command %q", cmd)}
	}
	var failed operationFailed
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &failed):
		return ExitFailed
	}
	fmt.Fprintln(stderr, "rsgoctl:", err)
	return ExitUsage
}

type usageError struct{ error }

// operationFailed means the operation ran and ended failed.
type operationFailed struct{ msg string }

func (e operationFailed) Error() string { return e.msg }

func need(pairs ...string) error {
	var missing []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i] == "" {
			missing = append(missing, pairs[i+1])
		}
	}
	if len(missing) > 0 {
		return usageError{fmt.Errorf("missing %s", strings.Join(missing, ", "))}
	}
	return nil
}

type client struct {
	base, token, env, name, dep, stack, session string
	vars                                        vars
	autoRollback, tty                           bool
	out, err                                    io.Writer
}

func (c *client) depPath() string {
	return "/api/environments/" + url.PathEscape(c.env) + "/deployments/" + url.PathEscape(c.dep)
}

// operation subscribes to the session first (so nothing is missed), then
// starts the operation and follows it to its end.
func (c *client) operation(ctx context.Context, method, path string, body map[string]any, wait bool, bad error) error {
	if bad != nil {
		return bad
	}
	var w *watcher
	if wait {
		var err error
		if w, err = c.dialWatcher(ctx, 0); err != nil {
			return err
		}
		defer w.close()
	}
	var resp map[string]any
	if err := c.call(ctx, method, path, body, &resp); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "accepted: operation %v, deployment %v, session %v\n", resp["operationId"], resp["deploymentId"], resp["sessionId"])
	if !wait {
		return nil
	}
	return c.follow(ctx, w, fmt.Sprint(resp["operationId"]))
}

func (c *client) watch(ctx context.Context) error {
	op := ""
	if c.session == "" {
		if err := need(c.env, "--env or --session", c.dep, "--deployment"); err != nil {
			return err
		}
		var resp struct {
			Deployment struct {
				Operation *struct {
					ID        string `json:"id"`
					SessionID string `json:"sessionId"`
				} `json:"operation"`
				LastOperation *struct {
					ID        string `json:"id"`
					SessionID string `json:"sessionId"`
				} `json:"lastOperation"`
			} `json:"deployment"`
		}
		if err := c.call(ctx, "GET", c.depPath(), nil, &resp); err != nil {
			return err
		}
		cur := resp.Deployment.Operation
		if cur == nil {
			cur = resp.Deployment.LastOperation
		}
		if cur == nil {
			return usageError{errors.New("the deployment has no operation to watch")}
		}
		c.session, op = cur.SessionID, cur.ID
	}
	w, err := c.dialWatcher(ctx, 0)
	if err != nil {
		return err
	}
	defer w.close()
	return c.follow(ctx, w, op)
}

// call sends one API request and decodes the answer; an API error becomes
// an error with its message (and fields).
func (c *client) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("controller unreachable: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
			return fmt.Errorf("%s (HTTP %d, %s)", e.Error.Message, resp.StatusCode, e.Error.Code)
		}
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	return json.Unmarshal(raw, out)
}

// follow renders progress until the operation's final event. A dropped
// WebSocket is redialled with since, so no event is lost.
func (c *client) follow(ctx context.Context, w *watcher, op string) error {
	var last int64
	for {
		ev, err := w.next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fmt.Fprintf(c.err, "\nconnection lost (%v); reconnecting\n", err)
			w.close()
			for attempt := 1; ; attempt++ {
				time.Sleep(min(time.Duration(attempt)*time.Second, 5*time.Second))
				if w, err = c.dialWatcher(ctx, last); err == nil {
					break
				}
				if attempt == 60 {
					return fmt.Errorf("could not reconnect: %w", err)
				}
			}
			continue
		}
		last = max(last, ev.Seq)
		if op != "" && ev.OperationID != op {
			continue
		}
		switch ev.Type {
		case protocol.EventProgress:
			c.render(ev)
		case protocol.EventCompleted:
			c.render(ev)
			fmt.Fprintf(c.out, "\n%s completed\n", ev.Operation)
			return nil
		case protocol.EventFailed:
			c.render(ev)
			msg := fmt.Sprintf("%s failed in %s: %s", ev.Operation, ev.Phase, ev.Error)
			if ev.CanRollback != nil && *ev.CanRollback {
				msg += " (rollback available: rsgoctl rollback --env " + c.env + " --deployment " + ev.DeploymentID + ")"
			}
			fmt.Fprintf(c.out, "\n%s\n", msg)
			return operationFailed{msg}
		}
	}
}

// render draws a progress bar on a terminal and one line per change
// elsewhere (CI logs).
func (c *client) render(ev protocol.Event) {
	const width = 30
	filled := ev.Percent * width / 100
	bar := strings.Repeat("#", filled) + strings.Repeat("-", width-filled)
	services := ""
	if ev.TotalServices > 0 {
		services = fmt.Sprintf(" services %d/%d", ev.CompletedServices, ev.TotalServices)
	}
	line := fmt.Sprintf("[%s] %3d%% %-18s%s %s", bar, ev.Percent, ev.Phase, services, ev.Message)
	if c.tty {
		fmt.Fprintf(c.out, "\r\033[K%s", line)
		return
	}
	fmt.Fprintln(c.out, line)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// watcher is a WebSocket subscribed to one session.
type watcher struct {
	conn *websocket.Conn
	// lines holds the rest of a frame that carried several events.
	lines [][]byte
}

func (c *client) dialWatcher(ctx context.Context, since int64) (*watcher, error) {
	u, err := url.Parse(c.base)
	if err != nil {
		return nil, usageError{fmt.Errorf("--url: %w", err)}
	}
	u.Scheme = map[string]string{"https": "wss"}[u.Scheme]
	if u.Scheme == "" {
		u.Scheme = "ws"
	}
	u.Path = "/api/ws"
	u.RawQuery = url.Values{"access_token": {c.token}}.Encode()
	conn, resp, err := websocket.DefaultDialer.DialContext(ctx, u.String(), nil)
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			return nil, errors.New("the controller refused the admin token (HTTP 401)")
		}
		return nil, fmt.Errorf("connect to %s: %w", u.Host, err)
	}
	if err := conn.WriteJSON(map[string]any{"type": "subscribe", "sessionId": c.session, "since": since}); err != nil {
		conn.Close()
		return nil, err
	}
	return &watcher{conn: conn}, nil
}

// next returns the next operation event, skipping heartbeats and acks.
func (w *watcher) next(ctx context.Context) (protocol.Event, error) {
	for {
		if len(w.lines) == 0 {
			w.conn.SetReadDeadline(time.Now().Add(45 * time.Second)) // heartbeats come every 10 s
			_, frame, err := w.conn.ReadMessage()
			if err != nil {
				return protocol.Event{}, err
			}
			w.lines = bytes.Split(frame, []byte{'\n'})
		}
		raw := w.lines[0]
		w.lines = w.lines[1:]
		var ev protocol.Event
		if json.Unmarshal(raw, &ev) != nil {
			continue
		}
		switch ev.Type {
		case protocol.EventProgress, protocol.EventCompleted, protocol.EventFailed:
			return ev, nil
		case "resync":
			return protocol.Event{}, errors.New("the controller asked to resync")
		case "error":
			return protocol.Event{}, fmt.Errorf("controller: %s", ev.Message)
		}
		if ctx.Err() != nil {
			return protocol.Event{}, ctx.Err()
		}
	}
}

func (w *watcher) close() { w.conn.Close() }
