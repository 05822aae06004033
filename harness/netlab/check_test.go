package netlab

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Unix(1_800_000_000, 0) // a multiple of every interval used here

// steady returns one probe per interval of target from agent (in region),
// at phase offset off, for n intervals from t0.
func steady(target, agent, region string, off time.Duration, n int) []Hit {
	var out []Hit
	for i := range n {
		out = append(out, Hit{At: t0.Add(time.Duration(i)*5*time.Second + off), Target: target, Agent: agent, Region: region})
	}
	return out
}

func plan(d ...Disturbance) ProbePlan {
	return ProbePlan{Interval: 5 * time.Second, Grace: 15 * time.Second, Regions: []string{"eu", "us"}, Replicas: 1,
		From: t0, To: t0.Add(100 * time.Second), Targets: []string{"a"}, Disturbed: d}
}

func TestCheckProbesSteadyIsClean(t *testing.T) {
	// Phases near a window's edge, with jitter either side of it.
	hits := append(steady("a", "eu-1", "eu", 4990*time.Millisecond, 20), steady("a", "us-1", "us", 10*time.Millisecond, 20)...)
	hits[7].At = hits[7].At.Add(20 * time.Millisecond) // late: into the next window
	pc := CheckProbes(plan(), hits)
	if len(pc.Violations) != 0 {
		t.Fatalf("violations on a steady fleet: %v", pc.Violations)
	}
	if pc.Judged < 30 || pc.Probes < pc.Judged-2 {
		t.Errorf("judged %d windows with %d probes", pc.Judged, pc.Probes)
	}
}

func TestCheckProbesFindsAFormerOwner(t *testing.T) {
	hits := append(steady("a", "eu-1", "eu", time.Second, 20), steady("a", "us-1", "us", 2*time.Second, 20)...)
	// eu-2 took over at 30s; eu-1 never stops.
	hits = append(hits, steady("a", "eu-2", "eu", time.Second, 20)[6:]...)
	change := Disturbance{Target: "a", Region: "eu", Span: Span{From: t0.Add(29 * time.Second), To: t0.Add(30 * time.Second)}}
	pc := CheckProbes(plan(change), hits)
	if len(pc.Violations) != 1 {
		t.Fatalf("want one violation for (a, eu), got %v", pc.Violations)
	}
	v := pc.Violations[0]
	if v.Inv != AssigneesOnly || v.Target != "a" || strings.Join(v.Agents, ",") != "eu-1,eu-2" ||
		!strings.Contains(v.Detail, "more than 1 agent of eu") {
		t.Errorf("violation %v", v)
	}
	if v.At.Before(change.To.Add(15 * time.Second)) {
		t.Errorf("judged from %v, within the grace after the change at %v", v.At, change.To)
	}
}

func TestCheckProbesGraceExcusesAHandover(t *testing.T) {
	hits := append(steady("a", "eu-1", "eu", time.Second, 8), steady("a", "us-1", "us", 2*time.Second, 20)...)
	// eu-2 took over at 30s; eu-1 probes 2 more intervals, within the grace.
	hits = append(hits, steady("a", "eu-2", "eu", time.Second, 20)[6:]...)
	change := Disturbance{Target: "a", Region: "eu", Span: Span{From: t0.Add(29 * time.Second), To: t0.Add(30 * time.Second)}}
	if pc := CheckProbes(plan(change), hits); len(pc.Violations) != 0 {
		t.Fatalf("a handover within the grace: %v", pc.Violations)
	}
}

func TestCheckProbesCountsExcessAndGaps(t *testing.T) {
	hits := steady("a", "us-1", "us", 2*time.Second, 20)
	hits = append(hits, steady("a", "us-1", "us", 3*time.Second, 20)...) // twice per interval
	pc := CheckProbes(plan(), hits)
	var details []string
	for _, v := range pc.Violations {
		details = append(details, v.Detail)
	}
	got := strings.Join(details, "; ")
	if !strings.Contains(got, "excess probes from us: 40 in 20 intervals") || !strings.Contains(got, "too few probes from eu: 0 in 20") {
		t.Errorf("violations: %s", got)
	}
}

func TestCheckProbesRemovedTarget(t *testing.T) {
	p := plan()
	p.Regions = []string{"eu"}
	removedAt := t0.Add(40 * time.Second)
	p.Configured = func(_ string, at time.Time) bool { return at.Before(removedAt) }
	hits := steady("a", "eu-1", "eu", time.Second, 20) // never stops
	pc := CheckProbes(p, hits)
	if len(pc.Violations) != 1 || !strings.Contains(pc.Violations[0].Detail, "removed from the config") {
		t.Fatalf("violations: %v", pc.Violations)
	}
	if at := pc.Violations[0].At; at.Before(removedAt.Add(15 * time.Second)) {
		t.Errorf("removed-target probe reported at %v, within the grace", at)
	}
}

