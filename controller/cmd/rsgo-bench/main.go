// Command rsgo-bench measures rsgo on this machine and prints the figures,
// as ratios where there is something to compare with.
//
//	rsgo-bench link   [flags]  simulated agents: connect rate, controller
//	                           memory per agent, Ping round trips, reconnect
//	                           storm, idle agent memory
//	rsgo-bench deploy [flags]  a 5-service stack deployed by rsgo and by
//	                           docker-compose, alternating; agent memory
//	rsgo-bench upgrade [flags] a 3-service upgrade by rsgo and by Compose:
//	                           wall time, per-service downtime; rollback
//	rsgo-bench progress [flags] 1,000 WebSocket clients on one environment,
//	                           200 events/s: latency, controller CPU and RSS,
//	                           and the same with one client that never reads
//
// Both start the real binaries (make build first) as subprocesses.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: rsgo-bench link|deploy|upgrade|progress [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "link":
		err = linkMain(os.Args[2:])
	case "deploy":
		err = deployMain(os.Args[2:])
	case "upgrade":
		err = upgradeMain(os.Args[2:])
	case "progress":
		err = progressMain(os.Args[2:])
	default:
		err = fmt.Errorf("unknown benchmark %q (want link, deploy, upgrade or progress)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rsgo-bench:", err)
		os.Exit(1)
	}
}

func linkMain(args []string) error {
	fs := flag.NewFlagSet("link", flag.ExitOnError)
	var o options
	var sizes string
	fs.StringVar(&o.controllerBin, "controller-bin", "../bin/rsgo-controller", "rsgo-controller binary")
	fs.StringVar(&o.agentBin, "agent-bin", "../bin/rsgo-agent", "rsgo-agent binary (idle RSS); empty skips")
	fs.StringVar(&sizes, "agents", "1000,2000,10000", "comma-separated agent counts; the reconnect storm runs at the largest")
	fs.IntVar(&o.pingSessions, "ping-sessions", 1000, "sessions the Ping round trips are spread over")
	fs.IntVar(&o.pings, "pings", 5000, "Ping requests to time")
	fs.IntVar(&o.concurrency, "concurrency", 200, "agents connecting at once in the connect phase")
	fs.DurationVar(&o.settle, "settle-timeout", 120*time.Second, "give up waiting for agents after this")
	fs.Parse(args)
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return fmt.Errorf("-agents: %q is not a positive number", s)
		}
		o.sizes = append(o.sizes, n)
	}
	return run(o)
}
