package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vantage-probe/vantage/probe/icmpprobe"
	"github.com/vantage-probe/vantage/probe/probetest"
	"github.com/vantage-probe/vantage/probe/probetest/grpctest"
)

func needICMP(t *testing.T) {
	t.Helper()
	if _, err := icmpprobe.Detect(nil, false); err != nil {
		t.Skipf("no ICMP socket here (TestProbeICMPWithoutPermission covers that): %v", err)
	}
}

func TestProbeICMP(t *testing.T) {
	needICMP(t)
	code, out, errs := runCLI("probe", "-type", "icmp", "127.0.0.1")
	if code != exitOK || !strings.Contains(out, "icmp 127.0.0.1: OK") || !strings.Contains(out, "1 of 1 replies") ||
		!strings.Contains(out, "phases:   resolve") || !strings.Contains(out, "rtt") {
		t.Errorf("icmp 127.0.0.1: code %d\n%s%s", code, out, errs)
	}
	code, out, errs = runCLI("probe", "-type", "icmp", "-json", "-packets", "3", "-packet-interval", "5ms", "::1")
	var r struct {
		OK   bool `json:"ok"`
		ICMP struct {
			Sent     int    `json:"packets_sent"`
			Received int    `json:"packets_received"`
			Hop      int    `json:"reply_hop_limit"`
			Socket   string `json:"socket"`
		} `json:"icmp"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != exitOK || !r.OK || r.ICMP.Sent != 3 || r.ICMP.Received != 3 ||
		r.ICMP.Hop <= 0 || r.ICMP.Socket == "" {
		t.Errorf("icmp -json -packets 3 ::1: code %d, %+v, %v\n%s%s", code, r, err, out, errs)
	}
}

func TestProbeGRPC(t *testing.T) {
	srv := grpctest.NewHealth(t, nil)
	srv.Health.SetServingStatus("orders.v1.Orders", grpc_health_v1.HealthCheckResponse_NOT_SERVING)
	code, out, errs := runCLI("probe", "-type", "grpc", srv.Addr)
	if code != exitOK || !strings.Contains(out, "grpc "+srv.Addr+": OK") || !strings.Contains(out, "serving status SERVING, status code 0 (OK), plaintext") {
		t.Errorf("grpc: code %d\n%s%s", code, out, errs)
	}
	code, out, _ = runCLI("probe", "-type", "grpc", "-service", "orders.v1.Orders", srv.Addr)
	if code != exitFail || !strings.Contains(out, "FAIL not_serving") || !strings.Contains(out, `service "orders.v1.Orders": serving status NOT_SERVING`) {
		t.Errorf("grpc, a service not serving: code %d\n%s", code, out)
	}
	code, out, _ = runCLI("probe", "-type", "grpc", "-service", "nope", srv.Addr)
	if code != exitFail || !strings.Contains(out, "FAIL service_unknown") || !strings.Contains(out, "NotFound") {
		t.Errorf("grpc, an unknown service: code %d\n%s", code, out)
	}

	bare, err := grpctest.StartHealth(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	code, out, _ = runCLI("probe", "-type", "grpc", bare.Addr)
	if code != exitFail || !strings.Contains(out, "FAIL grpc_error") || !strings.Contains(out, "Unimplemented") {
		t.Errorf("grpc, no health service: code %d\n%s", code, out)
	}

	ca, err := probetest.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	caFile, err := ca.WriteCAFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Leaf(probetest.Days(30), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	tlsSrv := grpctest.NewHealth(t, &cert)
	code, out, _ = runCLI("probe", "-type", "grpc", "-tls", "-ca-file", caFile, tlsSrv.Addr)
	if code != exitOK || !strings.Contains(out, "status code 0 (OK), TLS") || !strings.Contains(out, "days left") {
		t.Errorf("grpc over TLS: code %d\n%s", code, out)
	}
	code, out, _ = runCLI("probe", "-type", "grpc", "-tls", tlsSrv.Addr)
	if code != exitFail || !strings.Contains(out, "FAIL cert_invalid") {
		t.Errorf("grpc over TLS with an unknown CA: code %d\n%s", code, out)
	}
}

func TestProbeJSONCondition(t *testing.T) {
	srv := probetest.NewHTTPServer(t, probetest.HTTPRespond(200, `{"status": "DOWN", "checks": {"db": {"latency_ms": 12}}}`))
	code, out, errs := runCLI("probe", "-cond", "status == UP", "-cond", "checks.db.latency_ms < 300", srv.URL)
	if code != exitFail || !strings.Contains(out, "FAIL json_mismatch") || !strings.Contains(out, `json: status is "DOWN", want "UP"`) {
		t.Errorf("a failing condition: code %d\n%s%s", code, out, errs)
	}
	if strings.Contains(out, "latency_ms") {
		t.Errorf("the condition that holds is named as failed:\n%s", out)
	}
	code, out, errs = runCLI("probe", "-cond", "status != UP", "-cond", "checks.db exists", srv.URL)
	if code != exitOK {
		t.Errorf("conditions that hold: code %d\n%s%s", code, out, errs)
	}
	code, _, errs = runCLI("probe", "-cond", "status = UP", srv.URL)
	if code != exitUsage || !strings.Contains(errs, "want one of ==") {
		t.Errorf("a malformed -cond: code %d, stderr %q", code, errs)
	}
}

func TestProbeNewKindsBadUsageExits2(t *testing.T) {
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"probe", "-type", "icmp", "127.0.0.1:80"}, "without a port"},
		{[]string{"probe", "-type", "icmp", "-packets", "500", "127.0.0.1"}, "packets 500"},
		{[]string{"probe", "-type", "icmp", "-min-replies", "3", "127.0.0.1"}, "min_replies 3"},
		{[]string{"probe", "-type", "grpc", "127.0.0.1"}, "127.0.0.1"},
		{[]string{"probe", "127.0.0.1"}, "icmp or grpc"},
	} {
		code, _, stderr := runCLI(c.args...)
		if code != exitUsage || !strings.Contains(stderr, c.msg) {
			t.Errorf("%v: code %d, stderr %q; want 2 and %q", c.args, code, stderr, c.msg)
		}
	}
}

// TestCheckConfigAndAgentAgree: a config with bad icmp, grpc and JSON
// settings is refused by check-config and by the agent with the same
// lines, each naming file, line and key.
func TestCheckConfigAndAgentAgree(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.toml")
	src := `[agent]
region = "eu"
[cluster]
bind = "127.0.0.1:0"
[[target]]
name = "gw"
type = "icmp"
address = "10.0.0.1:7"
[target.icmp]
packets = 0
[[target]]
name = "orders"
type = "grpc"
address = "orders:50051"
[target.grpc]
ca_file = "ca.pem"
[[target]]
name = "api"
type = "http"
url = "http://127.0.0.1:1/"
[target.http]
json = [{ path = "status", equals = "UP" }, { path = "a..b", exists = true }, { path = "ms", less_than = "300" }]
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	code, checked, _ := runCLI("check-config", path)
	if code != exitFail {
		t.Fatalf("check-config: code %d\n%s", code, checked)
	}
	for _, want := range []string{
		path + `:8:1: target["gw"].address: "10.0.0.1:7": want a host name or IP address, without a port (ICMP has none)`,
		path + `:10:1: target["gw"].icmp.packets: 0: want 1 to 100`,
		path + `:16:1: target["orders"].grpc.ca_file: applies only with tls = true`,
		path + `:22:47: target["api"].http.json[1].path: "a..b": empty segment at offset 2`,
		path + `:22:94: target["api"].http.json[2].less_than: expected a number, got string "300"`,
	} {
		if !strings.Contains(checked, want+"\n") {
			t.Errorf("check-config output lacks\n%s\n%s", want, checked)
		}
	}
	code, _, refused := runCLI("agent", "-config", path)
	if code != exitFail || refused != checked {
		t.Errorf("the agent (code %d) says\n%s\ncheck-config says\n%s", code, refused, checked)
	}
}
