package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/vantage-probe/vantage/harness/soak"
)

func runSoak(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("soak", "Usage: vantage soak [-targets 10000] [-interval 30s] [-duration 30m]\n\n"+
		"Runs three agents (one per region) against a loopback farm of HTTP and TCP targets, with 1%\n"+
		"of targets failing at random and an agent killed and restarted every few minutes, and prints\n"+
		"goroutines, heap, open file descriptors and schedule lateness as it goes. Exits 1 if\n"+
		"goroutines or descriptors leak or the second half grows past the first.", stderr)
	targets := fs.Int("targets", 10000, "number of targets (half HTTP, half TCP)")
	interval := fs.Duration("interval", 30*time.Second, "probe interval of every target")
	duration := fs.Duration("duration", 30*time.Minute, "how long to run")
	restart := fs.Duration("restart-every", 3*time.Minute, "kill and restart a random agent this often")
	fault := fs.Duration("fault-every", 20*time.Second, "break a random 1% of targets this often")
	every := fs.Duration("sample-every", 30*time.Second, "print a sample this often")
	if c := parse(fs, args); c >= 0 {
		return c
	}
	rep, err := soak.Run(ctx, soak.Options{Targets: *targets, Interval: *interval, Duration: *duration, Regions: 3,
		RestartEvery: *restart, FaultEvery: *fault, SampleEvery: *every, Out: stdout, Seed: time.Now().UnixNano()})
	if err != nil {
		fmt.Fprintf(stderr, "soak: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "soak done: %d probes, %d agent restarts, %d fault rounds\n", rep.Probes, rep.Restarts, rep.Faults)
	fmt.Fprintf(stdout, "before: %d goroutines, %d fds; after stop: %d goroutines, %d fds\n",
		rep.Before.Goroutines, rep.Before.FDs, rep.After.Goroutines, rep.After.FDs)
	code := exitOK
	if rep.After.Goroutines > rep.Before.Goroutines+2 || rep.After.FDs > rep.Before.FDs+2 {
		fmt.Fprintln(stdout, "LEAK: goroutines or file descriptors did not come back")
		code = exitFail
	}
	if err := rep.Flat(100, 0.25); err != nil {
		fmt.Fprintf(stdout, "NOT FLAT: %v\n", err)
		code = exitFail
	}
	return code
}
