package main

import (
	"context"
	"fmt"
	"io"

	"github.com/vantage-probe/vantage/agent"
	"github.com/vantage-probe/vantage/demo"
	"github.com/vantage-probe/vantage/exporter/page"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", "Usage: vantage demo [-listen ADDR]\n\n"+
		"Starts a target farm on 127.0.0.1 (HTTP, HTTPS with a soon-expiring certificate, DNS, TCP)\n"+
		"and six agents in three regions in this process, then plays a fault script on a loop:\n"+
		"an outage every region sees (an incident, with its time-to-detect), a failure only one\n"+
		"region sees (suppressed), a flapping target, an agent crash and restart. Needs no network.\n"+
		"Ctrl-C stops it. With -state-dir the agents keep their state there: run the demo again with\n"+
		"the same directory (a restarted fleet) and the page still shows the earlier incidents and SLO\n"+
		"figures; vantage report -state-dir DIR/eu-west-1 reads it after the demo stopped.", stderr)
	listen := fs.String("listen", "127.0.0.1:9115", "HTTP address of the first agent (status page, metrics)")
	loops := fs.Int("loops", 0, "run the fault script this many times, then exit (0: until Ctrl-C)")
	logFormat := fs.String("log-format", "text", "agent log format: text or json")
	logLevel := fs.String("log-level", "error", "agent log level (the narration is the demo's main output)")
	stateDir := fs.String("state-dir", "", "keep the agents' state in DIR/<node>, kept at exit (default: a temporary directory, removed)")
	if c := parse(fs, args); c >= 0 {
		return c
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return exitUsage
	}
	err = demo.Run(ctx, demo.Options{Listen: *listen, Out: stdout, Logger: log, Version: version, Loops: *loops,
		StateDir: *stateDir,
		Page:     func(a *agent.Agent) { a.Server().Page = page.New(a, page.Options{}) }})
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return exitFail
	}
	return exitOK
}