func TestCheckIncidents(t *testing.T) {
	outages := []Outage{
		{Target: "a", On: t0, Off: t0.Add(25 * time.Second)},
		{Target: "b", On: t0, Off: t0.Add(25 * time.Second)},
		{Target: "c", On: t0, Off: t0.Add(25 * time.Second)},
	}
	ins := []Incident{
		{ID: "a@1", Target: "a", DetectedAt: t0.Add(2 * time.Second), Leader: "x"},
		{ID: "a@2", Target: "a", DetectedAt: t0.Add(20 * time.Second), Leader: "x"}, // a second one
		{ID: "c@1", Target: "c", DetectedAt: t0.Add(27 * time.Second), Leader: "y"}, // within the slack
		{ID: "d@1", Target: "d", DetectedAt: t0.Add(5 * time.Second), Leader: "z"},  // no fault
	}
	vs := CheckIncidents(outages, ins, 5*time.Second)
	var got []string
	for _, v := range vs {
		got = append(got, v.Inv.String()+":"+v.Target)
	}
	want := "no-false-incident:d no-false-incident:a outage-detected:b" // in detection order, misses last
	if strings.Join(got, " ") != want {
		t.Errorf("violations %v, want %s", got, want)
	}
	if outages[0].Detected != 2*time.Second || outages[2].Detected != 27*time.Second || outages[1].Incident != "" {
		t.Errorf("detections: %+v", outages)
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP vantage_target_up x
# TYPE vantage_target_up gauge
vantage_target_up{target="t01",type="http",team="a \"b\" c"} 1
vantage_target_up{target="t02",type="http"} 0
probe_success{target="t01",type="http",region="eu-west"} 1
vantage_incidents_total{target="t01",type="http"} 3
vantage_cluster_members{region="eu-west",state="alive"} 2
vantage_cluster_members{region="us-east",state="alive"} 1
vantage_cluster_members{region="us-east",state="dead"} 1
vantage_region_isolated{region="eu-west"} 1
vantage_targets_assigned 4
vantage_config_last_reload_successful 0
vantage_config_last_reload_success_timestamp_seconds 1.8e+09
go_goroutines 12
`
	s, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Up) != 2 || s.Up["t01"] != 1 || !s.Probed["t01"] || s.Incidents["t01"] != 3 || s.Alive != 3 ||
		!s.Isolated || s.Assigned != 4 || s.ReloadOK != 0 || s.ReloadTS != 1.8e9 {
		t.Errorf("parsed %+v", s)
	}
	if _, err := parseMetrics(strings.NewReader("vantage_target_up{target=\"x} 1\n")); err == nil {
		t.Error("an unterminated label value parsed")
	}
}

func TestReportAttributesViolations(t *testing.T) {
	r := &Report{
		Plays: []Play{{Scenario: "start", From: t0, To: t0.Add(time.Minute), Recovered: 5 * time.Second},
			{Scenario: "kill-restart", From: t0.Add(time.Minute), To: t0.Add(3 * time.Minute), Recovered: -1}},
		Outages: []Outage{{Target: "a", Scenario: "kill-restart", Incident: "a@1", Detected: 3 * time.Second},
			{Target: "b", Scenario: "kill-restart"}},
		Violations: []Violation{{Inv: OneExporter, At: t0.Add(90 * time.Second)},
			{Inv: OutageDetected, At: t0.Add(100 * time.Second)}, {Inv: HealthyAgents, At: t0.Add(4 * time.Minute)}},
	}
	r.build()
	if len(r.Rows) != 3 {
		t.Fatalf("rows %+v", r.Rows)
	}
	kr := r.Rows[1]
	if kr.Scenario != "kill-restart" || kr.Violations[OneExporter] != 1 || kr.Violations[OutageDetected] != 1 ||
		kr.Outages != 2 || kr.Detected != 1 {
		t.Errorf("kill-restart row %+v", kr)
	}
	if r.Rows[2].Scenario != "between scenarios" || r.Rows[2].Violations[HealthyAgents] != 1 {
		t.Errorf("last row %+v", r.Rows[2])
	}
	var b strings.Builder
	if err := r.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "| an agent SIGKILLed, restarted with the same node name; an outage on a target it led (`kill-restart`) | 1 | 1 | 0 | 0 | 1 | 0 | 2 | 1 | 3.0s | 3.0s | no |") {
		t.Errorf("markdown:\n%s", b.String())
	}
	if r.OK() {
		t.Error("a report with violations is OK")
	}
}
