package agent

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/internal/testenv"
	"github.com/vantage-probe/vantage/probe/probetest"
)

// testAgent starts an agent from a config file and stops it at cleanup.
func testAgent(t *testing.T, path string) *Agent {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{ConfigPath: path, Config: cfg, Version: "test", WatchEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent stopped with %v", err)
		}
	})
	return a
}

func writeConfig(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func scrape(t *testing.T, a *Agent) string {
	t.Helper()
	_, body := get(t, a, "/metrics")
	return body
}

// get fetches path from the agent's HTTP server.
func get(t *testing.T, a *Agent, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + a.HTTPAddr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// value returns the sample value of the first line starting with series.
func value(metrics, series string) (float64, bool) {
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, series+" ") {
			v, err := strconv.ParseFloat(strings.TrimPrefix(line, series+" "), 64)
			return v, err == nil
		}
	}
	return 0, false
}

func baseConfig(extra string) string {
	return `
[agent]
node = "t1"
region = "eu-west"
listen = "127.0.0.1:0"
[cluster]
bind = "127.0.0.1:0"
[defaults]
interval = "1s"
timeout = "500ms"
` + extra
}

func TestAgentProbesAndExportsPromtoolCleanMetrics(t *testing.T) {
	var hits atomic.Int64
	srv, err := probetest.StartHTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprintln(w, "ok")
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	refused, err := probetest.ReserveRefusedAddr()
	if err != nil {
		t.Fatal(err)
	}
	defer refused.Close()
	path := filepath.Join(t.TempDir(), "vantage.toml")
	writeConfig(t, path, baseConfig(fmt.Sprintf(`
[[target]]
name = "web"
type = "http"
url = "%s/healthz"
labels = { team = "sre", severity = "page" }
[[target]]
name = "db"
type = "tcp"
address = "%s"
`, srv.URL, refused.Addr)))
	a := testAgent(t, path)
	var m string
	testenv.Poll(t, 10*time.Second, "both targets probed", func() bool {
		m = scrape(t, a)
		_, web := value(m, `probe_success{target="web",type="http",severity="page",team="sre",region="eu-west"}`)
		_, db := value(m, `probe_success{target="db",type="tcp",region="eu-west"}`)
		return web && db
	})
	if v, _ := value(m, `probe_success{target="web",type="http",severity="page",team="sre",region="eu-west"}`); v != 1 {
		t.Errorf("web probe_success = %v, want 1", v)
	}
	if v, _ := value(m, `probe_success{target="db",type="tcp",region="eu-west"}`); v != 0 {
		t.Errorf("db probe_success = %v, want 0", v)
	}
	if v, ok := value(m, `vantage_region_isolated{region="eu-west"}`); !ok || v != 0 {
		t.Errorf("vantage_region_isolated{region=\"eu-west\"} = %v (present %v), want 0", v, ok)
	}
	// A cluster of one decides alone: db is down by "quorum" of its one region.
	testenv.Poll(t, 5*time.Second, "verdicts", func() bool {
		m = scrape(t, a)
		up, ok := value(m, `vantage_target_up{target="db",type="tcp"}`)
		return ok && up == 0
	})
	if promtool := testenv.RequireBinary(t, "prometheus", "promtool"); promtool != "" {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(m)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool check metrics: %v\n%s", err, out)
		}
	} else {
		t.Log("promtool not installed; exposition not linted")
	}
	for _, name := range []string{"vantage_build_info", "vantage_config_last_reload_successful", "vantage_cluster_members",
		"vantage_probes_total", "probe_http_duration_seconds", "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(m, "\n"+name) {
			t.Errorf("metric %s missing", name)
		}
	}
	if hits.Load() == 0 {
		t.Error("the HTTP target was never hit")
	}
}

