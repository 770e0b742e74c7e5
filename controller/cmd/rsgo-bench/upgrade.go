package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rsgo/rsgo/deploy/demo"
)

const upgradeServices = 3

// upgradeMain measures a 3-service upgrade with rsgo and with Compose on
// the same engine: wall time and each service's downtime, probed every
// 50 ms; and rsgo's rollback after a failed upgrade against its upgrade.
func upgradeMain(args []string) error {
	fs := flag.NewFlagSet("upgrade", flag.ExitOnError)
	controllerBin := fs.String("controller-bin", "../bin/rsgo-controller", "rsgo-controller binary")
	agentBin := fs.String("agent-bin", "../bin/rsgo-agent", "rsgo-agent binary")
	compose := fs.String("compose", "docker-compose", "Compose command to compare with")
	runs := fs.Int("runs", 3, "runs of each measurement")
	fs.Parse(args)

	dir, err := os.MkdirTemp("", "rsgo-bench-upgrade-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Printf("rsgo-bench upgrade  %s  %d services, images present, %d runs, downtime probed every 50 ms\n\n", time.Now().UTC().Format(time.RFC3339), upgradeServices, *runs)
	if err := loadUpgradeImages(dir); err != nil {
		return err
	}
	ports := make([]string, upgradeServices)
	for i := range ports {
		ports[i] = strings.TrimPrefix(freeAddr(), "127.0.0.1:")
	}
	catalogDir := filepath.Join(dir, "catalog")
	os.MkdirAll(catalogDir, 0o755)
	for _, v := range []string{"1.0.0", "2.0.0", "3.0.0"} {
		if err := os.WriteFile(filepath.Join(catalogDir, v+".yaml"), []byte(upgradeFile(v, ports, true)), 0o644); err != nil {
			return err
		}
	}
	ctl := &controllerProc{bin: *controllerBin, dataDir: filepath.Join(dir, "controller"), httpAddr: freeAddr(), agentAddr: freeAddr(),
		extra: []string{"--catalog", "bench=" + catalogDir, "--health-timeout", "10s"}}
	if err := ctl.start(); err != nil {
		return err
	}
	defer ctl.kill()
	agent, err := startRealAgent(ctl, *agentBin, filepath.Join(dir, "agent"))
	if err != nil {
		return err
	}
	defer stopProcess(agent)

	type result struct {
		wall     time.Duration
		downtime []time.Duration
	}
	var rsgoUp, composeUp []result
	var rollbacks, failedUpgrades []time.Duration
	base := "/api/environments/bench/deployments"
	for run := range *runs {
		var dep struct {
			Success      bool   `json:"success"`
			DeploymentID string `json:"deploymentId"`
			Error        any    `json:"error"`
		}
		if err := ctl.do("POST", base+"?wait=true", `{"name":"rsgoup","stackId":"bench:bench.three:main@1.0.0"}`, &dep); err != nil || !dep.Success {
			return fmt.Errorf("deploy v1: %v %v", err, dep.Error)
		}
		p := startProbes(ports)
		start := time.Now()
		var up struct {
			Success bool `json:"success"`
			Error   any  `json:"error"`
		}
		if err := ctl.do("POST", base+"/rsgoup/upgrade?wait=true", `{"stackId":"bench:bench.three:main@2.0.0"}`, &up); err != nil || !up.Success {
			p.stop()
			return fmt.Errorf("rsgo upgrade run %d: %v %v", run, err, up.Error)
		}
		wall := time.Since(start)
		rsgoUp = append(rsgoUp, result{wall, p.stop()})

		// A failed upgrade to 3.0.0 (its s1 exits at once), then rollback.
		start = time.Now()
		ctl.do("POST", base+"/rsgoup/upgrade?wait=true", `{"stackId":"bench:bench.three:main@3.0.0"}`, &up)
		failedUpgrades = append(failedUpgrades, time.Since(start))
		if up.Success {
			return fmt.Errorf("upgrade to the failing version succeeded")
		}
		start = time.Now()
		var rb struct {
			Success bool `json:"success"`
			Error   any  `json:"error"`
		}
		if err := ctl.do("POST", base+"/rsgoup/rollback?wait=true", "", &rb); err != nil || !rb.Success {
			return fmt.Errorf("rollback run %d: %v %v", run, err, rb.Error)
		}
		rollbacks = append(rollbacks, time.Since(start))
		var removed struct{}
		ctl.do("DELETE", base+"/rsgoup?wait=true", "", &removed)

		// Compose: up v1, then up with the changed file.
		v1, v2 := filepath.Join(dir, "c1.yml"), filepath.Join(dir, "c2.yml")
		os.WriteFile(v1, []byte(upgradeFile("1.0.0", ports, false)), 0o644)
		os.WriteFile(v2, []byte(upgradeFile("2.0.0", ports, false)), 0o644)
		if err := runCompose(*compose, "rsgobenchup", v1, "up", "-d"); err != nil {
			return err
		}
		waitServing(ports, "1.0.0")
		p = startProbes(ports)
		start = time.Now()
		if err := runCompose(*compose, "rsgobenchup", v2, "up", "-d"); err != nil {
			p.stop()
			return err
		}
		wall = time.Since(start)
		composeUp = append(composeUp, result{wall, p.stop()})
		if err := runCompose(*compose, "rsgobenchup", v2, "down"); err != nil {
			return err
		}
	}
	walls := func(rs []result) []time.Duration {
		var out []time.Duration
		for _, r := range rs {
			out = append(out, r.wall)
		}
		return out
	}
	downs := func(rs []result, svc int) []time.Duration {
		var out []time.Duration
		for _, r := range rs {
			out = append(out, r.downtime[svc])
		}
		return out
	}
	ru, cu := median(walls(rsgoUp)), median(walls(composeUp))
	fmt.Printf("upgrade wall time: rsgo %v (runs %v) | %s %v (runs %v) | ratio %.2f\n", ru.Round(time.Millisecond), roundAll(walls(rsgoUp)),
		*compose, cu.Round(time.Millisecond), roundAll(walls(composeUp)), ru.Seconds()/cu.Seconds())
	for i := range upgradeServices {
		rd, cd := median(downs(rsgoUp, i)), median(downs(composeUp, i))
		fmt.Printf("downtime s%d: rsgo %v | compose %v | ratio %.2f\n", i+1, rd.Round(time.Millisecond), cd.Round(time.Millisecond), rd.Seconds()/max(cd.Seconds(), 0.001))
	}
	rb := median(rollbacks)
	fmt.Printf("rollback wall time %v (runs %v) vs upgrade %v: ratio %.2f; failed upgrade to 3.0.0 took %v\n", rb.Round(time.Millisecond),
		roundAll(rollbacks), ru.Round(time.Millisecond), rb.Seconds()/ru.Seconds(), median(failedUpgrades).Round(time.Millisecond))
	return nil
}

// runCompose runs the Compose command (possibly "docker compose") on one
// file under one project name.
func runCompose(compose, project, file string, args ...string) error {
	parts := strings.Fields(compose)
	full := append(slices.Clone(parts[1:]), append([]string{"-p", project, "-f", file}, args...)...)
	out, err := exec.Command(parts[0], full...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %v: %v\n%s", compose, args, err, out)
	}
	return nil
}

func loadUpgradeImages(dir string) error {
	return demo.LoadIntoDocker(dir, "docker", []demo.Named{
		{Ref: "rsgo-bench/up:1.0.0", Variant: demo.Variant{Version: "1.0.0"}},
		{Ref: "rsgo-bench/up:2.0.0", Variant: demo.Variant{Version: "2.0.0"}},
		{Ref: "rsgo-bench/up:crash", Variant: demo.Variant{Version: "3.0.0", Mode: demo.ModeCrash}},
	})
}

// upgradeFile renders the 3-service stack at a version; 3.0.0's first
// service crashes. With rsgo it carries the x-rsgo block.
func upgradeFile(version string, ports []string, rsgo bool) string {
	var b strings.Builder
	if rsgo {
		fmt.Fprintf(&b, "x-rsgo:\n  product: bench.three\n  version: %s\n", version)
	} else {
		b.WriteString("version: \"3.7\"\n")
	}
	b.WriteString("services:\n")
	for i := range upgradeServices {
		tag := version
		if version == "3.0.0" {
			tag = "2.0.0"
			if i == 0 {
				tag = "crash"
			}
		}
		fmt.Fprintf(&b, "  s%d:\n    image: rsgo-bench/up:%s\n    ports: [\"127.0.0.1:%s:8080\"]\n", i+1, tag, ports[i])
		if rsgo {
			b.WriteString("    pull_policy: missing\n")
		}
	}
	return b.String()
}

// probes poll every service every 50 ms and note, per service, the last
// answer from the old version and the first from a new one.
type probes struct {
	done    chan struct{}
	wg      sync.WaitGroup
	lastOld []time.Time
	firstNw []time.Time
}

func startProbes(ports []string) *probes {
	p := &probes{done: make(chan struct{}), lastOld: make([]time.Time, len(ports)), firstNw: make([]time.Time, len(ports))}
	client := &http.Client{Timeout: 200 * time.Millisecond}
	for i, port := range ports {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			t := time.NewTicker(50 * time.Millisecond)
			defer t.Stop()
			for {
				if resp, err := client.Get("http://127.0.0.1:" + port + "/"); err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					now := time.Now()
					switch {
					case strings.Contains(string(body), "version=1.0.0\n"):
						p.lastOld[i] = now
					case p.firstNw[i].IsZero():
						p.firstNw[i] = now
					}
				}
				select {
				case <-p.done:
					return
				case <-t.C:
				}
			}
		}()
	}
	return p
}

// stop waits a moment for the new versions to answer, then returns each
// service's downtime.
func (p *probes) stop() []time.Duration {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && slices.ContainsFunc(p.firstNw, time.Time.IsZero) {
		time.Sleep(50 * time.Millisecond)
	}
	close(p.done)
	p.wg.Wait()
	out := make([]time.Duration, len(p.lastOld))
	for i := range out {
		if !p.firstNw[i].IsZero() && !p.lastOld[i].IsZero() {
			out[i] = p.firstNw[i].Sub(p.lastOld[i])
		}
	}
	return out
}

func waitServing(ports []string, version string) {
	deadline := time.Now().Add(20 * time.Second)
	for _, port := range ports {
		for time.Now().Before(deadline) {
			resp, err := http.Get("http://127.0.0.1:" + port + "/")
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if strings.Contains(string(body), "version="+version) {
					break
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
