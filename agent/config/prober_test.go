package config

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vantage-probe/vantage/probe"
	"github.com/vantage-probe/vantage/probe/icmpprobe"
	"github.com/vantage-probe/vantage/probe/probetest"
	"github.com/vantage-probe/vantage/probe/probetest/grpctest"
)

func netOf(t *Target) probe.Net {
	switch {
	case t.HTTP() != nil:
		return t.HTTP().Net
	case t.TLS != nil:
		return t.TLS.Net
	case t.DNS != nil:
		return t.DNS.Net
	case t.TCP != nil:
		return t.TCP.Net
	case t.ICMP != nil:
		return t.ICMP.Net
	case t.GRPC != nil:
		return t.GRPC.Net
	}
	return probe.Net{}
}

// TestNewProberProbesRealServers builds probers from config text and runs
// them against loopback servers: the options the loader fills in are the
// ones the probers need.
func TestNewProberProbesRealServers(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Probe") != "vantage" {
			http.Error(w, "no header", http.StatusBadRequest)
			return
		}
		if r.URL.Path == "/health.json" {
			fmt.Fprint(w, `{"status": "UP", "checks": {"db": {"status": "DOWN", "latency_ms": 12}}}`)
			return
		}
		fmt.Fprint(w, "status: ok")
	}))
	defer hs.Close()
	gs := grpctest.NewHealth(t, nil)
	gs.Health.SetServingStatus("orders.v1.Orders", grpc_health_v1.HealthCheckResponse_NOT_SERVING)

	tcp, err := probetest.StartTCP(probetest.TCPEcho, "220 ready\r\n")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()

	dir := writeFiles(t, map[string]string{"main.toml": fmt.Sprintf(`
[[target]]
name = "web"
type = "http"
url = "%s/healthz"
[target.http]
headers = { X-Probe = "vantage" }
body_regex = "status: ok"

[[target]]
name = "web-wrong-body"
type = "http"
url = "%[1]s/"
[target.http]
headers = { X-Probe = "vantage" }
fail_if_body_matches = ["ok"]

[[target]]
name = "banner"
type = "tcp"
address = "%s"
[target.tcp]
expect = '^220 '

[[target]]
name = "health-json"
type = "http"
url = "%[1]s/health.json"
[target.http]
headers = { X-Probe = "vantage" }
json = [{ path = "status", equals = "UP" }, { path = "checks.db.latency_ms", less_than = 300 }]

[[target]]
name = "health-json-db-down"
type = "http"
url = "%[1]s/health.json"
[target.http]
headers = { X-Probe = "vantage" }
json = [{ path = "checks.db.status", equals = "UP" }]

[[target]]
name = "grpc"
type = "grpc"
address = "%[3]s"

[[target]]
name = "grpc-orders"
type = "grpc"
address = "%[3]s"
[target.grpc]
service = "orders.v1.Orders"

[[target]]
name = "loopback"
type = "icmp"
address = "127.0.0.1"
[target.icmp]
packets = 2
packet_interval = "10ms"
`, hs.URL, tcp.Addr, gs.Addr)})
	cfg := mustLoad(t, dir)
	want := map[string]probe.Reason{"web": probe.ReasonNone, "web-wrong-body": probe.ReasonBodyMismatch, "banner": probe.ReasonNone,
		"health-json": probe.ReasonNone, "health-json-db-down": probe.ReasonJSONMismatch,
		"grpc": probe.ReasonNone, "grpc-orders": probe.ReasonNotServing, "loopback": probe.ReasonNone}
	if _, err := icmpprobe.Detect(nil, false); err != nil {
		t.Logf("no ICMP socket, the icmp target must fail with config_error: %v", err)
		want["loopback"] = probe.ReasonConfig
	}
	for _, tg := range cfg.Targets {
		p, err := tg.NewProber()
		if err != nil {
			t.Fatalf("%s: %v", tg.Name, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r := p.Probe(ctx)
		cancel()
		if r.OK != (want[tg.Name] == probe.ReasonNone) || r.Reason != want[tg.Name] {
			t.Errorf("%s: ok=%v reason=%q (%s), want reason %q", tg.Name, r.OK, r.Reason, r.Message, want[tg.Name])
		}
		switch tg.Name {
		case "health-json-db-down":
			if want := `checks.db.status is "DOWN", want "UP"`; !strings.Contains(r.Message, want) {
				t.Errorf("%s: message %q does not name the failed condition (%s)", tg.Name, r.Message, want)
			}
		case "grpc-orders":
			if r.GRPC == nil || r.GRPC.ServingStatus != "NOT_SERVING" {
				t.Errorf("%s: grpc facts %+v, want serving status NOT_SERVING", tg.Name, r.GRPC)
			}
		case "loopback":
			if r.OK && (r.ICMP == nil || r.ICMP.PacketsSent != 2 || r.ICMP.PacketsReceived != 2) {
				t.Errorf("%s: icmp facts %+v, want 2 of 2 packets answered", tg.Name, r.ICMP)
			}
		}
	}
	if len(cfg.Targets) != len(want) {
		t.Errorf("%d targets probed, want %d", len(cfg.Targets), len(want))
	}
}

// A CA bundle that does not exist is refused by Load at its key, as the
// agent would refuse to build the prober: check-config says the same.
func TestMissingCAFileIsAConfigError(t *testing.T) {
	dir := writeFiles(t, map[string]string{"main.toml": `
[[target]]
name = "needs-ca"
type = "tls"
address = "127.0.0.1:443"
[target.tls]
ca_file = "missing-ca.pem"
`})
	_, err := Load(filepath.Join(dir, "main.toml"))
	if err == nil || !strings.Contains(err.Error(), "main.toml:7:1: target[\"needs-ca\"].tls.ca_file:") || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("err = %v, want the ca_file key, its line and the reason", err)
	}
	if _, err := (&Target{Name: "empty"}).NewProber(); err == nil {
		t.Error("a target without options built a prober")
	}
}
