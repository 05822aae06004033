package lab

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/internal/testenv"
)

// lineWriter sends progress lines to the test log.
type lineWriter struct{ t *testing.T }

func (w lineWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestLabQuick plays every scenario on a real fleet (six agents, three
// regions, loopback farm) at interval 5s and timeout 1s, and checks what
// the fleet concluded against the ground truth: no false incident (which
// includes a second incident for one flapping episode), no missed outage,
// one-region failures suppressed, timeouts reported as such, the
// partitioned region flagging itself isolated and rejoining. Times are
// reported, never asserted: the machine is shared and noisy.
func TestLabQuick(t *testing.T) {
	o := Quick()
	o.Progress = lineWriter{t}
	rep, err := Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	_ = rep.WriteText(&b)
	t.Logf("\n%s", b.String())

	for _, row := range rep.Rows {
		for _, in := range row.StalledIncidents {
			t.Logf("%s: incident on %s during a host stall (not the product's doing): %+v", row.Scenario, in.Target, in)
		}
		if row.False != 0 {
			t.Errorf("%s: %d false incidents: %+v", row.Scenario, row.False, row.FalseIncidents)
		}
		if row.Missed != 0 {
			t.Errorf("%s: %d of %d outages missed", row.Scenario, row.Missed, row.MustDetect)
		}
	}
	want := map[Scenario]int{AllRegions: o.Outages, OneRegion: o.RegionOutages, SlowAll: o.SlowOutages, Flapping: o.Flaps,
		AgentKill: o.KillOutages, Partition: o.Partitions, NoFault: o.Controls}
	for s, n := range want {
		row, ok := rep.Row(s)
		if !ok || row.Runs != n {
			t.Errorf("%s: %d runs played, want %d", s, row.Runs, n)
		}
	}
	for _, s := range []Scenario{AllRegions, SlowAll, AgentKill} {
		row, _ := rep.Row(s)
		if row.Detected != row.Runs || len(row.MTTD) != row.Runs {
			t.Errorf("%s: %d of %d detected", s, row.Detected, row.Runs)
		}
		// Causality, not speed: nothing is detected before the farm flips
		// or before the first failed observation.
		for i := range row.MTTD {
			if row.MTTD[i] < 0 || row.Verdict[i] < 0 || row.MTTD[i] < row.Verdict[i]-time.Second {
				t.Errorf("%s: detection %v after the flip and %v after the first failure: impossible", s, row.MTTD[i], row.Verdict[i])
			}
		}
		if row.Unresolved != 0 {
			t.Errorf("%s: %d incidents never resolved after the repair", s, row.Unresolved)
		}
	}
	if row, _ := rep.Row(SlowAll); row.Reasons["timeout"] != row.Detected {
		t.Errorf("slow targets detected with reasons %v, want timeout only", row.Reasons)
	}
	if row, _ := rep.Row(OneRegion); row.SuppressedRuns != row.Runs {
		t.Errorf("one-region failures suppressed in %d of %d runs", row.SuppressedRuns, row.Runs)
	}
	if len(rep.Isolations) != o.Partitions {
		t.Errorf("%d partitions watched, want %d", len(rep.Isolations), o.Partitions)
	}
	for _, iso := range rep.Isolations {
		if iso.Flagged < 0 || len(iso.Wrong) > 0 {
			t.Errorf("partition of %s: flagged isolated after %v (negative: never), wrongly flagged elsewhere: %v", iso.Region, iso.Flagged, iso.Wrong)
		}
	}
	recovered := map[Scenario]int{}
	for _, rc := range rep.Recoveries {
		if !rc.OK {
			t.Errorf("%s: %s not seen alive by every agent within %v", rc.Scenario, rc.Who, rc.After)
		}
		recovered[rc.Scenario]++
	}
	if recovered[Partition] != o.Partitions || recovered[AgentKill] != 1 {
		t.Errorf("recoveries %v, want %d partition and 1 agent-kill", recovered, o.Partitions)
	}
	// Paging: every outage reached Alertmanager and notified once; nothing
	// else reached it. CI installs Alertmanager; elsewhere the lab notes
	// its absence and this part is skipped.
	if len(rep.Paging) == 0 {
		if os.Getenv(testenv.RequireEnv) == "1" {
			t.Errorf("no paging measured though %s=1: %v", testenv.RequireEnv, rep.Notes)
		}
	}
	for _, row := range rep.Paging {
		if row.FalsePages != 0 {
			t.Errorf("%s: %d alerts reached Alertmanager that no outage explains (%v)", row.Scenario, row.FalsePages, row.FalseTargets)
		}
		if row.Scenario == Flapping {
			continue
		}
		if row.Paged != row.Outages {
			t.Errorf("%s: %d of %d outages reached Alertmanager", row.Scenario, row.Paged, row.Outages)
		}
		for i, n := range row.Firing {
			if n != 1 {
				t.Errorf("%s: outage %d caused %d firing notifications, want exactly 1", row.Scenario, i, n)
			}
		}
	}
	if rep.Confirmations["requested"] <= 0 {
		t.Errorf("no confirmation requested in %d outages with confirm_on_failure on", o.Outages)
	}
}
