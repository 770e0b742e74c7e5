// Command rsgo-linkbench measures the agent link at scale: it prepares a
// controller data dir with N enrolled environments, starts the real
// rsgo-controller binary, connects N simulated agents (each its own mutual
// TLS connection and yamux session), and reports connect rate, controller
// memory per agent, Ping round trips, a reconnect storm after a controller
// restart, and the idle memory of a real rsgo-agent.
//
//	go run ./cmd/rsgo-linkbench -controller-bin ../bin/rsgo-controller -agent-bin ../bin/rsgo-agent
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
	var o options
	var sizes string
	flag.StringVar(&o.controllerBin, "controller-bin", "../bin/rsgo-controller", "rsgo-controller binary")
	flag.StringVar(&o.agentBin, "agent-bin", "../bin/rsgo-agent", "rsgo-agent binary (idle RSS); empty skips")
	flag.StringVar(&sizes, "agents", "1000,2000,10000", "comma-separated agent counts; the reconnect storm runs at the largest")
	flag.IntVar(&o.pingSessions, "ping-sessions", 1000, "sessions the Ping round trips are spread over")
	flag.IntVar(&o.pings, "pings", 5000, "Ping requests to time")
	flag.IntVar(&o.concurrency, "concurrency", 200, "agents connecting at once in the connect phase")
	flag.DurationVar(&o.settle, "settle-timeout", 120*time.Second, "give up waiting for agents after this")
	flag.Parse()
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "-agents: %q is not a positive number\n", s)
			os.Exit(2)
		}
		o.sizes = append(o.sizes, n)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "rsgo-linkbench:", err)
		os.Exit(1)
	}
}
