package page

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/vantage-probe/vantage/cluster"
	"github.com/vantage-probe/vantage/exporter"
)

// fakeSource is a hand-filled exporter.Source. A fake is right here: the
// page renders values, and the agent that produces them (with real probes,
// gossip and quorum) is tested in its own packages; these tests check that
// every state a real fleet can be in is shown, escaped and ordered.
type fakeSource struct {
	self      exporter.SelfView
	targets   []exporter.TargetView
	incidents []cluster.Incident
	members   []cluster.Member
}

func (f *fakeSource) Ready() error { return nil }
func (f *fakeSource) Live() error  { return nil }

// Targets selects, orders and counts as the agent does, from the fake
// views' verdict fields when they carry no category.
func (f *fakeSource) Targets(q exporter.TargetQuery) exporter.TargetPage {
	views := slices.Clone(f.targets)
	for i := range views {
		if views[i].Category == cluster.CatUnknown {
			views[i].Category = fakeCategory(&views[i])
		}
	}
	slices.SortStableFunc(views, func(a, b exporter.TargetView) int {
		if c := a.Category.Rank() - b.Category.Rank(); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	var p exporter.TargetPage
	for _, v := range views {
		p.Counts[v.Category]++
		if !q.Match(v.Name, v.Category) {
			continue
		}
		if p.Total >= q.Offset && (q.Limit == 0 || len(p.Views) < q.Limit) {
			p.Views = append(p.Views, v)
		}
		p.Total++
	}
	return p
}

func fakeCategory(v *exporter.TargetView) cluster.Category {
	fresh := false
	for _, rv := range v.Regions {
		fresh = fresh || rv.Failing && rv.Fresh && !rv.Isolated
	}
	switch {
	case v.Maintenance:
		return cluster.CatMaintenance
	case v.Verdict == "down":
		return cluster.CatDown
	case v.Verdict == "up" && (len(v.Failing) > 0 || fresh):
		return cluster.CatFailing
	case v.Verdict == "up":
		return cluster.CatUp
	}
	return cluster.CatUnknown
}
func (f *fakeSource) Incidents() []cluster.Incident { return f.incidents }
func (f *fakeSource) Members() []cluster.Member     { return f.members }
func (f *fakeSource) Self() exporter.SelfView       { return f.self }

var _ exporter.Source = (*fakeSource)(nil)

// fixedNow is the page's clock in tests and screenshots.
var fixedNow = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

var regions3 = []string{"ap-south", "eu-west", "us-east"}

// rv is a fresh, voting region result.
func rv(region, agent string, ok, failing bool, reason string, lat time.Duration) cluster.RegionView {
	return cluster.RegionView{Region: region, Agent: agent, OK: ok, Failing: failing, Reason: reason,
		Latency: lat, Age: 4 * time.Second, Fresh: true, Assignee: true}
}

// history makes n points, one per interval ending at now; fail(i) marks
// failures.
func history(now time.Time, n int, interval, base time.Duration, fail func(i int) bool) []exporter.Point {
	r := rand.New(rand.NewPCG(uint64(n), uint64(base)))
	ps := make([]exporter.Point, n)
	for i := range ps {
		lat := base + time.Duration(r.Int64N(int64(base/2)+1))
		if i%17 == 9 {
			lat += base * 2 // the odd slow probe
		}
		ps[i] = exporter.Point{At: now.Add(-time.Duration(n-1-i) * interval), OK: !fail(i), Latency: lat}
	}
	return ps
}

func never(int) bool { return false }

func slo(avail, objective float64) *cluster.SLOStatus {
	window, observed := 28*24*time.Hour, 146*time.Hour
	return &cluster.SLOStatus{Objective: objective, Window: window, Observed: observed, Availability: avail,
		Downtime: time.Duration((1 - avail) * float64(observed)), BudgetRemaining: 1 - (1-avail)/(1-objective)}
}

// demoSource is a realistic fleet: three regions, every target state, an
// open and resolved incidents, an isolated member and a failed reload.
func demoSource(now time.Time) *fakeSource {
	owners := func(a, b, c string) map[string][]string {
		return map[string][]string{"ap-south": {a}, "eu-west": {b}, "us-east": {c}}
	}
	up := func(name, typ, ep string, lats [3]time.Duration) exporter.TargetView {
		return exporter.TargetView{Name: name, Type: typ, Endpoint: ep, Interval: "15s", Timeout: "5s",
			TargetStatus: cluster.TargetStatus{Name: name, Leader: "agent-eu-1", Verdict: "up",
				Reason: "0/3 regions failing < quorum 2, 3 reporting: up", Needed: 2, Reporting: 3,
				Assignment: owners("agent-ap-1", "agent-eu-1", "agent-us-1"),
				Regions: []cluster.RegionView{
					rv("ap-south", "agent-ap-1", true, false, "", lats[0]),
					rv("eu-west", "agent-eu-1", true, false, "", lats[1]),
					rv("us-east", "agent-us-1", true, false, "", lats[2]),
				},
				Since: now.Add(-26*time.Hour - 14*time.Minute)},
			History: history(now, 60, 15*time.Second, lats[1], never),
		}
	}
	started := now.Add(-7*time.Minute - 12*time.Second)
	open := &cluster.Incident{ID: "checkout-api@1", Target: "checkout-api", StartedAt: started,
		ConfirmAt: started.Add(400 * time.Millisecond), QuorumAt: started.Add(5200 * time.Millisecond),
		DetectedAt: started.Add(5300 * time.Millisecond), Regions: []string{"ap-south", "eu-west", "us-east"},
		QuorumRegions: []string{"eu-west", "us-east"}, Leader: "agent-eu-1", Reason: "connect_refused"}

	checkout := exporter.TargetView{Name: "checkout-api", Type: "http", Endpoint: "https://checkout.example.com/healthz",
		Labels: map[string]string{"team": "payments"}, Interval: "15s", Timeout: "5s",
		TargetStatus: cluster.TargetStatus{Name: "checkout-api", Leader: "agent-eu-1", IsLeader: true, Verdict: "down",
			Reason: "2/3 regions failing (eu-west, us-east) >= quorum 2", Needed: 2, Failing: []string{"eu-west", "us-east"},
			Reporting: 3, Assignment: owners("agent-ap-1", "agent-eu-1", "agent-us-1"),
			Regions: []cluster.RegionView{
				rv("ap-south", "agent-ap-1", true, false, "", 212*time.Millisecond),
				rv("eu-west", "agent-eu-1", false, true, "connect_refused", 3*time.Millisecond),
				rv("us-east", "agent-us-1", false, true, "connect_refused", 81*time.Millisecond),
			},
			Open: open, Since: open.DetectedAt},
		History: history(now, 60, 15*time.Second, 38*time.Millisecond, func(i int) bool { return i >= 31 }),
	}
	checkout.SLO = slo(0.99912, 0.999)
	search := exporter.TargetView{Name: "search-api", Type: "http", Endpoint: "https://search.example.com/ready",
		Interval: "30s", Timeout: "10s",
		TargetStatus: cluster.TargetStatus{Name: "search-api", Leader: "agent-us-1", Verdict: "up",
			Reason: "1/3 regions failing (ap-south) < quorum 2, 3 reporting: up", Needed: 2,
			Failing: []string{"ap-south"}, Reporting: 3, Assignment: owners("agent-ap-1", "agent-eu-2", "agent-us-1"),
			Regions: []cluster.RegionView{
				rv("ap-south", "agent-ap-1", false, true, "timeout", 10*time.Second),
				rv("eu-west", "agent-eu-2", true, false, "", 64*time.Millisecond),
				rv("us-east", "agent-us-1", true, false, "", 23*time.Millisecond),
			},
			Since: now.Add(-3 * time.Hour)},
		History: history(now, 60, 30*time.Second, 60*time.Millisecond, func(i int) bool {
			return i == 12 || i == 40 || i == 41
		}),
	}
	search.SLO = slo(0.99985, 0.999)
	resolver := exporter.TargetView{Name: "resolver", Type: "dns", Endpoint: "10.0.0.53:53 A checkout.example.com.",
		Interval: "15s", Timeout: "5s",
		TargetStatus: cluster.TargetStatus{Name: "resolver", Leader: "agent-ap-1", Verdict: "unknown",
			Reason: "only 1 region reporting, quorum 2: unknown; stale: us-east; isolated: eu-west", Needed: 2, Reporting: 1,
			Stale: []string{"us-east"}, Assignment: owners("agent-ap-1", "agent-eu-1", ""),
			Regions: []cluster.RegionView{
				rv("ap-south", "agent-ap-1", true, false, "", 2100*time.Microsecond),
				{Region: "eu-west", Agent: "agent-eu-1", OK: false, Failing: true, Reason: "timeout", Latency: 5 * time.Second,
					Age: 6 * time.Second, Fresh: true, Assignee: true, Isolated: true},
				{Region: "us-east", Agent: "agent-us-2", OK: true, Latency: 3 * time.Millisecond, Age: 2*time.Minute + 5*time.Second,
					Fresh: false, Assignee: false},
			},
			Since: now.Add(-2 * time.Minute)},
		History: history(now, 40, 15*time.Second, 2*time.Millisecond, never),
	}
	edgeCert := exporter.TargetView{Name: "edge-cert", Type: "tls", Endpoint: "edge.example.com:443",
		Interval: "1m0s", Timeout: "10s", CertWarnDays: 14,
		TargetStatus: cluster.TargetStatus{Name: "edge-cert", Leader: "agent-us-1", Verdict: "down",
			Reason: "3/3 regions failing (ap-south, eu-west, us-east) >= quorum 2", Needed: 2,
			Failing: regions3, Reporting: 3, Maintenance: true, Assignment: owners("agent-ap-1", "agent-eu-1", "agent-us-1"),
			Regions: []cluster.RegionView{
				rv("ap-south", "agent-ap-1", false, true, "cert_expiring", 180*time.Millisecond),
				rv("eu-west", "agent-eu-1", false, true, "cert_expiring", 41*time.Millisecond),
				rv("us-east", "agent-us-1", false, true, "cert_expiring", 77*time.Millisecond),
			},
			Since: now.Add(-40 * time.Minute)},
		History: history(now, 30, time.Minute, 50*time.Millisecond, func(int) bool { return true }),
	}
	// Its certificate is 5 days from expiry (under min_days_left 14) in
	// one region, further in the others; the checkout API's is 60 days off.
	for i := range edgeCert.Regions {
		edgeCert.Regions[i].CertExpiry = now.Add(time.Duration(5+i) * 24 * time.Hour).Add(time.Hour)
	}
	checkout.CertWarnDays = 14
	for i := range checkout.Regions {
		checkout.Regions[i].CertExpiry = now.Add(60*24*time.Hour + time.Hour)
	}
	// A new target nobody has probed yet, and one probed only from two
	// regions (regions = ["eu-west", "us-east"]), whose last probe in
	// us-east failed once, below the threshold.
	fresh := exporter.TargetView{Name: "billing-db", Type: "tcp", Endpoint: "db.internal:5432", Interval: "30s", Timeout: "5s",
		TargetStatus: cluster.TargetStatus{Name: "billing-db", Verdict: "unknown",
			Reason: "no region reporting, quorum 2: unknown; stale: ap-south, eu-west, us-east", Needed: 2,
			Stale: regions3, Regions: []cluster.RegionView{{Region: "ap-south"}, {Region: "eu-west"}, {Region: "us-east"}}}}
	twoRegions := exporter.TargetView{Name: "ledger", Type: "tcp", Endpoint: "ledger.internal:7000", Interval: "15s", Timeout: "5s",
		TargetStatus: cluster.TargetStatus{Name: "ledger", Leader: "agent-eu-2", Verdict: "up",
			Reason: "0/2 regions failing < quorum 2, 2 reporting: up", Needed: 2, Reporting: 2,
			Regions: []cluster.RegionView{
				rv("eu-west", "agent-eu-2", true, false, "", 900*time.Microsecond),
				rv("us-east", "agent-us-1", false, false, "io_error", 74*time.Millisecond),
			}, Since: now.Add(-5 * 24 * time.Hour)},
		History: history(now, 60, 15*time.Second, time.Millisecond, func(i int) bool { return i == 59 }),
	}
	twoRegions.SLO = slo(0.99999, 0.9995)
	resolvedStart := now.Add(-5*time.Hour - 3*time.Minute)
	resolved := []cluster.Incident{
		{ID: "search-api@2", Target: "search-api", StartedAt: resolvedStart, DetectedAt: resolvedStart.Add(7400 * time.Millisecond),
			ResolvedAt: resolvedStart.Add(4*time.Minute + 31*time.Second), Regions: []string{"eu-west", "us-east"},
			Leader: "agent-us-1", Reason: "status_mismatch", Flaps: 2},
		{ID: "resolver@3", Target: "resolver", StartedAt: now.Add(-27 * time.Hour), DetectedAt: now.Add(-27*time.Hour + 6*time.Second),
			ResolvedAt: now.Add(-26*time.Hour - 12*time.Minute), Regions: regions3, Leader: "agent-ap-1", Reason: "timeout"},
	}

	return &fakeSource{
		self: exporter.SelfView{Node: "agent-eu-1", AgentID: "agent-eu-1", Region: "eu-west", Version: "v0.9.2",
			Started: now.Add(-6*24*time.Hour - 2*time.Hour), Isolated: true, ConfigFile: "/etc/vantage/vantage.toml",
			ConfigOK: false, ConfigError: `/etc/vantage/conf.d/payments.toml:14:3: target "checkout-cert": tls.min_days_left: must be >= 0, got -3`,
			LastReload: now.Add(-3 * time.Hour), TargetsProbed: 6},
		targets: []exporter.TargetView{
			up("auth-api", "http", "https://auth.example.com/healthz", [3]time.Duration{188 * time.Millisecond, 24 * time.Millisecond, 97 * time.Millisecond}),
			checkout, search, resolver, edgeCert, fresh, twoRegions,
			up("cdn-origin", "http", "https://origin.example.com/", [3]time.Duration{240 * time.Millisecond, 31 * time.Millisecond, 88 * time.Millisecond}),
		},
		incidents: append([]cluster.Incident{*open}, resolved...),
		members: []cluster.Member{
			{Name: "agent-eu-1", AgentID: "agent-eu-1", Region: "eu-west", Addr: "10.0.1.5:7946", State: cluster.Alive, Version: "v0.9.2", Isolated: true, Targets: 6, SameConf: true, Self: true},
			{Name: "agent-eu-2", AgentID: "agent-eu-2", Region: "eu-west", Addr: "10.0.1.6:7946", State: cluster.Alive, Version: "v0.9.2", Targets: 3, SameConf: true},
			{Name: "agent-us-1", AgentID: "agent-us-1", Region: "us-east", Addr: "10.0.2.5:7946", State: cluster.Alive, Version: "v0.9.2", Targets: 8, SameConf: true},
			{Name: "agent-us-2", AgentID: "agent-us-2", Region: "us-east", Addr: "10.0.2.6:7946", State: cluster.Dead, Version: "v0.9.1", Targets: 0, SameConf: false},
			{Name: "agent-ap-1", AgentID: "agent-ap-1", Region: "ap-south", Addr: "10.0.3.5:7946", State: cluster.Alive, Version: "v0.9.2", Targets: 9, SameConf: true},
			{Name: "agent-ap-2", AgentID: "agent-ap-2", Region: "ap-south", Addr: "10.0.3.6:7946", State: cluster.Suspect, Version: "v0.9.2", Targets: 0, SameConf: true},
			{Name: "agent-ap-3", AgentID: "agent-ap-3", Region: "ap-south", Addr: "10.0.3.7:7946", State: cluster.Left, Version: "v0.9.2", SameConf: true},
		},
	}
}

// hostileSource is demoSource plus a target whose name and endpoint are
// markup: it must show as text.
func hostileSource(now time.Time) *fakeSource {
	src := demoSource(now)
	h := src.targets[0] // auth-api: up everywhere
	h.Name, h.Endpoint = `<script>alert("x")</script>`, `https://evil.example.com/?q=<b>&x="y"`
	h.TargetStatus.Name = h.Name
	src.targets = append(src.targets, h)
	return src
}

// bigSource is n targets in three regions with a full history each, about
// one in fifty failing somewhere: the benchmark's fleet.
func bigSource(now time.Time, n int) *fakeSource {
	src := demoSource(now)
	src.self.Isolated, src.self.ConfigOK = false, true
	src.targets = make([]exporter.TargetView, n)
	for i := range src.targets {
		name := fmt.Sprintf("svc-%04d", i)
		failing := i%50 == 7
		regs := []cluster.RegionView{
			rv("ap-south", "agent-ap-1", true, false, "", 120*time.Millisecond),
			rv("eu-west", "agent-eu-1", !failing, failing, map[bool]string{true: "timeout"}[failing], 20*time.Millisecond),
			rv("us-east", "agent-us-1", true, false, "", 70*time.Millisecond),
		}
		var fl []string
		if failing {
			fl = []string{"eu-west"}
		}
		src.targets[i] = exporter.TargetView{Name: name, Type: "http", Endpoint: "https://" + name + ".internal.example.com/healthz",
			Interval: "15s", Timeout: "5s",
			TargetStatus: cluster.TargetStatus{Name: name, Leader: "agent-eu-1", Verdict: "up", Needed: 2, Reporting: 3,
				Failing: fl, Reason: "0/3 regions failing < quorum 2, 3 reporting: up", Regions: regs, Since: now.Add(-time.Hour),
				SLO: slo(0.9995, 0.999)},
			History: history(now, 60, 15*time.Second, 20*time.Millisecond, func(j int) bool { return failing && j > 55 }),
		}
	}
	return src
}
