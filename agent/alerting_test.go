package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/cluster"
	"github.com/vantage-probe/vantage/exporter/alertmanager/amtest"
	"github.com/vantage-probe/vantage/exporter/rules"
	"github.com/vantage-probe/vantage/internal/promtest"
	"github.com/vantage-probe/vantage/internal/testenv"
	"github.com/vantage-probe/vantage/probe/probetest"
)

// fastCluster are loopback memberlist timings: a dead agent is found in
// about two seconds.
func fastCluster(c *cluster.Config) {
	c.ProbeInterval = 500 * time.Millisecond
	c.ProbeTimeout = 200 * time.Millisecond
	c.SuspicionMult = 2
	c.GossipInterval = 100 * time.Millisecond
	c.HeartbeatEvery = time.Second
	c.PushPull = 5 * time.Second
	c.Grace = 10 * time.Second
}

// testFleet starts one agent per region on loopback, all with the same
// targets and [alerting] extra, joined to the first; they stop at cleanup.
func testFleet(t *testing.T, regions []string, targets, extra string) []*Agent {
	t.Helper()
	var out []*Agent
	seed := ""
	for i, r := range regions {
		a := startFleetAgent(t, seed, fmt.Sprintf("%s-%d", r, i), r, targets, extra)
		if seed == "" {
			seed = a.Cluster().LocalAddr()
		}
		out = append(out, a)
	}
	waitAlive(t, out)
	return out
}

// startFleetAgent starts one agent joined to seed ("" for none); it stops
// at cleanup.
func startFleetAgent(t *testing.T, seed, node, region, targets, extra string) *Agent {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vantage.toml")
	join := ""
	if seed != "" {
		join = fmt.Sprintf("join = [%q]\n", seed)
	}
	writeConfig(t, path, fmt.Sprintf(`
[agent]
node = %q
region = %q
listen = "127.0.0.1:0"
[cluster]
bind = "127.0.0.1:0"
%s
[quorum]
min_regions = 2
[defaults]
interval = "1s"
timeout = "500ms"
%s
%s`, node, region, join, extra, targets))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{ConfigPath: path, Config: cfg, Version: "test", WatchEvery: -1, ClusterTuning: fastCluster})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return a
}

// waitAlive waits until every agent sees every agent alive.
func waitAlive(t *testing.T, fleet []*Agent) {
	t.Helper()
	testenv.Poll(t, 20*time.Second, "every agent to see every agent alive", func() bool {
		for _, a := range fleet {
			alive := 0
			for _, m := range a.Members() {
				if m.State == cluster.Alive {
					alive++
				}
			}
			if alive != len(fleet) {
				return false
			}
		}
		return true
	})
}