func TestReloadKeepsLastGoodConfigAndCounters(t *testing.T) {
	srv, err := probetest.StartHTTP(probetest.HTTPRespond(200, "ok"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "vantage.toml")
	two := baseConfig(fmt.Sprintf(`
[[target]]
name = "keep"
type = "http"
url = "%[1]s/a"
[[target]]
name = "drop"
type = "http"
url = "%[1]s/b"
`, srv.URL))
	writeConfig(t, path, two)
	a := testAgent(t, path)
	keep := `vantage_probes_total{target="keep",type="http",region="eu-west",result="success"}`
	var before float64
	testenv.Poll(t, 10*time.Second, "a few probes of keep", func() bool {
		before, _ = value(scrape(t, a), keep)
		return before >= 2
	})

	// A broken edit: reported, and nothing changes.
	writeConfig(t, path, two+"\n[[target]]\nname = \"keep\"\ntype = \"http\"\nurl = \"nope\"\n")
	err = a.Reload(Overrides{})
	if err == nil {
		t.Fatal("reload of a broken file succeeded")
	}
	if !strings.Contains(err.Error(), "vantage.toml:") {
		t.Errorf("reload error does not name the file and line: %v", err)
	}
	m := scrape(t, a)
	if v, _ := value(m, "vantage_config_last_reload_successful"); v != 0 {
		t.Errorf("vantage_config_last_reload_successful = %v after a bad reload, want 0", v)
	}
	if len(a.Config().Targets) != 2 {
		t.Fatalf("bad reload changed the running config: %d targets", len(a.Config().Targets))
	}

	// A good edit that removes a target: its series vanish, the unchanged
	// target keeps its counters (no reset to zero).
	writeConfig(t, path, baseConfig(fmt.Sprintf(`
[[target]]
name = "keep"
type = "http"
url = "%s/a"
`, srv.URL)))
	if err := a.Reload(Overrides{}); err != nil {
		t.Fatal(err)
	}
	m = scrape(t, a)
	if strings.Contains(m, `target="drop"`) {
		t.Error("series of the removed target still exported")
	}
	after, _ := value(m, keep)
	if after < before {
		t.Errorf("unchanged target's counter went from %v to %v across reload", before, after)
	}
	if v, _ := value(m, "vantage_config_last_reload_successful"); v != 1 {
		t.Errorf("vantage_config_last_reload_successful = %v after a good reload, want 1", v)
	}
}

func TestFileChangeTriggersReload(t *testing.T) {
	srv, err := probetest.StartHTTP(probetest.HTTPRespond(200, "ok"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "vantage.toml")
	writeConfig(t, path, baseConfig(fmt.Sprintf("[[target]]\nname = \"a\"\ntype = \"http\"\nurl = \"%s\"\n", srv.URL)))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{ConfigPath: path, Config: cfg, WatchEvery: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	// mtime resolution can be coarse: make sure the new file looks newer.
	time.Sleep(10 * time.Millisecond)
	writeConfig(t, path, baseConfig(fmt.Sprintf("[[target]]\nname = \"a\"\ntype = \"http\"\nurl = \"%[1]s\"\n[[target]]\nname = \"b\"\ntype = \"http\"\nurl = \"%[1]s\"\n", srv.URL)))
	now := time.Now().Add(time.Second)
	_ = os.Chtimes(path, now, now)
	testenv.Poll(t, 10*time.Second, "the watcher to load the second target", func() bool { return len(a.Config().Targets) == 2 })
}

func TestNonLoopbackBindWithoutKeyIsRefused(t *testing.T) {
	cfg, err := config.Parse("v.toml", []byte(`
[agent]
node = "x"
listen = "127.0.0.1:0"
[cluster]
bind = "0.0.0.0:0"
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(Options{Config: cfg})
	if err == nil || !strings.Contains(err.Error(), "vantage keygen") {
		t.Fatalf("want a refusal that explains how to make a key, got %v", err)
	}
}

// TestPrometheusScrapesAgent runs a real Prometheus against the agent and
// reads probe_success back from its query API.
func TestPrometheusScrapesAgent(t *testing.T) {
	bin := testenv.RequireBinary(t, "prometheus", "prometheus")
	if testing.Short() {
		t.Skip("short mode")
	}
	srv, err := probetest.StartHTTP(probetest.HTTPRespond(200, "ok"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "vantage.toml")
	writeConfig(t, path, baseConfig(fmt.Sprintf("[[target]]\nname = \"web\"\ntype = \"http\"\nurl = \"%s\"\n", srv.URL)))
	a := testAgent(t, path)
	promCfg := filepath.Join(dir, "prometheus.yml")
	writeConfig(t, promCfg, fmt.Sprintf(`global:
  scrape_interval: 1s
scrape_configs:
  - job_name: vantage
    static_configs:
      - targets: ['%s']
`, a.HTTPAddr()))
	ln := reserveTCP(t)
	cmd := exec.Command(bin, "--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+ln, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	re := regexp.MustCompile(`"target":"web".*"value":\[[0-9.]+,"1"\]`)
	testenv.Poll(t, 60*time.Second, "Prometheus to return probe_success for web", func() bool {
		resp, err := http.Get("http://" + ln + "/api/v1/query?query=probe_success")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return re.Match(b)
	})
}

// reserveTCP finds a free port for a child process that must bind it
// itself. The port is released before the child binds it: acceptable for
// the one external program (Prometheus) that cannot take a listener.
func reserveTCP(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// countingServer is an HTTP server that counts requests by path, closed at
// cleanup.
func countingServer(t *testing.T) (*probetest.HTTPServer, func(path string) int) {
	t.Helper()
	var mu sync.Mutex
	hits := map[string]int{}
	srv := probetest.NewHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		mu.Unlock()
	}))
	return srv, func(path string) int {
		mu.Lock()
		defer mu.Unlock()
		return hits[path]
	}
}

// On start, a large set of targets waits for their phases (no stampede); a
// target a reload adds is probed at once. The hourly targets are chosen so
// that none is due within ten minutes; a canary probing every second shows
// the agent is probing.
func TestStartFollowsPhasesReloadProbesNewTargetsAtOnce(t *testing.T) {
	srv, count := countingServer(t)
	notDueSoon := func(prefix string, n int) []string {
		var names []string
		for i := 0; len(names) < n; i++ {
			name := fmt.Sprintf("%s%d", prefix, i)
			if time.Until(time.Unix(0, nextAt(time.Now(), time.Hour, PhaseOffset(name, time.Hour, 0, 1)))) > 10*time.Minute {
				names = append(names, name)
			}
		}
		return names
	}
	hourly := func(name string) string {
		return fmt.Sprintf("[[target]]\nname = %q\ntype = \"http\"\ninterval = \"1h\"\nurl = \"%s/%s\"\n", name, srv.URL, name)
	}
	body := baseConfig(fmt.Sprintf("[[target]]\nname = \"canary\"\ntype = \"http\"\nurl = \"%s/canary\"\n", srv.URL))
	slow := notDueSoon("slow", startBurst+1)
	for _, n := range slow {
		body += hourly(n)
	}
	path := filepath.Join(t.TempDir(), "vantage.toml")
	writeConfig(t, path, body)
	a := testAgent(t, path)
	testenv.Poll(t, 10*time.Second, "the canary probed twice", func() bool { return count("/canary") >= 2 })
	for _, n := range slow {
		if c := count("/" + n); c != 0 {
			t.Errorf("target %s (hourly, not due for ten minutes) was probed %d times on start", n, c)
		}
	}

	late := notDueSoon("late", 1)[0]
	writeConfig(t, path, body+hourly(late))
	if err := a.Reload(Overrides{}); err != nil {
		t.Fatal(err)
	}
	testenv.Poll(t, 10*time.Second, "the target added by reload probed", func() bool { return count("/"+late) == 1 })
}

// A small first assignment (an operator trying a few targets) is probed at
// once, hourly or not.
func TestSmallStartProbesAtOnce(t *testing.T) {
	srv, count := countingServer(t)
	body := baseConfig("")
	for i := range 3 {
		body += fmt.Sprintf("[[target]]\nname = \"t%d\"\ntype = \"http\"\ninterval = \"1h\"\nurl = \"%s/t%d\"\n", i, srv.URL, i)
	}
	path := filepath.Join(t.TempDir(), "vantage.toml")
	writeConfig(t, path, body)
	testAgent(t, path)
	testenv.Poll(t, 10*time.Second, "all three hourly targets probed", func() bool {
		return count("/t0") == 1 && count("/t1") == 1 && count("/t2") == 1
	})
}

// With latency_histogram on, each target probed has its histogram series;
// a reload that removes a target removes its histogram, one that keeps a
// target keeps its histogram's counts.
func TestLatencyHistogramFollowsTheTargets(t *testing.T) {
	srv, err := probetest.StartHTTP(probetest.HTTPRespond(200, "ok"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "vantage.toml")
	cfg := func(names ...string) string {
		s := "[exporter]\nlatency_histogram = true\n"
		for _, n := range names {
			s += fmt.Sprintf("[[target]]\nname = %q\ntype = \"http\"\nurl = \"%s/%s\"\n", n, srv.URL, n)
		}
		return baseConfig(s)
	}
	writeConfig(t, path, cfg("keep", "drop"))
	a := testAgent(t, path)
	count := func(m, name string) float64 {
		v, _ := value(m, `vantage_probe_duration_seconds_count{target="`+name+`",type="http",region="eu-west"}`)
		return v
	}
	var before float64
	testenv.Poll(t, 10*time.Second, "histogram counts for both targets", func() bool {
		m := scrape(t, a)
		before = count(m, "keep")
		return before >= 1 && count(m, "drop") >= 1
	})
	writeConfig(t, path, cfg("keep"))
	if err := a.Reload(Overrides{}); err != nil {
		t.Fatal(err)
	}
	m := scrape(t, a)
	if strings.Contains(m, `vantage_probe_duration_seconds_bucket{target="drop"`) {
		t.Error("the removed target's histogram is still exported")
	}
	if got := count(m, "keep"); got < before {
		t.Errorf("the kept target's histogram count went from %v to %v across the reload", before, got)
	}
}
