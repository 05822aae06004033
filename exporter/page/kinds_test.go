package page

import (
	"strings"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/cluster"
	"github.com/vantage-probe/vantage/exporter"
)

// TestPageShowsICMPAndGRPCTargets: the new kinds read like the others: the
// type, what is probed (a gRPC target's service beside its address), the
// round trip as an ICMP target's latency, and the failing reason.
func TestPageShowsICMPAndGRPCTargets(t *testing.T) {
	owners := map[string][]string{"eu-west": {"eu-1"}, "us-east": {"us-1"}}
	src := &fakeSource{
		self: exporter.SelfView{Node: "eu-1", AgentID: "eu-1", Region: "eu-west", ConfigOK: true},
		targets: []exporter.TargetView{
			{Name: "gateway", Type: "icmp", Endpoint: "10.0.0.1", Interval: "15s", Timeout: "5s",
				TargetStatus: cluster.TargetStatus{Name: "gateway", Leader: "eu-1", Verdict: "up", Needed: 2, Reporting: 2, Assignment: owners,
					Regions: []cluster.RegionView{
						rv("eu-west", "eu-1", true, false, "", 420*time.Microsecond),
						rv("us-east", "us-1", false, false, "packet_loss", 71*time.Millisecond),
					}}},
			{Name: "orders", Type: "grpc", Endpoint: "orders.internal:50051 orders.v1.Orders", Interval: "15s", Timeout: "5s",
				TargetStatus: cluster.TargetStatus{Name: "orders", Leader: "eu-1", Verdict: "down", Needed: 2, Reporting: 2,
					Failing: []string{"eu-west", "us-east"}, Assignment: owners,
					Reason: "2/2 regions failing (eu-west, us-east) >= quorum 2",
					Regions: []cluster.RegionView{
						rv("eu-west", "eu-1", false, true, "not_serving", 3*time.Millisecond),
						rv("us-east", "us-1", false, true, "not_serving", 80*time.Millisecond),
					}}},
		},
	}
	_, body := get(t, New(src, Options{Now: func() time.Time { return fixedNow }}))
	gw := rowOf(t, body, "gateway")
	for _, want := range []string{`<span class="type">ICMP</span>10.0.0.1`, ">UP<", "0.4 ms", `class="cell pend"`, "packet_loss"} {
		if !strings.Contains(gw, want) {
			t.Errorf("gateway row lacks %q:\n%s", want, gw)
		}
	}
	orders := rowOf(t, body, "orders")
	for _, want := range []string{`<span class="type">GRPC</span>orders.internal:50051 orders.v1.Orders`, ">DOWN<", `class="cell fail"`, "✕</span>not_serving<"} {
		if !strings.Contains(orders, want) {
			t.Errorf("orders row lacks %q:\n%s", want, orders)
		}
	}
}
