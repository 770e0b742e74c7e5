package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rsgo/rsgo/deploy/demo"
)

const benchServices = 5

func deployMain(args []string) error {
	fs := flag.NewFlagSet("deploy", flag.ExitOnError)
	controllerBin := fs.String("controller-bin", "../bin/rsgo-controller", "rsgo-controller binary")
	agentBin := fs.String("agent-bin", "../bin/rsgo-agent", "rsgo-agent binary")
	compose := fs.String("compose", "docker-compose", "Compose command to compare with (\"docker compose\" works too)")
	runs := fs.Int("runs", 5, "runs of each tool, alternating")
	fs.Parse(args)

	dir, err := os.MkdirTemp("", "rsgo-bench-deploy-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Printf("rsgo-bench deploy  %s  %d services, images present, %d runs each, alternating\n\n", time.Now().UTC().Format(time.RFC3339), benchServices, *runs)
	if err := loadBenchImages(dir); err != nil {
		return err
	}
	catalogDir := filepath.Join(dir, "catalog")
	os.MkdirAll(catalogDir, 0o755)
	rsgoFile, composeFile := benchFiles()
	if err := os.WriteFile(filepath.Join(catalogDir, "bench.yaml"), []byte(rsgoFile), 0o644); err != nil {
		return err
	}
	composePath := filepath.Join(dir, "docker-compose.yml")
	if err := os.WriteFile(composePath, []byte(composeFile), 0o644); err != nil {
		return err
	}

	ctl := &controllerProc{bin: *controllerBin, dataDir: filepath.Join(dir, "controller"), httpAddr: freeAddr(), agentAddr: freeAddr(),
		extra: []string{"--catalog", "bench=" + catalogDir}}
	if err := ctl.start(); err != nil {
		return err
	}
	defer ctl.kill()
	agent, err := startRealAgent(ctl, *agentBin, filepath.Join(dir, "agent"))
	if err != nil {
		return err
	}
	defer stopProcess(agent)
	time.Sleep(3 * time.Second)
	idle := rssKiB(agent.Process.Pid)

	composeCmd := func(args ...string) error { return runCompose(*compose, "rsgobenchc", composePath, args...) }
	defer composeCmd("down", "--remove-orphans")

	var rsgoTimes, composeTimes []time.Duration
	var peak atomic.Int64
	for i := range *runs {
		// rsgo: deploy and wait until every service runs and is verified.
		stop := sampleRSS(agent.Process.Pid, &peak)
		start := time.Now()
		var res struct {
			Success      bool   `json:"success"`
			DeploymentID string `json:"deploymentId"`
			Error        any    `json:"error"`
		}
		if err := ctl.do("POST", "/api/environments/bench/deployments?wait=true",
			`{"name":"rsgobench","stackId":"bench:bench.five:main"}`, &res); err != nil || !res.Success {
			stop()
			return fmt.Errorf("rsgo deploy run %d: %v %v", i, err, res.Error)
		}
		rsgoTimes = append(rsgoTimes, time.Since(start))
		stop()
		var removed struct {
			Success bool `json:"success"`
		}
		if err := ctl.do("DELETE", "/api/environments/bench/deployments/"+res.DeploymentID+"?wait=true", "", &removed); err != nil || !removed.Success {
			return fmt.Errorf("rsgo remove run %d: %v", i, err)
		}

		start = time.Now()
		if err := composeCmd("up", "-d"); err != nil {
			return err
		}
		composeTimes = append(composeTimes, time.Since(start))
		if err := composeCmd("down"); err != nil {
			return err
		}
	}
	mr, mc := median(rsgoTimes), median(composeTimes)
	fmt.Printf("rsgo deploy (?wait=true, verified running): median %v  runs %v\n", mr.Round(time.Millisecond), roundAll(rsgoTimes))
	fmt.Printf("%s up -d:                     median %v  runs %v\n", *compose, mc.Round(time.Millisecond), roundAll(composeTimes))
	fmt.Printf("ratio rsgo/compose: %.2f\n", mr.Seconds()/mc.Seconds())
	fmt.Printf("agent RSS: idle %.1f MiB, peak during deploys %.1f MiB\n", float64(idle)/1024, float64(peak.Load())/1024)
	return nil
}

// loadBenchImages makes benchServices distinct images and loads them into
// the engine, so neither tool pulls.
func loadBenchImages(dir string) error {
	var images []demo.Named
	for i := 1; i <= benchServices; i++ {
		images = append(images, demo.Named{Ref: fmt.Sprintf("rsgo-bench/svc%d:1.0.0", i), Variant: demo.Variant{Version: "1.0.0", Marker: fmt.Sprint(i)}})
	}
	return demo.LoadIntoDocker(dir, "docker", images)
}

// benchFiles returns the same stack for rsgo and for Compose.
func benchFiles() (rsgoFile, composeFile string) {
	var services strings.Builder
	services.WriteString("services:\n")
	for i := 1; i <= benchServices; i++ {
		fmt.Fprintf(&services, "  s%d:\n    image: rsgo-bench/svc%d:1.0.0\n    environment: { APP_TITLE: \"s%d\" }\n", i, i, i)
	}
	rsgoFile = "x-rsgo:\n  product: bench.five\n  version: 1.0.0\n" + strings.ReplaceAll(services.String(), "    environment:", "    pull_policy: missing\n    environment:")
	composeFile = "version: \"3.7\"\n" + services.String()
	return rsgoFile, composeFile
}

// sampleRSS records the peak RSS of pid until the returned stop is called.
func sampleRSS(pid int, peak *atomic.Int64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			if v := rssKiB(pid); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func roundAll(d []time.Duration) []time.Duration {
	out := make([]time.Duration, len(d))
	for i, v := range d {
		out[i] = v.Round(time.Millisecond)
	}
	return out
}

func (c *controllerProc) do(method, path, body string, out any) error {
	req, _ := http.NewRequest(method, "http://"+c.httpAddr+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}
