package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/vantage-probe/vantage/harness/bench"
)

// defaultBlackbox is where Debian's prometheus-blackbox-exporter package
// installs the exporter; otherwise blackbox_exporter is looked up in PATH.
const defaultBlackbox = "/usr/bin/prometheus-blackbox-exporter"

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "farm" {
		return runBenchFarm(ctx, args[1:], stderr)
	}
	if len(args) > 0 && args[0] == "rules" {
		return runBenchRules(ctx, args[1:], stdout, stderr)
	}
	names := make([]string, 0, 4)
	for _, s := range bench.DefaultSuite() {
		names = append(names, s.Name)
	}
	fs := newFlagSet("bench", "Usage: vantage bench [flags]\n"+
		"       vantage bench -targets N -rate R [-kind K] [-drivers D,...] [flags]\n"+
		"       vantage bench rules [-targets N] [-duration D]   (Prometheus evaluating `vantage rules`)\n\n"+
		"Benchmarks one agent (in this process) probing a loopback target farm (a child process, so\n"+
		"its CPU is not counted) at a steady rate, against the floor (a bare Go client making the same\n"+
		"fresh-connection requests) and Prometheus blackbox_exporter driven by /probe requests at the\n"+
		"same rate. Prints CPU per probe, RSS per target, schedule lateness and /metrics scrape cost.\n"+
		"Without -targets it runs the default suite ("+strings.Join(names, ", ")+"; about fourteen minutes):\n"+
		"10,000 HTTPS targets (memory), 10,000 mixed targets at 1,000 probes/s (lateness, scrape),\n"+
		"then 1,000 targets of each protocol (HTTP, HTTPS, TCP, ICMP to 127.0.0.1, gRPC health checks\n"+
		"plaintext and over TLS) against the bare client and blackbox_exporter.\n"+
		"The agent runs at its default settings (GOGC from the environment or 100, a soft memory limit\n"+
		"from GOMEMLIMIT, the container or the number of targets, as `vantage agent` chooses it) and, for\n"+
		"HTTP, HTTPS, TCP and the memory scenario, again at GOGC=100 without a memory limit.\n"+
		"Measurements are noisy on a shared machine: use -count 2 or more and read the ranges.", stderr)
	only := fs.String("only", "", "comma-separated default-suite scenarios to run (default: all)")
	targets := fs.Int("targets", 0, "run one custom scenario with this many targets instead of the suite")
	rate := fs.Float64("rate", 500, "custom scenario: probes per second, all targets together")
	kind := fs.String("kind", bench.KindHTTPS, "custom scenario: targets' protocol: "+strings.Join(bench.Kinds, ", "))
	drivers := fs.String("drivers", strings.Join(bench.AllDrivers, ","), "custom scenario: what probes: vantage (the agent at its default settings), vantage-gogc100 (at GOGC=100, no memory limit), bare, blackbox")
	duration := fs.Duration("duration", 0, "measurement window of every scenario (default 30s; at least 30s for figures worth quoting)")
	warmup := fs.Duration("warmup", 0, "probing before each window (default: one interval, at least 5s)")
	count := fs.Int("count", 1, "run every scenario this many times; the report shows ranges")
	markdown := fs.Bool("markdown", false, "print the report as markdown tables (for README.md)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of each agent window to `FILE`, and of the scrapes after it to FILE with .scrape before the extension (scenario name added when several)")
	memprofile := fs.String("memprofile", "", "write a heap profile after each agent window to `FILE` (scenario name added when several)")
	blackbox := fs.String("blackbox", "", "blackbox_exporter binary (default: "+defaultBlackbox+" or blackbox_exporter in PATH; \"none\" skips it)")
	listeners := fs.Int("listeners", bench.DefaultFarmListeners, "farm servers per protocol (targets share them by path or address)")
	maxInFlight := fs.Int("max-in-flight", 1000, "concurrent probes at most, for every driver (the agent's default)")
	noState := fs.Bool("no-state", false, "run the agent without a state directory (by default it keeps one in the scratch directory, as vantage agent does)")
	maxLoad := fs.Float64("max-load", 0, "before each measurement, wait (up to -max-load-wait) until the 1-minute load average is at most this; 0: never wait")
	maxLoadWait := fs.Duration("max-load-wait", 5*time.Minute, "longest wait for -max-load")
	minAchieved := fs.Float64("min-achieved", 0.9, "fraction of the wanted rate a window must serve to count; below it the run is reported as an error (the machine could not keep up)")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	if c := parse(fs, args); c >= 0 {
		return c
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	var scenarios []bench.Scenario
	if *targets > 0 {
		scenarios = []bench.Scenario{{Name: "custom", Kind: *kind, Targets: *targets, Rate: *rate,
			Duration: 30 * time.Second, Drivers: splitList(*drivers)}}
	} else {
		scenarios = bench.DefaultSuite()
		if *only != "" {
			want := splitList(*only)
			for _, w := range want {
				if !slices.Contains(names, w) {
					fmt.Fprintf(stderr, "bench: -only %q: no such scenario (have %s)\n", w, strings.Join(names, ", "))
					return exitUsage
				}
			}
			scenarios = slices.DeleteFunc(scenarios, func(s bench.Scenario) bool { return !slices.Contains(want, s.Name) })
		}
	}
	for i := range scenarios {
		if *duration > 0 {
			scenarios[i].Duration = *duration
		}
		scenarios[i].Warmup = *warmup
		if err := scenarios[i].Validate(); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return exitUsage
		}
	}
	bb, err := findBlackbox(*blackbox)
	if err != nil {
		fmt.Fprintf(stderr, "bench: -blackbox: %v\n", err)
		return exitUsage
	}
	if bb == "" {
		for i := range scenarios {
			scenarios[i].Drivers = slices.DeleteFunc(slices.Clone(scenarios[i].Drivers),
				func(d string) bool { return d == bench.DriverBlackbox })
		}
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return exitFail
	}
	var progress io.Writer = stderr
	if *quiet {
		progress = io.Discard
	}
	rep, err := bench.Run(ctx, bench.Options{
		Scenarios:     scenarios,
		Count:         *count,
		FarmCommand:   []string{exe, "bench", "farm"},
		FarmListeners: *listeners,
		Blackbox:      bb,
		MaxInFlight:   *maxInFlight,
		NoState:       *noState,
		MaxLoad:       *maxLoad,
		MaxLoadWait:   *maxLoadWait,
		MinAchieved:   *minAchieved,
		CPUProfile:    *cpuprofile,
		MemProfile:    *memprofile,
		Log:           progress,
		Version:       version,
	})
	if rep != nil && len(rep.Results) > 0 {
		rep.Write(stdout, *markdown)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return exitFail
	}
	for _, r := range rep.Results {
		if r.Err != "" {
			return exitFail
		}
	}
	return exitOK
}

