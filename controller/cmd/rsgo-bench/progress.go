package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/rsgo/rsgo/shared/protocol"
)

// progressMain measures event latency from a (simulated) agent's send to
// WebSocket clients' receipt, with many clients on one environment, and
// again with one client that never reads.
func progressMain(args []string) error {
	fs := flag.NewFlagSet("progress", flag.ExitOnError)
	controllerBin := fs.String("controller-bin", "../bin/rsgo-controller", "rsgo-controller binary")
	clients := fs.Int("clients", 1000, "WebSocket clients subscribed to the environment")
	rate := fs.Int("rate", 200, "events per second the agent sends")
	duration := fs.Duration("duration", 10*time.Second, "how long each run sends")
	fs.DurationVar(&agentGather, "gather", agentGather, "how long the simulated agent lets events gather before it sends")
	fs.Parse(args)

	dir, err := os.MkdirTemp("", "rsgo-bench-progress-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Printf("rsgo-bench progress  %s  %d clients on one environment, %d events/s for %v per run\n\n",
		time.Now().UTC().Format(time.RFC3339), *clients, *rate, *duration)
	certs, pool, err := prepare(dir, 1)
	if err != nil {
		return err
	}
	ctl := &controllerProc{bin: *controllerBin, dataDir: dir, httpAddr: freeAddr(), agentAddr: freeAddr()}
	if err := ctl.start(); err != nil {
		return err
	}
	defer ctl.kill()
	fleet := newSimFleet(ctl.agentAddr, certs, pool)
	defer fleet.stop()
	sess := make(chan *simSession, 1)
	fleet.onConnect = func(s *simSession) { sess <- s }
	fleet.connectAll(1)
	agent := <-sess

	// Measuring clients allocate per message; keep their collector from
	// pausing often, so the figures are the controller's.
	debug.SetGCPercent(400)
	if _, err := progressRun(ctl, agent, *clients, *rate, 3*time.Second, false); err != nil { // warm-up, discarded
		return err
	}
	var results []runResult
	for _, stalled := range []bool{false, true} {
		r, err := progressRun(ctl, agent, *clients, *rate, *duration, stalled)
		if err != nil {
			return err
		}
		results = append(results, r)
		label := "all clients read"
		if stalled {
			label = "one client never reads"
		}
		fmt.Printf("%-24s latency p50 %6.2f ms  p99 %6.2f ms  max %7.2f ms | %d deliveries (%d expected) | controller CPU %3.0f%% of one core, RSS %.1f MiB\n",
			label+":", r.p50, r.p99, r.max, r.count, r.expected, r.cpu, r.rssMiB)
	}
	fmt.Printf("stalled client changes p99 by %+.1f%%\n", (results[1].p99/results[0].p99-1)*100)
	return nil
}

// agentGather is the agent's burst window (runner.Stream); -gather
// overrides it to show the latency/CPU trade-off.
var agentGather = 5 * time.Millisecond

type runResult struct {
	p50, p99, max, cpu, rssMiB float64
	count, expected            int
}

func progressRun(ctl *controllerProc, agent *simSession, clients, rate int, duration time.Duration, stalled bool) (runResult, error) {
	url := "ws://" + ctl.httpAddr + "/api/ws?access_token=" + adminToken
	var mu sync.Mutex
	var lat []float64
	var wg sync.WaitGroup
	conns := make([]*websocket.Conn, 0, clients+1)
	var subscribed sync.WaitGroup
	for i := range clients {
		conn, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			return runResult{}, fmt.Errorf("client %d: %w", i, err)
		}
		conns = append(conns, conn)
		conn.WriteJSON(map[string]any{"type": "subscribe", "environmentId": "env-bench-00000"})
		subscribed.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]float64, 0, 4096)
			acked := false
			for {
				_, raw, err := conn.ReadMessage()
				if err != nil {
					break
				}
				now := time.Now()
				if !acked && bytes.Contains(raw, []byte(`"subscribed"`)) {
					acked = true
					subscribed.Done()
					continue
				}
				for _, line := range bytes.Split(raw, []byte{'\n'}) {
					if t, ok := sentAt(line); ok {
						local = append(local, float64(now.Sub(t).Microseconds())/1000)
					}
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	if stalled {
		// Subscribes, then never reads again.
		conn, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			return runResult{}, err
		}
		conns = append(conns, conn)
		conn.WriteJSON(map[string]any{"type": "subscribe", "environmentId": "env-bench-00000"})
	}
	subscribed.Wait()

	cpu0, t0 := cpuSeconds(ctl.cmd.Process.Pid), time.Now()
	sent := agent.sendEvents(rate, duration)
	time.Sleep(2 * time.Second) // let deliveries finish
	cpu := (cpuSeconds(ctl.cmd.Process.Pid) - cpu0) / time.Since(t0).Seconds() * 100
	rss := float64(ctl.rssKiB()) / 1024
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	if len(lat) == 0 {
		return runResult{}, fmt.Errorf("no event reached a client")
	}
	return runResult{p50: pct(lat, 50), p99: pct(lat, 99), max: slices.Max(lat), cpu: cpu, rssMiB: rss,
		count: len(lat), expected: sent * clients}, nil
}

// sentAt finds the event's time field without decoding the whole message.
func sentAt(raw []byte) (time.Time, bool) {
	i := bytes.Index(raw, []byte(`"time":"`))
	if i < 0 || !bytes.Contains(raw, []byte(`"type":"progress"`)) {
		return time.Time{}, false
	}
	rest := raw[i+8:]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(rest[:j]))
	return t, err == nil
}

func cpuSeconds(pid int) float64 {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100 // clock ticks; 100 per second on Linux
}

// sendEvents models the agent: events are stamped and queued at rate per
// second; the sender, like the agent's runner, lets a burst gather for
// 5 ms after the first queued event, sends everything queued in one
// request and waits for the answer. It returns how many it sent.
func (s *simSession) sendEvents(rate int, d time.Duration) int {
	gather := agentGather
	const tick = 10 * time.Millisecond
	perTick := max(rate*int(tick)/int(time.Second), 1)
	var mu sync.Mutex
	var queue []protocol.Event
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(tick)
		defer t.Stop()
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			<-t.C
			mu.Lock()
			for range perTick {
				s.opSeq++
				queue = append(queue, protocol.Event{Type: protocol.EventProgress, SessionID: "bench", OperationID: "op-bench", OpSeq: s.opSeq,
					Phase: "PullingImages", Message: "Pulling web", Percent: 42, TotalServices: 3, Time: time.Now().UTC()})
			}
			mu.Unlock()
		}
		close(stop)
	}()
	n := 0
	for {
		mu.Lock()
		waiting := len(queue)
		mu.Unlock()
		if waiting > 0 {
			time.Sleep(gather)
		}
		mu.Lock()
		batch := queue
		queue = nil
		mu.Unlock()
		if len(batch) == 0 {
			select {
			case <-stop:
				mu.Lock()
				left := len(queue)
				mu.Unlock()
				if left == 0 {
					return n
				}
			case <-time.After(2 * time.Millisecond):
			}
			continue
		}
		stream, err := s.mux.OpenStream()
		if err != nil {
			return n
		}
		body, _ := json.Marshal(protocol.OpEvents{Events: batch})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		protocol.Invoke(ctx, stream, protocol.Request{Type: protocol.TypeOpEvents, Body: body}, nil)
		cancel()
		n += len(batch)
	}
}
