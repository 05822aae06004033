// Command vantage runs Vantage agents and their tools. This file only
// parses flags and wires packages together; the logic lives in agent,
// cluster, exporter and probe.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	// The IANA time zone database, used only when the system has none (the
	// FROM scratch image): maintenance windows name time zones, and
	// without it any zone but UTC fails to load. About 450 KB.
	_ "time/tzdata"
)

// Set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	// No command serves heap profiles (there is no pprof endpoint), yet the
	// runtime samples one allocation per 512 KB into profiling buckets
	// from the first allocation on, because the binary links the writer
	// (vantage bench -memprofile): at 10,000 HTTPS targets that was 1.6 MB
	// of buckets nobody reads, and a stack walk per sample. bench sets its
	// own rate when asked for a profile. As early as possible, as the
	// runtime asks.
	runtime.MemProfileRate = 0
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1 // a probe failed, a config has problems, the agent stopped on error
	exitUsage = 2 // bad flags or arguments
)

type command struct {
	name, synopsis string
	run            func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"agent", "run an agent: probe, gossip, export (the main job)", runAgent},
		{"probe", "run one probe now and print the result", runProbe},
		{"check-config", "validate config files; print every problem as FILE:LINE:COL", runCheckConfig},
		{"rules", "print Prometheus alerting and recording rules for a config", runRules},
		{"dashboards", "write the Grafana dashboards and their provisioning files", runDashboards},
		{"demo", "run a three-region fleet against a local target farm, with faults", runDemo},
		{"bench", "benchmark an agent against a bare client and blackbox_exporter", runBench},
		{"lab", "run the fault lab: scripted outages, partitions and crashes; MTTD/MTTR report", runLab},
		{"soak", "run a fleet for a long time with faults and restarts; check nothing leaks", runSoak},
		{"report", "print the SLO report of a period (markdown, csv, json) from an agent or its state", runReport},
		{"incident", "print one incident's timeline for a postmortem", runIncident},
		{"keygen", "print a new base64 gossip encryption key", runKeygen},
		{"healthcheck", "exit 0 when the local agent is ready (container HEALTHCHECK)", runHealthcheck},
		{"version", "print the version", runVersion},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Vantage %s: synthetic probing agents that agree before they page.\n\nUsage:\n  vantage COMMAND [flags]\n\nCommands:\n", version)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.synopsis)
	}
	fmt.Fprintf(w, "\nRun 'vantage COMMAND -h' for a command's flags.\n")
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return exitOK
	case "-version", "--version":
		return runVersion(ctx, nil, stdout, stderr)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "vantage: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}
