package exporter

import (
	"strings"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/probe"
)

// TestICMPAndGRPCSeries: the families of each kind, written whatever the
// probe's outcome where blackbox_exporter writes them always (phases, the
// serving statuses), and only with the fact where there is one.
func TestICMPAndGRPCSeries(t *testing.T) {
	ph := func(names ...string) []probe.Phase {
		var out []probe.Phase
		for i, n := range names {
			out = append(out, probe.Phase{Name: n, Duration: time.Duration(i+1) * time.Millisecond})
		}
		return out
	}
	icmpOK := probe.Result{OK: true, Phases: ph("resolve", "setup", "rtt"),
		ICMP: &probe.ICMPFacts{PacketsSent: 3, PacketsReceived: 2, ReplyHopLimit: 57}}
	icmpDNS := probe.Result{Reason: probe.ReasonDNSError, Phases: ph("resolve")}
	grpcNot := probe.Result{Reason: probe.ReasonNotServing, Phases: ph("resolve", "connect", "tls", "check"),
		GRPC: &probe.GRPCFacts{StatusCode: 0, ServingStatus: "NOT_SERVING", TLS: true}}
	grpcRefused := probe.Result{Reason: probe.ReasonConnectRefused, Phases: ph("resolve", "connect", "tls", "check"),
		GRPC: &probe.GRPCFacts{StatusCode: 14}}
	grpcDNS := probe.Result{Reason: probe.ReasonDNSError, Phases: ph("resolve")}
	var b Buf
	WriteObservations(&b, RegionLabel("eu"), []Obs{
		{Labels: Labels("gw", "icmp", nil), Type: "icmp", Result: &icmpOK},
		{Labels: Labels("gw-dns", "icmp", nil), Type: "icmp", Result: &icmpDNS},
		{Labels: Labels("orders", "grpc", nil), Type: "grpc", Result: &grpcNot},
		{Labels: Labels("refused", "grpc", nil), Type: "grpc", Result: &grpcRefused},
		{Labels: Labels("grpc-dns", "grpc", nil), Type: "grpc", Result: &grpcDNS},
	})
	out := b.String()
	for _, want := range []string{
		`probe_icmp_duration_seconds{target="gw",type="icmp",region="eu",phase="resolve"} 0.001`,
		`probe_icmp_duration_seconds{target="gw",type="icmp",region="eu",phase="rtt"} 0.003`,
		`probe_icmp_duration_seconds{target="gw-dns",type="icmp",region="eu",phase="rtt"} 0`,
		`probe_icmp_reply_hop_limit{target="gw",type="icmp",region="eu"} 57`,
		`vantage_icmp_packets_sent{target="gw",type="icmp",region="eu"} 3`,
		`vantage_icmp_packets_received{target="gw",type="icmp",region="eu"} 2`,
		`probe_grpc_duration_seconds{target="orders",type="grpc",region="eu",phase="check"} 0.004`,
		`probe_grpc_duration_seconds{target="grpc-dns",type="grpc",region="eu",phase="tls"} 0`,
		`probe_grpc_healthcheck_response{target="orders",type="grpc",region="eu",serving_status="NOT_SERVING"} 1`,
		`probe_grpc_healthcheck_response{target="orders",type="grpc",region="eu",serving_status="SERVING"} 0`,
		`probe_grpc_healthcheck_response{target="refused",type="grpc",region="eu",serving_status="UNKNOWN"} 0`,
		`probe_grpc_healthcheck_response{target="grpc-dns",type="grpc",region="eu",serving_status="SERVICE_UNKNOWN"} 0`,
		`probe_grpc_status_code{target="orders",type="grpc",region="eu"} 0`,
		`probe_grpc_status_code{target="refused",type="grpc",region="eu"} 14`,
		`probe_grpc_ssl{target="orders",type="grpc",region="eu"} 1`,
		`probe_grpc_ssl{target="refused",type="grpc",region="eu"} 0`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("lacks %s", want)
		}
	}
	for _, absent := range []string{
		`probe_icmp_reply_hop_limit{target="gw-dns"`, `vantage_icmp_packets_sent{target="gw-dns"`,
		`probe_grpc_status_code{target="grpc-dns"`, `probe_grpc_ssl{target="grpc-dns"`,
		`probe_http_duration_seconds{target="gw"`, `probe_tcp_duration_seconds{target="orders"`,
		`probe_icmp_duration_seconds{target="orders"`, `probe_grpc_duration_seconds{target="gw"`,
	} {
		if strings.Contains(out, absent) {
			t.Errorf("writes %s...", absent)
		}
	}
	if n := strings.Count(out, `probe_grpc_healthcheck_response{target="orders"`); n != 4 {
		t.Errorf("%d serving status series for one target, want 4", n)
	}
	for _, name := range []string{"probe_icmp_duration_seconds", "probe_icmp_reply_hop_limit", "vantage_icmp_packets_sent",
		"vantage_icmp_packets_received", "probe_grpc_duration_seconds", "probe_grpc_healthcheck_response", "probe_grpc_status_code", "probe_grpc_ssl"} {
		if strings.Count(out, "# TYPE "+name+" gauge\n") != 1 || Help[name] == "" {
			t.Errorf("%s: want one TYPE line and a HELP text of its own", name)
		}
	}
}
