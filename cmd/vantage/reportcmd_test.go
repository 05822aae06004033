package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/agent"
	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/agent/state"
	"github.com/vantage-probe/vantage/internal/testenv"
	"github.com/vantage-probe/vantage/probe/probetest"
)

// TestReportAndIncidentCommands: a real agent has an incident; `vantage
// report` and `vantage incident` read it through the agent's API while it
// runs (the state file is locked then: -state-dir says so), and from its
// state directory once it stopped; both give the same incident.
func TestReportAndIncidentCommands(t *testing.T) {
	var failing atomic.Bool
	srv := probetest.NewHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api" && failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	dir := t.TempDir()
	stateDir := filepath.Join(dir, "state")
	path := filepath.Join(dir, "vantage.toml")
	body := fmt.Sprintf(`[agent]
node = "eu-1"
region = "eu-west"
listen = "127.0.0.1:0"
state_dir = %q
[cluster]
bind = "127.0.0.1:0"
[quorum]
min_regions = 1
[defaults]
interval = "1s"
timeout = "500ms"
[slo]
objective = 0.99
[[target]]
name = "api"
type = "http"
url = "%s/api"
[[target]]
name = "web"
type = "http"
url = "%s/web"
`, stateDir, srv.URL, srv.URL)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Options{ConfigPath: path, Config: cfg, Version: "test", WatchEvery: -1, StateFlushEvery: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	base := "http://" + a.HTTPAddr()

	testenv.Poll(t, 20*time.Second, "api up", func() bool {
		st, ok := a.Cluster().Status("api")
		return ok && st.Verdict == "up"
	})
	failing.Store(true)
	testenv.Poll(t, 20*time.Second, "api's incident", func() bool { return len(a.Incidents()) == 1 })
	failing.Store(false)
	testenv.Poll(t, 20*time.Second, "api's incident resolved", func() bool { return !a.Incidents()[0].Open() })
	id := a.Incidents()[0].ID

	code, md, errs := runCLI("report", "-url", base, "-from", "1h")
	if code != exitOK {
		t.Fatalf("report -url: %d %s", code, errs)
	}
	t.Logf("vantage report -url:\n%s", md)
	for _, want := range []string{"## SLO report", "| api | 99% |", "| web | 99% | 100% | 0ms | 0.0% | 100.0% | 0 |", "### Incidents (1)",
		"status_mismatch", "`" + id + "`", "| eu-west | 1 | 1 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report -url lacks %q", want)
		}
	}
	code, tl, errs := runCLI("incident", "-url", base, id)
	if code != exitOK {
		t.Fatalf("incident -url: %d %s", code, errs)
	}
	t.Logf("vantage incident -url:\n%s", tl)
	for _, want := range []string{"incident " + id, "first failed probe in any region (status_mismatch)", "quorum reached: eu-west failing",
		"detected: verdict down published by the leader, eu-1", "resolved: the quorum saw it up again", "time to recover:"} {
		if !strings.Contains(tl, want) {
			t.Errorf("incident -url lacks %q", want)
		}
	}
	if code, _, errs := runCLI("incident", "-url", base, "nope@1"); code != exitFail || !strings.Contains(errs, "404") {
		t.Errorf("an unknown incident: %d %q", code, errs)
	}
	// The running agent holds the state file.
	if code, _, errs := runCLI("report", "-state-dir", stateDir, "-timeout", "200ms"); code != exitFail || !strings.Contains(errs, "locked") || !strings.Contains(errs, "-url") {
		t.Errorf("report -state-dir of a running agent: %d %q, want a clear lock error", code, errs)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil
	code, js, errs := runCLI("report", "-state-dir", stateDir, "-from", "1h", "-format", "json")
	if code != exitOK {
		t.Fatalf("report -state-dir: %d %s", code, errs)
	}
	var rep state.Report
	if err := json.Unmarshal([]byte(js), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Incidents) != 1 || rep.Incidents[0].ID != id || rep.Incidents[0].TTRSeconds == nil || len(rep.Targets) != 2 {
		t.Fatalf("report -state-dir: %+v", rep)
	}
	for _, tr := range rep.Targets {
		if tr.UpSeconds == nil || *tr.UpSeconds <= 0 {
			t.Errorf("%s: no SLO accounting in the state: %+v", tr.Target, tr)
		}
		if tr.Target == "api" && (tr.DowntimeSeconds <= 0 || tr.BudgetUsed <= 0 || tr.Availability >= 1) {
			t.Errorf("api: %+v, want downtime and budget spent", tr)
		}
	}
	code, csv, _ := runCLI("report", "-state-dir", stateDir, "-from", "1h", "-format", "csv", "-target", "a*")
	if lines := strings.Split(strings.TrimSpace(csv), "\n"); code != exitOK || len(lines) != 2 || !strings.HasPrefix(lines[1], "api,0.99,") {
		t.Errorf("report -format csv -target 'a*': %d\n%s", code, csv)
	}
	code, tl2, _ := runCLI("incident", "-state-dir", stateDir, id)
	if code != exitOK || tl2 != tl {
		t.Errorf("incident -state-dir: %d\n%s\nwant what the agent said:\n%s", code, tl2, tl)
	}
}
