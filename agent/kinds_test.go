package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/exporter"
	"github.com/vantage-probe/vantage/internal/testenv"
	"github.com/vantage-probe/vantage/probe/icmpprobe"
	"github.com/vantage-probe/vantage/probe/probetest"
	"github.com/vantage-probe/vantage/probe/probetest/grpctest"
)

// TestAgentProbesICMPGRPCAndJSON: one agent probes a gRPC health server, an
// HTTP health document with JSON conditions and loopback ICMP, exports
// each kind's families (promtool-clean), and says at start which ICMP
// socket it uses, or that it has none.
func TestAgentProbesICMPGRPCAndJSON(t *testing.T) {
	gs := grpctest.NewHealth(t, nil)
	gs.Health.SetServingStatus("orders.v1.Orders", grpc_health_v1.HealthCheckResponse_NOT_SERVING)
	hs := probetest.NewHTTPServer(t, probetest.HTTPRespond(http.StatusOK, `{"status": "UP", "checks": {"db": {"latency_ms": 450}}}`))
	icmpOK := true
	if _, err := icmpprobe.Detect(nil, false); err != nil {
		icmpOK = false
		t.Logf("no ICMP socket: the icmp target must fail with config_error: %v", err)
	}
	path := filepath.Join(t.TempDir(), "vantage.toml")
	writeConfig(t, path, baseConfig(fmt.Sprintf(`
[[target]]
name = "grpc"
type = "grpc"
address = %[1]q
[[target]]
name = "orders"
type = "grpc"
address = %[1]q
[target.grpc]
service = "orders.v1.Orders"
[[target]]
name = "health"
type = "http"
url = %[2]q
[target.http]
json = [{ path = "status", equals = "UP" }, { path = "checks.db.latency_ms", less_than = 300 }]
[[target]]
name = "loopback"
type = "icmp"
address = "127.0.0.1"
[target.icmp]
packets = 2
packet_interval = "10ms"
`, gs.Addr, hs.URL)))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var logs testenv.Output
	a, err := New(Options{ConfigPath: path, Config: cfg, Version: "test", WatchEvery: -1,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
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

	const (
		grpcL   = `target="grpc",type="grpc",region="eu-west"`
		ordersL = `target="orders",type="grpc",region="eu-west"`
		healthL = `target="health",type="http",region="eu-west"`
		icmpL   = `target="loopback",type="icmp",region="eu-west"`
	)
	var m string
	testenv.Poll(t, 10*time.Second, "every target probed", func() bool {
		m = scrape(t, a)
		for _, l := range []string{grpcL, ordersL, healthL, icmpL} {
			if _, ok := value(m, "probe_success{"+l+"}"); !ok {
				return false
			}
		}
		return true
	})
	want := map[string]float64{
		"probe_success{" + grpcL + "}":                                                  1,
		"probe_success{" + ordersL + "}":                                                0,
		"probe_success{" + healthL + "}":                                                0,
		"probe_grpc_healthcheck_response{" + grpcL + `,serving_status="SERVING"}`:       1,
		"probe_grpc_healthcheck_response{" + ordersL + `,serving_status="NOT_SERVING"}`: 1,
		"probe_grpc_healthcheck_response{" + ordersL + `,serving_status="SERVING"}`:     0,
		"probe_grpc_status_code{" + ordersL + "}":                                       0,
		"probe_grpc_ssl{" + grpcL + "}":                                                 0,
		"probe_http_status_code{" + healthL + "}":                                       200,
	}
	if icmpOK {
		want["probe_success{"+icmpL+"}"] = 1
		want["probe_icmp_reply_hop_limit{"+icmpL+"}"] = 64
		want["vantage_icmp_packets_received{"+icmpL+"}"] = 2
	} else {
		want["probe_success{"+icmpL+"}"] = 0
	}
	for series, w := range want {
		if v, ok := value(m, series); !ok || v != w {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, w)
		}
	}
	for _, l := range []string{grpcL, ordersL} {
		for _, ph := range []string{"resolve", "connect", "tls", "check"} {
			if _, ok := value(m, "probe_grpc_duration_seconds{"+l+`,phase="`+ph+`"}`); !ok {
				t.Errorf("no probe_grpc_duration_seconds{%s,phase=%q}", l, ph)
			}
		}
	}
	for _, ph := range []string{"resolve", "setup", "rtt"} {
		if _, ok := value(m, "probe_icmp_duration_seconds{"+icmpL+`,phase="`+ph+`"}`); !ok {
			t.Errorf("no probe_icmp_duration_seconds phase %q", ph)
		}
	}

	// The API carries each kind's reason, with the failed condition named.
	byName := map[string]string{}
	for _, tv := range a.Targets(exporter.TargetQuery{}).Views {
		if tv.Local != nil {
			byName[tv.Name] = string(tv.Local.Result.Reason) + ": " + tv.Local.Result.Message
		}
	}
	if got := byName["orders"]; !strings.HasPrefix(got, "not_serving: ") {
		t.Errorf("orders: %q, want not_serving", got)
	}
	if got := byName["health"]; !strings.Contains(got, "json_mismatch: json: checks.db.latency_ms is 450, want less than 300") {
		t.Errorf("health: %q, want the failed condition named", got)
	}

	// ICMP's latency, in the API and on the page, is the round trip, not
	// the probe's duration (which holds the 10ms between its requests).
	if icmpOK {
		for _, tv := range a.Targets(exporter.TargetQuery{}).Views {
			if tv.Name != "loopback" || tv.Local == nil {
				continue
			}
			if d := tv.Local.Result.Duration; d < 10*time.Millisecond {
				t.Errorf("loopback: probe duration %v, want at least the 10ms between its two requests", d)
			}
			for _, rv := range tv.Regions {
				if rv.Latency <= 0 || rv.Latency >= 10*time.Millisecond {
					t.Errorf("loopback: %s latency %v, want the mean round trip (last %v)", rv.Region, rv.Latency, tv.Local.Result.ICMP.RTT)
				}
			}
			if h := tv.History; len(h) == 0 || h[len(h)-1].Latency >= 10*time.Millisecond {
				t.Errorf("loopback: history %v, want the last point's latency the round trip", h)
			}
		}
	}

	if icmpOK && !strings.Contains(logs.String(), "icmp targets probed with") {
		t.Errorf("the agent did not say which ICMP socket it uses:\n%s", logs.String())
	}
	if !icmpOK && !strings.Contains(logs.String(), "icmp targets cannot be probed") {
		t.Errorf("the agent did not warn that ICMP cannot work:\n%s", logs.String())
	}

	promtool := testenv.RequireBinary(t, "prometheus", "promtool")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(m)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
