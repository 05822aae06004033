package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/vantage-probe/vantage/harness/lab"
)

// runLab is `vantage lab`: the fault lab (package lab) with its options
// from flags; the report goes to stdout, progress to stderr.
func runLab(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if on, rest := netnsFlag(args); on {
		return runNetlab(ctx, rest, stdout, stderr)
	}
	fs := newFlagSet("lab", "Usage: vantage lab [-quick] [-markdown] [flags]\n\n"+
		"Runs the fault lab: six agents in three regions in this process (each on its own loopback\n"+
		"address, gossip over fault-injecting transports) against a local target farm, and plays\n"+
		"faults with a known ground truth: outages every region sees, outages one region sees,\n"+
		"responses slower than the timeout, flapping targets, an agent crash and restart during\n"+
		"outages, a region partitioned from the fleet and the targets. Prints per scenario: runs,\n"+
		"detected, missed, false incidents, suppressed failures, time to detect from the true start\n"+
		"(p50/p95/max), first failed observation to verdict (p95) and time to resolve (p50), then the\n"+
		"issue's goals and the confirmation traffic. The default is the measured run (interval 30s,\n"+
		"timeout 2s, quorum 2, confirm-on-failure, the product's gossip timings): a few minutes.\n"+
		"The agents send their alerts to a real Alertmanager when prometheus-alertmanager is installed:\n"+
		"the report then times each outage to its alert and counts the notifications it caused.\n"+
		"Needs no network. Exit 0 when no incident was false and no outage missed, 1 otherwise.", stderr)
	quick := fs.Bool("quick", false, "the short CI version: interval 5s, timeout 1s, loopback gossip timings, a few runs (under a minute)")
	paging := fs.Bool("paging", false, "the paging run: interval 15s, timeout 5s, outages, hangs, one-region failures, flaps and a leader crash, timed to a real Alertmanager")
	noAM := fs.Bool("no-alertmanager", false, "do not start an Alertmanager (paging is then not measured); by default the agents page a real one (Debian package prometheus-alertmanager) when it is installed")
	markdown := fs.Bool("markdown", false, "print the report as markdown, ready for the README")
	_ = fs.Bool("netns", false, "the fault lab with real processes instead: agent processes in network namespaces (root; see vantage lab -netns -h)")
	full := lab.Full()
	interval := fs.Duration("interval", full.Interval, "probe interval of every target (5s with -quick)")
	timeout := fs.Duration("timeout", full.Timeout, "probe timeout of every target (1s with -quick)")
	minRegions := fs.Int("quorum", full.MinRegions, "regions that must see a failure")
	noConfirm := fs.Bool("no-confirm", false, "turn confirm_on_failure off, to measure what it buys")
	gossip := fs.String("gossip", full.Gossip, "memberlist timings: wan (the product's defaults) or loopback (fast failure detection; -quick's)")
	seed := fs.Uint64("seed", full.Seed, "seed of the fault schedule (outage starts, regions); the same seed replays the same faults")
	outages := fs.Int("outages", full.Outages, "outages every region sees, run concurrently on different targets (6 with -quick)")
	regionOutages := fs.Int("region-outages", full.RegionOutages, "outages only one region sees (3 with -quick)")
	slow := fs.Int("slow", full.SlowOutages, "targets slower than the timeout everywhere (3 with -quick)")
	flaps := fs.Int("flaps", full.Flaps, "flapping targets (2 with -quick)")
	killOutages := fs.Int("kill-outages", full.KillOutages, "outages during an agent crash and restart; 0 skips the crash (3 with -quick)")
	partitions := fs.Int("partitions", full.Partitions, "region partitions, one after another; 0 skips them")
	controls := fs.Int("controls", full.Controls, "healthy targets that must never raise an incident (4 with -quick)")
	overlap := fs.Bool("overlap", false, "run the agent crash during the other faults instead of after the partition (shorter; -quick sets it)")
	progress := fs.Bool("progress", true, "print one line per step on stderr")
	logLevel := fs.String("log-level", "", "print the agents' logs on stderr at this level (debug, info, warn, error); default none")
	if c := parse(fs, args); c >= 0 {
		return c
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "lab: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	opts := full
	switch {
	case *quick && *paging:
		fmt.Fprintln(stderr, "lab: -quick and -paging are two runs: choose one")
		return exitUsage
	case *quick:
		opts = lab.Quick()
	case *paging:
		opts = lab.Paging()
	}
	opts.NoAlertmanager = *noAM
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["interval"] {
		opts.Interval = *interval
	}
	if set["timeout"] {
		opts.Timeout = *timeout
	}
	if set["quorum"] {
		opts.MinRegions = *minRegions
	}
	if set["gossip"] {
		opts.Gossip = *gossip
	}
	if set["overlap"] {
		opts.Overlap = *overlap
	}
	opts.NoConfirm = *noConfirm
	if set["seed"] {
		opts.Seed = *seed
	}
	for _, c := range []struct {
		name     string
		flag, to *int
	}{{"outages", outages, &opts.Outages}, {"region-outages", regionOutages, &opts.RegionOutages},
		{"slow", slow, &opts.SlowOutages}, {"flaps", flaps, &opts.Flaps}, {"kill-outages", killOutages, &opts.KillOutages},
		{"partitions", partitions, &opts.Partitions}, {"controls", controls, &opts.Controls}} {
		if set[c.name] {
			*c.to = *c.flag
		}
	}
	if *progress {
		opts.Progress = stderr
	}
	if *logLevel != "" {
		log, err := newLogger(stderr, "text", *logLevel)
		if err != nil {
			fmt.Fprintf(stderr, "lab: %v\n", err)
			return exitUsage
		}
		opts.Logger = log
	} else {
		opts.Logger = slog.New(slog.DiscardHandler)
	}

	rep, err := lab.Run(ctx, opts)
	if rep == nil { // a nil *Report is not a nil labReport
		return labOutcome("lab", nil, err, lab.ErrOptions, *markdown, stdout, stderr)
	}
	return labOutcome("lab", rep, err, lab.ErrOptions, *markdown, stdout, stderr)
}

// labReport is what both labs return.
type labReport interface {
	WriteText(io.Writer) error
	WriteMarkdown(io.Writer) error
	OK() bool
}

// labOutcome prints a lab's report (as markdown with markdown) and gives
// the exit code: usage for an option error (errOptions), a failure when
// the lab could not finish or an invariant or goal failed.
func labOutcome(name string, rep labReport, err, errOptions error, markdown bool, stdout, stderr io.Writer) int {
	if err != nil && rep == nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		if errors.Is(err, errOptions) {
			return exitUsage
		}
		return exitFail
	}
	write := rep.WriteText
	if markdown {
		write = rep.WriteMarkdown
	}
	if werr := write(stdout); werr != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, werr)
		return exitFail
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return exitFail
	}
	if !rep.OK() {
		return exitFail
	}
	return exitOK
}
