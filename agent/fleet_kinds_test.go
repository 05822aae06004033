package agent_test

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vantage-probe/vantage/agent"
	"github.com/vantage-probe/vantage/cluster"
	"github.com/vantage-probe/vantage/exporter"
	"github.com/vantage-probe/vantage/internal/fleettest"
	"github.com/vantage-probe/vantage/internal/testenv"
	"github.com/vantage-probe/vantage/probe/probetest"
	"github.com/vantage-probe/vantage/probe/probetest/grpctest"
)

// verdicts maps each target to its verdict as agent a sees it, with the
// regions reporting.
func verdicts(a *agent.Agent) map[string]string {
	out := map[string]string{}
	for _, tv := range a.Targets(exporter.TargetQuery{}).Views {
		out[tv.Name] = fmt.Sprintf("%s/%d", tv.Verdict, tv.Reporting)
	}
	return out
}

// openIncident is target's open incident as agent a knows it, or nil.
func openIncident(a *agent.Agent, target string) *cluster.Incident {
	for _, in := range a.Incidents() {
		if in.Target == target && in.Open() {
			return &in
		}
	}
	return nil
}

// confirmations sums vantage_confirmations_total{result} over the fleet.
func confirmations(t *testing.T, fleet []*agent.Agent, result string) float64 {
	t.Helper()
	sum := 0.0
	for _, a := range fleet {
		resp, err := http.Get("http://" + a.HTTPAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, `vantage_confirmations_total{result="`+result+`"} `); ok {
				f, _ := strconv.ParseFloat(v, 64)
				sum += f
			}
		}
	}
	return sum
}

// TestGRPCAndJSONOutagesReachQuorum: gRPC and JSON targets go through the
// fleet like the others: a failure every region sees is confirmed across
// regions and opens one incident with the kind's reason, and recovery
// resolves it.
func TestGRPCAndJSONOutagesReachQuorum(t *testing.T) {
	gs := grpctest.NewHealth(t, nil)
	gs.Health.SetServingStatus("orders.v1.Orders", grpc_health_v1.HealthCheckResponse_SERVING)
	var status atomic.Value
	status.Store("UP")
	hs := probetest.NewHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"status": %q}`, status.Load())
	}))
	fleet := fleettest.Start(t, fleettest.Options{Targets: fmt.Sprintf(`
[[target]]
name = "orders"
type = "grpc"
address = %q
[target.grpc]
service = "orders.v1.Orders"
[[target]]
name = "health"
type = "http"
url = %q
[target.http]
json = [{ path = "status", equals = "UP" }]
`, gs.Addr, hs.URL)})
	allUp := func() bool {
		for _, a := range fleet {
			v := verdicts(a)
			if v["orders"] != "up/3" || v["health"] != "up/3" {
				return false
			}
		}
		return true
	}
	testenv.Poll(t, 20*time.Second, "every agent to call both targets up from 3 regions", allUp)

	for _, c := range []struct {
		target, reason string
		fail, fix      func()
	}{
		{"orders", "not_serving",
			func() { gs.Health.SetServingStatus("orders.v1.Orders", grpc_health_v1.HealthCheckResponse_NOT_SERVING) },
			func() { gs.Health.SetServingStatus("orders.v1.Orders", grpc_health_v1.HealthCheckResponse_SERVING) }},
		{"health", "json_mismatch", func() { status.Store("DOWN") }, func() { status.Store("UP") }},
	} {
		served := confirmations(t, fleet, "served")
		c.fail()
		var in *cluster.Incident
		testenv.Poll(t, 20*time.Second, c.target+" down by quorum with an open incident", func() bool {
			in = openIncident(fleet[0], c.target)
			return in != nil && verdicts(fleet[0])[c.target] == "down/3"
		})
		if in.Reason != c.reason {
			t.Errorf("%s: incident reason %q, want %q", c.target, in.Reason, c.reason)
		}
		// The first region to fail asked the others to probe at once.
		testenv.Poll(t, 10*time.Second, c.target+": confirmation probes served", func() bool {
			return confirmations(t, fleet, "served") > served
		})
		if len(in.QuorumRegions) < 2 {
			t.Errorf("%s: quorum regions %v, want at least 2", c.target, in.QuorumRegions)
		}
		c.fix()
		testenv.Poll(t, 20*time.Second, c.target+" up again and its incident resolved", func() bool {
			return openIncident(fleet[0], c.target) == nil && allUp()
		})
	}
}

// TestICMPOutageReachesQuorum: a host that stops answering echo requests
// is down by quorum with reason timeout, and up again when it answers.
// It runs in a network namespace where a responder answers in place of the
// kernel, so that the test can silence it.
func TestICMPOutageReachesQuorum(t *testing.T) {
	if !probetest.InNetNS(t) {
		return
	}
	resp := probetest.StartICMPResponder(t, probetest.ICMPEcho)
	fleet := fleettest.Start(t, fleettest.Options{Targets: `
[[target]]
name = "gw"
type = "icmp"
address = "127.0.0.1"
[target.icmp]
packets = 2
packet_interval = "10ms"
`})
	up := func() bool {
		for _, a := range fleet {
			if verdicts(a)["gw"] != "up/3" {
				return false
			}
		}
		return true
	}
	testenv.Poll(t, 20*time.Second, "every agent to call gw up from 3 regions", up)
	if resp.Requests() == 0 {
		t.Fatal("the responder saw no echo request: the kernel answered")
	}
	resp.SetMode(probetest.ICMPSilent)
	var in *cluster.Incident
	testenv.Poll(t, 20*time.Second, "gw down by quorum", func() bool {
		in = openIncident(fleet[0], "gw")
		return in != nil && verdicts(fleet[0])["gw"] == "down/3"
	})
	if in.Reason != "timeout" {
		t.Errorf("incident reason %q, want timeout", in.Reason)
	}
	resp.SetMode(probetest.ICMPEcho)
	testenv.Poll(t, 20*time.Second, "gw up again", func() bool { return openIncident(fleet[0], "gw") == nil && up() })
}
