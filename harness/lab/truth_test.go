package lab

import (
	"testing"
	"time"

	"github.com/vantage-probe/vantage/cluster"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func incident(target string, started, detected, resolved float64) cluster.Incident {
	in := cluster.Incident{ID: target + "@" + at(started).String(), Target: target, StartedAt: at(started), DetectedAt: at(detected),
		Reason: "status_mismatch"}
	if resolved > 0 {
		in.ResolvedAt = at(resolved)
	}
	return in
}

func rowOf(t *testing.T, rows []Row, s Scenario) Row {
	t.Helper()
	for _, r := range rows {
		if r.Scenario == s {
			return r
		}
	}
	t.Fatalf("no row for %s in %+v", s, rows)
	return Row{}
}

func TestEvaluateMatchesIncidentsToTheGroundTruth(t *testing.T) {
	truth := Truth{
		Grace: 3 * time.Second,
		Owner: map[string]Scenario{"out-1": AllRegions, "out-2": AllRegions, "out-3": AllRegions,
			"reg-1": OneRegion, "flap-1": Flapping, "flap-2": Flapping, "ok-1": NoFault, "ok-2": NoFault},
		Episodes: []Episode{
			{Scenario: AllRegions, Target: "out-1", Expect: Detect, Start: at(10), End: at(40)},
			{Scenario: AllRegions, Target: "out-2", Expect: Detect, Start: at(12), End: at(42)}, // missed
			{Scenario: AllRegions, Target: "out-3", Expect: Detect, Start: at(14), End: at(44)}, // detected twice
			{Scenario: OneRegion, Target: "reg-1", Expect: NoIncident, Start: at(10), End: at(40), Region: "eu"},
			{Scenario: Flapping, Target: "flap-1", Expect: AtMostOne, Start: at(10), End: at(40)}, // none: fine
			{Scenario: Flapping, Target: "flap-2", Expect: AtMostOne, Start: at(10), End: at(40)}, // one: fine
			{Scenario: Partition, Expect: NoIncident, Start: at(100), End: at(150), Region: "ap"},
			{Scenario: AgentKill, Expect: NoIncident, Watch: true, Start: at(200), End: at(250)},
		},
	}
	incidents := []cluster.Incident{
		incident("out-1", 13, 15.5, 55),     // MTTD 5.5s from the flip, 2.5s from the first failure, MTTR 15s
		incident("out-3", 20, 21, 30),       // resolved early...
		incident("out-3", 33, 34, 60),       // ...and opened again: false
		incident("reg-1", 20, 21, 25),       // a one-region outage must not page
		incident("flap-2", 11, 12, 14),      // allowed
		incident("ok-1", 60, 61, 70),        // a healthy target: false, charged to no-fault
		incident("out-1", 90, 91, 95),       // long after out-1's episode: false, charged to its owner
		incident("ok-2", 120, 121, 0),       // during the partition: charged to it
		incident("out-2", 210, 211, 215),    // during the crash watch: charged to agent-kill
		incident("out-1", 42.5, 42.9, 50.0), // within out-1's grace but it was already detected: false
	}
	events := []cluster.Event{
		{Kind: "suppressed", Target: "reg-1", At: at(15)},
		{Kind: "suppressed", Target: "reg-1", At: at(16)},
		{Kind: "suppressed", Target: "ok-2", At: at(110)}, // the partition's
		{Kind: "incident_open", Target: "out-1", At: at(15)},
	}
	rows := Evaluate(truth, incidents, events)

	all := rowOf(t, rows, AllRegions)
	if all.Runs != 3 || all.MustDetect != 3 || all.Detected != 2 || all.Missed != 1 {
		t.Errorf("all-regions runs/detected/missed = %d/%d/%d (must %d), want 3/2/1 (3)", all.Runs, all.Detected, all.Missed, all.MustDetect)
	}
	if all.False != 3 { // out-3's second, out-1 at 91s, out-1 within grace after detection
		t.Errorf("all-regions false = %d, want 3: %+v", all.False, all.FalseIncidents)
	}
	if len(all.MTTD) != 2 || all.MTTD[0] != 5500*time.Millisecond || all.Verdict[0] != 2500*time.Millisecond {
		t.Errorf("all-regions MTTD %v verdict %v, want [5.5s ...] [2.5s ...]", all.MTTD, all.Verdict)
	}
	if len(all.MTTR) != 1 || all.MTTR[0] != 15*time.Second || all.EarlyResolved != 1 {
		t.Errorf("all-regions MTTR %v early %d, want [15s] and 1 early", all.MTTR, all.EarlyResolved)
	}

	reg := rowOf(t, rows, OneRegion)
	if reg.False != 1 || reg.Suppressed != 2 || reg.SuppressedRuns != 1 || reg.MayDetect != 0 {
		t.Errorf("one-region false/suppressed/runs = %d/%d/%d may %d, want 1/2/1 0", reg.False, reg.Suppressed, reg.SuppressedRuns, reg.MayDetect)
	}
	flap := rowOf(t, rows, Flapping)
	if flap.Detected != 1 || flap.Missed != 0 || flap.False != 0 || flap.MustDetect != 0 || flap.MayDetect != 2 {
		t.Errorf("flapping detected/missed/false = %d/%d/%d, want 1/0/0", flap.Detected, flap.Missed, flap.False)
	}
	part := rowOf(t, rows, Partition)
	if part.Runs != 1 || part.False != 1 || part.Suppressed != 1 || part.Unresolved != 0 {
		t.Errorf("partition runs/false/suppressed = %d/%d/%d, want 1/1/1", part.Runs, part.False, part.Suppressed)
	}
	kill := rowOf(t, rows, AgentKill)
	if kill.Runs != 0 || kill.False != 1 {
		t.Errorf("agent-kill runs/false = %d/%d, want 0 (a watch window is no run)/1", kill.Runs, kill.False)
	}
	ctl := rowOf(t, rows, NoFault)
	if ctl.Runs != 2 || ctl.False != 1 {
		t.Errorf("no-fault runs/false = %d/%d, want 2/1", ctl.Runs, ctl.False)
	}
	// Rows come in report order.
	var order []Scenario
	for _, r := range rows {
		order = append(order, r.Scenario)
	}
	want := []Scenario{AllRegions, OneRegion, Flapping, AgentKill, Partition, NoFault}
	if len(order) != len(want) {
		t.Fatalf("rows %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("rows %v, want %v", order, want)
		}
	}
}

func TestEvaluateCountsOpenIncidentsAsUnresolved(t *testing.T) {
	truth := Truth{Grace: time.Second, Owner: map[string]Scenario{"slow-1": SlowAll},
		Episodes: []Episode{{Scenario: SlowAll, Target: "slow-1", Expect: Detect, Start: at(0), End: at(10)}}}
	in := incident("slow-1", 3, 4, 0)
	in.Reason = "timeout"
	r := rowOf(t, Evaluate(truth, []cluster.Incident{in}, nil), SlowAll)
	if r.Detected != 1 || r.Unresolved != 1 || len(r.MTTR) != 0 || r.Reasons["timeout"] != 1 {
		t.Errorf("detected %d unresolved %d MTTR %v reasons %v, want 1, 1, none, timeout x1", r.Detected, r.Unresolved, r.MTTR, r.Reasons)
	}
	// Detected after the grace: a miss and a false incident.
	late := incident("slow-1", 3, 11.5, 20)
	r = rowOf(t, Evaluate(truth, []cluster.Incident{late}, nil), SlowAll)
	if r.Detected != 0 || r.Missed != 1 || r.False != 1 {
		t.Errorf("late detection: detected/missed/false = %d/%d/%d, want 0/1/1", r.Detected, r.Missed, r.False)
	}
}

func TestPercentileIsNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 20; i >= 1; i-- { // unsorted on purpose
		ds = append(ds, time.Duration(i)*time.Second)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 10 * time.Second}, {95, 19 * time.Second}, {100, 20 * time.Second}, {1, time.Second}} {
		if got := Percentile(ds, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if got := Percentile(nil, 95); got != -1 {
		t.Errorf("p95 of nothing = %v, want -1", got)
	}
	if got := Max([]time.Duration{3, 1, 2}); got != 3 {
		t.Errorf("max = %v, want 3", got)
	}
	if ds[0] != 20*time.Second {
		t.Errorf("Percentile sorted its input in place")
	}
}

func TestEvaluateChargesIncidentsDuringHostStallsToTheHost(t *testing.T) {
	truth := Truth{Grace: time.Second, Timeout: time.Second, StallMin: 500 * time.Millisecond,
		Owner: map[string]Scenario{"ok-1": NoFault, "ok-2": NoFault, "ok-3": NoFault, "ok-4": NoFault},
		Stalls: []Stall{
			{Start: at(10), Length: 1500 * time.Millisecond}, // long enough
			{Start: at(30), Length: 300 * time.Millisecond},  // too short to explain anything
		},
	}
	incidents := []cluster.Incident{
		incident("ok-1", 11.6, 12, 15), // first failure right after the stall: the host's doing
		incident("ok-2", 12.4, 13, 16), // within Timeout+1s of the stall's end: still
		incident("ok-3", 14, 15, 18),   // 2.5s after it ended: the product's
		incident("ok-4", 30.5, 31, 33), // only a short stall nearby: the product's
	}
	r := rowOf(t, Evaluate(truth, incidents, nil), NoFault)
	if r.Stalled != 2 || r.False != 2 {
		t.Fatalf("stalled/false = %d/%d, want 2/2 (stalled %v, false %v)", r.Stalled, r.False, r.StalledIncidents, r.FalseIncidents)
	}
	if r.StalledIncidents[0].Target != "ok-1" || r.FalseIncidents[0].Target != "ok-3" {
		t.Errorf("stalled %v false %v, want ok-1, ok-2 stalled and ok-3, ok-4 false", r.StalledIncidents, r.FalseIncidents)
	}
}
