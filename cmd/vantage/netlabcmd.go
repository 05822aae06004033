package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/vantage-probe/vantage/harness/netlab"
)

// netnsFlag reports whether args ask for the lab of real processes, and
// returns them without that flag.
func netnsFlag(args []string) (bool, []string) {
	for i, a := range args {
		switch a {
		case "-netns", "--netns", "-netns=true", "--netns=true":
			return true, append(args[:i:i], args[i+1:]...)
		}
	}
	return false, args
}

// runNetlab is `vantage lab -netns`: the fault lab of real processes
// (package netlab); the report goes to stdout, progress to stderr.
func runNetlab(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("lab -netns", "Usage: vantage lab -netns [-quick] [-markdown] [flags]\n\n"+
		"Runs the fault lab with real processes: six `vantage agent` processes (the binary given by -agent),\n"+
		"each region in its own network namespace, a target farm in another, joined by veth pairs to a\n"+
		"bridge; then plays faults: a region's veth down, iptables cutting a region from the fleet, from the\n"+
		"targets, or one way only, agents killed (SIGKILL) and restarted, stopped (SIGSTOP) and resumed,\n"+
		"good and bad configs pushed with SIGHUP, outages every region sees during them. It scrapes every\n"+
		"agent every second and checks five invariants throughout (one verdict exporter per target; probes\n"+
		"by assignees only after the grace; no false incident; every outage detected; healthy agents that\n"+
		"keep their last good config), and prints per scenario the violations by invariant and the\n"+
		"detection times. The kernel's netem is not used (not available here): no delay is injected.\n"+
		"Needs root, iproute2 and iptables: otherwise it says why and exits 0. Removes every namespace it\n"+
		"made (named vnl-*), also on Ctrl-C, and an earlier run's leftovers at start. About 15 minutes\n"+
		"(-quick: under 2). Exit 0 when no invariant was violated, 1 otherwise.", stderr)
	def, _ := os.Executable()
	agentBin := fs.String("agent", def, "the vantage binary the agents run (default: this one)")
	dir := fs.String("dir", "", "directory for configs, the gossip key, agent logs and violations.log (default: a new temporary directory, kept)")
	quick := fs.Bool("quick", false, "the short CI version: an outage, a kill and restart, a bad config (under 2 minutes)")
	markdown := fs.Bool("markdown", false, "print the report as markdown, ready for the README")
	scenarios := fs.String("scenarios", "", "comma-separated scenarios to play, in order (default: all); known: "+strings.Join(netlab.ScenarioNames(), ", "))
	hold := fs.Duration("hold", 0, "how long each network or process fault lasts (default 40s; 20s with -quick)")
	progress := fs.Bool("progress", true, "print one line per step on stderr")
	if c := parse(fs, args); c >= 0 {
		return c
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "lab -netns: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	opts := netlab.Full()
	if *quick {
		opts = netlab.Short()
	}
	opts.Agent, opts.Dir = *agentBin, *dir
	if *scenarios != "" {
		opts.Scenarios = strings.Split(*scenarios, ",")
	}
	if *hold > 0 {
		opts.Hold = *hold
	}
	if *progress {
		opts.Progress = stderr
	}
	rep, err := netlab.Run(ctx, opts)
	if errors.Is(err, netlab.ErrUnavailable) {
		fmt.Fprintf(stdout, "lab -netns: skipped: %v\n", err)
		return exitOK
	}
	if rep == nil { // a nil *Report is not a nil labReport
		return labOutcome("lab -netns", nil, err, netlab.ErrOptions, *markdown, stdout, stderr)
	}
	return labOutcome("lab -netns", rep, err, netlab.ErrOptions, *markdown, stdout, stderr)
}
