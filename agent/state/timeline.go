package state

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/vantage-probe/vantage/cluster"
)

// Step is one moment of an incident's timeline.
type Step struct {
	At   time.Time
	What string
}

// Timeline is what an incident record says happened, in order: the first
// failed probe, the confirmation request, the quorum, the verdict, the
// alert, the resolution.
func Timeline(in *cluster.Incident) []Step {
	var out []Step
	add := func(at time.Time, format string, args ...any) {
		if !at.IsZero() {
			out = append(out, Step{At: at, What: fmt.Sprintf(format, args...)})
		}
	}
	reason := ""
	if in.Reason != "" {
		reason = " (" + in.Reason + ")"
	}
	add(in.StartedAt, "first failed probe in any region%s", reason)
	for _, f := range in.FirstFailures {
		why := ""
		if f.Reason != "" {
			why = ": " + f.Reason
		}
		add(f.At, "%s fails (its first failed probe%s)", f.Region, why)
	}
	add(in.ConfirmAt, "other regions asked to confirm (probe now)")
	add(in.QuorumAt, "quorum reached: %s failing", list(in.QuorumRegions))
	add(in.DetectedAt, "detected: verdict down published by the leader, %s", in.Leader)
	add(in.AlertedAt, "alert sent to Alertmanager")
	for _, l := range in.LeaderChanges {
		add(l.At, "leader changed: %s continues the incident", l.Agent)
	}
	if in.Open() {
		out = append(out, Step{What: "still open"})
	} else {
		flaps := ""
		if in.Flaps > 0 {
			flaps = fmt.Sprintf(", after %d flaps", in.Flaps)
		}
		add(in.ResolvedAt, "resolved: the quorum saw it up again%s", flaps)
	}
	slices.SortStableFunc(out, func(a, b Step) int {
		if a.At.IsZero() || b.At.IsZero() {
			return 0
		}
		return a.At.Compare(b.At)
	})
	return out
}

func list(ss []string) string {
	if len(ss) == 0 {
		return "no region recorded"
	}
	return strings.Join(ss, ", ")
}

// WriteTimeline writes in's timeline for a postmortem, each step with its
// time (UTC) and its offset from the first failed probe.
func WriteTimeline(w io.Writer, in *cluster.Incident, now time.Time) error {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("incident %s\n", in.ID)
	p("  target:           %s\n", in.Target)
	if in.Reason != "" {
		p("  reason:           %s\n", in.Reason)
	}
	p("  regions failing:  %s (quorum: %s)\n", list(in.Regions), list(in.QuorumRegions))
	p("  leader:           %s\n", in.Leader)
	p("  time to detect:   %s\n", Human(in.TimeToDetect()))
	if in.Open() {
		p("  open for:         %s\n", Human(now.Sub(in.StartedAt)))
	} else {
		p("  time to recover:  %s\n", Human(in.ResolvedAt.Sub(in.StartedAt)))
	}
	p("\ntimeline (UTC):\n")
	for _, s := range Timeline(in) {
		if s.At.IsZero() {
			p("  %-23s %10s  %s\n", "", "", s.What)
			continue
		}
		p("  %-23s %10s  %s\n", s.At.UTC().Format("2006-01-02 15:04:05.000"), "+"+Human(s.At.Sub(in.StartedAt)), s.What)
	}
	return nil
}