// TestDirectAlertIsTheRuleAlert: the agents page Alertmanager themselves,
// and a real Prometheus evaluates the generated rules against the same
// agents and sends to the same Alertmanager, its backstop gate disabled
// (it drops vantage_alerting_healthy at scrape, as if the direct path were
// broken) so that both paths fire. Alertmanager must hold one alert for the
// outage, not two: the labels are equal. Its webhook is notified once; the
// outage ends once.
func TestDirectAlertIsTheRuleAlert(t *testing.T) {
	amtest.Need(t)
	testenv.RequireBinary(t, "prometheus", "prometheus")
	if testing.Short() {
		t.Skip("runs Alertmanager, Prometheus and three agents")
	}
	var failing atomic.Bool
	srv, err := probetest.StartHTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	am := amtest.StartForTest(t, amtest.Options{GroupWait: time.Millisecond, GroupInterval: time.Second, InhibitRules: rules.InhibitRulesYAML()})

	targets := fmt.Sprintf(`
[[target]]
name = "checkout"
type = "http"
url = %q
labels = { team = "payments", runbook = "https://wiki.example.com/rb/checkout" }
`, srv.URL)
	fleet := testFleet(t, []string{"eu-west", "us-east", "ap-south"}, targets, fmt.Sprintf(`
[alerting]
alertmanagers = [%q]
resend_interval = "2s"
external_labels = { cluster = "test" }
`, am.URL()))

	cfg, err := config.Parse("fleet.toml", []byte(targets))
	if err != nil {
		t.Fatal(err)
	}
	yml, err := rules.Generate(cfg, rules.Options{Job: "vantage"})
	if err != nil {
		t.Fatal(err)
	}
	var scrape []string
	for _, a := range fleet {
		scrape = append(scrape, "'"+a.HTTPAddr()+"'")
	}
	prom, err := promtest.Start(t.Context(), t.TempDir(), promtest.Options{
		Rules: map[string][]byte{"vantage.yml": yml},
		Config: `global:
  scrape_interval: 1s
  evaluation_interval: 1s
  external_labels: { cluster: test }
rule_files:{{RULES}}alerting:
  alertmanagers:
    - static_configs: [{ targets: ['` + strings.TrimPrefix(am.URL(), "http://") + `'] }]
scrape_configs:
  - job_name: vantage
    static_configs: [{ targets: [` + strings.Join(scrape, ", ") + `] }]
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: vantage_alerting_healthy
        action: drop
`})
	if err != nil {
		t.Fatal(err)
	}
	defer prom.Close()
	testenv.Poll(t, 30*time.Second, "Prometheus to scrape a verdict of checkout", func() bool {
		v, err := prom.Query(t.Context(), `vantage_target_up{target="checkout"}`)
		return err == nil && len(v) == 1
	})

	failing.Store(true)
	var promAlert map[string]string
	testenv.Poll(t, 30*time.Second, "the rule's VantageTargetDown to fire in Prometheus", func() bool {
		v, err := prom.Query(t.Context(), `ALERTS{alertname="VantageTargetDown",alertstate="firing"}`)
		if err != nil || len(v) != 1 {
			return false
		}
		promAlert = v[0].Metric
		return true
	})
	// What Prometheus sends: the alert's labels and its external labels.
	delete(promAlert, "__name__")
	delete(promAlert, "alertstate")
	promAlert["cluster"] = "test"

	// Both paths have sent; give each one more resend, then Alertmanager
	// must hold exactly one alert, with the labels of both.
	time.Sleep(3 * time.Second) // two resends of each path; nothing to poll for: the claim is that nothing changes
	alerts, err := am.Alerts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var down []amtest.ActiveAlert
	for _, a := range alerts {
		if a.Labels["alertname"] == rules.AlertTargetDown {
			down = append(down, a)
		}
	}
	if len(down) != 1 {
		t.Fatalf("Alertmanager holds %d VantageTargetDown alerts, want 1 (the two paths merged): %+v", len(down), down)
	}
	if !maps.Equal(down[0].Labels, promAlert) {
		t.Errorf("labels differ:\n direct+merged %v\n rule          %v", down[0].Labels, promAlert)
	}
	if !strings.Contains(down[0].GeneratorURL, "?target=checkout") && !strings.Contains(down[0].GeneratorURL, "/graph") {
		t.Errorf("generatorURL %q", down[0].GeneratorURL)
	}

	failing.Store(false)
	notes, err := am.WaitNotifications(t.Context(), func(ns []amtest.Notification) bool {
		return slices.ContainsFunc(ns, func(n amtest.Notification) bool { return n.Status == "resolved" })
	})
	if err != nil {
		t.Fatalf("no resolved notification: %v\n%s", err, am.Logs())
	}
	// One outage, one page: VantageTargetDown once (both paths merged).
	// The burn it causes is inhibited while it fires. Once it resolves the
	// burn may page: this Prometheus holds seconds of history, so a
	// seconds-long outage is a day's rate far over any budget (in
	// production it is not), and that is the burn rule doing its job.
	var downFiring int
	var downEnded time.Time
	for _, n := range notes {
		for _, a := range n.Alerts {
			if a.Labels["alertname"] == rules.AlertTargetDown && a.Status == "resolved" {
				downEnded = a.EndsAt
			}
		}
		if n.GroupLabels["alertname"] == rules.AlertTargetDown && n.Status == "firing" {
			downFiring++
		}
	}
	if downFiring != 1 {
		t.Errorf("%d firing VantageTargetDown notifications for one outage, want 1: %+v", downFiring, notes)
	}
	if downEnded.IsZero() {
		t.Fatalf("no resolved VantageTargetDown: %+v", notes)
	}
	for _, n := range notes {
		if n.GroupLabels["alertname"] != rules.AlertTargetDown && n.Status == "firing" && n.Received.Before(downEnded) {
			t.Errorf("%s paged at %v while VantageTargetDown fired (until %v): the inhibition failed", n.GroupLabels["alertname"], n.Received, downEnded)
		}
	}
}

// The alert the leader sends names the target's endpoint redacted: a
// token in the URL reaches neither Alertmanager nor its receivers.
func TestDirectAlertRedactsTheEndpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vantage.toml")
	writeConfig(t, path, baseConfig(`
[[target]]
name = "api"
type = "http"
url = "https://probe:s3cret-pass@api.example.com/health?token=s3cret"
`))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	al := targetDownAlert(cfg, cfg.Target("api"), &cluster.LedIncident{
		Incident: cluster.Incident{Target: "api", Reason: "status_mismatch", StartedAt: now, DetectedAt: now, Regions: []string{"eu-west"}},
		Failing:  []string{"eu-west"}, Reporting: 1, Needed: 1,
	})
	b, err := json.Marshal(al)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "s3cret") || !strings.Contains(string(b), "probe:xxxxx@api.example.com/health?token=xxxxx") {
		t.Errorf("alert %s: want the endpoint, redacted", b)
	}
}
