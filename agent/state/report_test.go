package state

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/cluster"
)

// A day of a 99.9% target with a 43.2 s incident spends half its budget
// (86.4 s a day); the incident half inside the period counts half; one
// that started before the target was known counts from then.
func TestBuildReportFigures(t *testing.T) {
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	inc := func(target string, start time.Time, d time.Duration, regions ...string) cluster.Incident {
		in := incident(target, start, d)
		in.Regions, in.QuorumRegions = regions, regions[:1]
		return in
	}
	in := ReportInput{
		Source: "test", Now: day.Add(48 * time.Hour),
		Targets: map[string]TargetMeta{
			"api": {FirstSeen: day.Add(-time.Hour), Objective: 0.999},
			"web": {FirstSeen: day.Add(12 * time.Hour), Objective: 0.99},
			"db":  {FirstSeen: day.Add(-time.Hour), Objective: 0.999},
		},
		Incidents: []cluster.Incident{
			inc("api", day.Add(10*time.Hour), 43200*time.Millisecond, "eu", "us"),
			inc("db", day.Add(-time.Minute), 2*time.Minute, "us"),      // half inside
			inc("web", day.Add(11*time.Hour), 2*time.Hour, "ap", "eu"), // before web was known: from 12:00
			inc("api", day.Add(30*time.Hour), time.Minute, "eu"),       // after the period
		},
		SLO: map[string]Counts{"api": {Up: 23 * time.Hour, Down: time.Minute, Unknown: 59 * time.Minute}},
	}
	r := BuildReport(in, ReportQuery{From: day, To: day.Add(24 * time.Hour)})
	by := map[string]TargetReport{}
	for _, tr := range r.Targets {
		by[tr.Target] = tr
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if api := by["api"]; !near(api.DowntimeSeconds, 43.2) || !near(api.BudgetUsed, 0.5) || !near(api.BudgetLeft, 0.5) || api.Incidents != 1 ||
		!near(api.Availability, 1-43.2/86400) || api.UpSeconds == nil || *api.UpSeconds != 23*3600 {
		t.Errorf("api: %+v", api)
	}
	if db := by["db"]; !near(db.DowntimeSeconds, 60) || db.Incidents != 1 {
		t.Errorf("db: %+v", db)
	}
	if web := by["web"]; !near(web.ObservedSeconds, 12*3600) || !near(web.DowntimeSeconds, 3600) || web.UpSeconds != nil {
		t.Errorf("web: %+v", web)
	}
	if len(r.Incidents) != 3 || r.Incidents[0].Target != "db" {
		t.Errorf("incidents of the period: %+v", r.Incidents)
	}
	// Worst regions: eu failed in two incidents, us in two, ap in one;
	// eu's lasted longer.
	if len(r.Regions) != 3 || r.Regions[0].Region != "eu" || r.Regions[0].Incidents != 2 || r.Regions[2].Region != "ap" {
		t.Errorf("regions: %+v", r.Regions)
	}
	// Worst availability first.
	if r.Targets[0].Target != "web" {
		t.Errorf("targets not worst first: %+v", r.Targets)
	}
	r2 := BuildReport(in, ReportQuery{From: day, To: day.Add(24 * time.Hour), Target: "a*"})
	if len(r2.Targets) != 1 || len(r2.Incidents) != 1 {
		t.Errorf("-target a*: %+v", r2)
	}
	var md bytes.Buffer
	if err := r.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| api | 99.9% | 99.95% | 43.2s | 50.0% | 50.0% | 1 |", "| web | 99% | 91.667% | 1h00m | 833.3% | -733.3% | 1 |", "### Incidents (3)"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
}