// runBenchFarm is `vantage bench farm`, the target farm the benchmark
// starts in a child process. It serves until its stdin closes.
func runBenchFarm(ctx context.Context, args []string, stderr io.Writer) int {
	fs := newFlagSet("bench farm", "Usage: vantage bench farm -dir DIR [-listeners N]\n\n"+
		"The benchmark's target farm (started by vantage bench, in a process of its own): HTTP, HTTPS\n"+
		"and TCP servers on 127.0.0.1 answering any path. Prints their addresses as one JSON line,\n"+
		"writes the HTTPS servers' CA to DIR/ca.pem, and serves until stdin is closed.", stderr)
	dir := fs.String("dir", "", "directory for ca.pem (required)")
	listeners := fs.Int("listeners", bench.DefaultFarmListeners, "servers per protocol")
	if c := parse(fs, args); c >= 0 {
		return c
	}
	if *dir == "" {
		fmt.Fprintln(stderr, "bench farm: -dir is required")
		return exitUsage
	}
	if err := bench.ServeFarm(ctx, bench.FarmOptions{Listeners: *listeners, Dir: *dir}, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(stderr, "bench farm: %v\n", err)
		return exitFail
	}
	return exitOK
}

// findBlackbox resolves -blackbox: "none" disables the driver; empty means
// the Debian path or blackbox_exporter in PATH, and no error when neither
// exists (the comparison is skipped); a path given must exist.
func findBlackbox(flagValue string) (string, error) {
	switch flagValue {
	case "none":
		return "", nil
	case "":
		if _, err := os.Stat(defaultBlackbox); err == nil {
			return defaultBlackbox, nil
		}
		if p, err := exec.LookPath("blackbox_exporter"); err == nil {
			return p, nil
		}
		return "", nil
	}
	p, err := exec.LookPath(flagValue)
	if err != nil {
		return "", err
	}
	return p, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// runBenchRules is `vantage bench rules`: a real Prometheus evaluating the
// generated rules against the series of N targets (bench.RulesEval).
func runBenchRules(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("bench rules", "Usage: vantage bench rules [-targets N] [-duration D] [-interval D] [-down N]\n\n"+
		"Starts a synthetic fleet (three regions, each agent exporting every target's observations and\n"+
		"the verdicts it leads, through the exporter's own writers) and a real Prometheus (Debian package\n"+
		"prometheus) loading `vantage rules` for it, then prints how long each rule group takes to\n"+
		"evaluate (prometheus_rule_group_last_duration_seconds), evaluation failures and Prometheus' RSS.", stderr)
	targets := fs.Int("targets", 10000, "targets")
	duration := fs.Duration("duration", 5*time.Minute, "how long Prometheus evaluates")
	interval := fs.Duration("interval", 15*time.Second, "scrape and evaluation interval")
	down := fs.Int("down", 10, "targets down by quorum throughout (VantageTargetDown must fire for each)")
	if c := parse(fs, args); c >= 0 {
		return c
	}
	res, err := bench.RulesEval(ctx, bench.RulesOptions{Targets: *targets, Duration: *duration, Interval: *interval,
		Down: *down, Progress: stderr})
	if err != nil {
		fmt.Fprintf(stderr, "bench rules: %v\n", err)
		return exitFail
	}
	if err := res.WriteText(stdout); err != nil {
		return exitFail
	}
	if res.EvalFailures > 0 {
		return exitFail
	}
	return exitOK
}
