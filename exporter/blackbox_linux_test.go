package exporter_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vantage-probe/vantage/exporter"
	"github.com/vantage-probe/vantage/internal/blackboxtest"
	"github.com/vantage-probe/vantage/probe"
	"github.com/vantage-probe/vantage/probe/grpcprobe"
	"github.com/vantage-probe/vantage/probe/icmpprobe"
	"github.com/vantage-probe/vantage/probe/probetest"
	"github.com/vantage-probe/vantage/probe/probetest/grpctest"
)

// The modules blackbox_exporter probes with, each the probe Vantage runs.
const bbModules = `modules:
  icmp:
    prober: icmp
    timeout: 5s
    icmp:
      preferred_ip_protocol: ip4
  grpc:
    prober: grpc
    timeout: 5s
    grpc:
      preferred_ip_protocol: ip4
  grpc_orders:
    prober: grpc
    timeout: 5s
    grpc:
      service: orders.v1.Orders
      preferred_ip_protocol: ip4
  grpc_tls:
    prober: grpc
    timeout: 5s
    grpc:
      tls: true
      preferred_ip_protocol: ip4
      tls_config:
        ca_file: %q
`

// ours labels every series with these; blackbox_exporter's /probe, none.
var ownLabels = []string{"target", "type", "region"}

// TestSeriesAsBlackboxExporterWritesThem probes the same targets with
// Vantage's probers and with a real blackbox_exporter, and holds every
// family blackbox_exporter writes for ICMP and gRPC that Vantage claims
// to share to the same name, type, label names, label values (Vantage may
// have more phases) and, where the value is a fact rather than a timing,
// the same value.
func TestSeriesAsBlackboxExporterWritesThem(t *testing.T) {
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
	plain := grpctest.NewHealth(t, nil)
	plain.Health.SetServingStatus("orders.v1.Orders", grpc_health_v1.HealthCheckResponse_NOT_SERVING)
	secure := grpctest.NewHealth(t, &cert)
	bare, err := grpctest.StartHealth(nil, false) // no health service: Unimplemented
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bare.Close)
	bb := blackboxtest.Start(t, fmt.Sprintf(bbModules, caFile))

	type kase struct {
		name, module, target, typ string
		prober                    func() (probe.Prober, error)
		families                  []string // shared with blackbox_exporter
		phases                    map[string][]string
	}
	grpcFams := []string{"probe_success", "probe_grpc_duration_seconds", "probe_grpc_healthcheck_response", "probe_grpc_status_code", "probe_grpc_ssl"}
	grpcPhases := map[string][]string{"probe_grpc_duration_seconds": {"resolve", "connect", "tls", "check"}}
	cases := []kase{
		{name: "grpc serving", module: "grpc", target: plain.Addr, typ: "grpc",
			prober:   func() (probe.Prober, error) { return grpcprobe.New(grpcprobe.Options{Address: plain.Addr}) },
			families: grpcFams, phases: grpcPhases},
		{name: "grpc not serving", module: "grpc_orders", target: plain.Addr, typ: "grpc",
			prober: func() (probe.Prober, error) {
				return grpcprobe.New(grpcprobe.Options{Address: plain.Addr, Service: "orders.v1.Orders"})
			},
			families: grpcFams, phases: grpcPhases},
		{name: "grpc unimplemented", module: "grpc", target: bare.Addr, typ: "grpc",
			prober:   func() (probe.Prober, error) { return grpcprobe.New(grpcprobe.Options{Address: bare.Addr}) },
			families: grpcFams, phases: grpcPhases},
		{name: "grpc over tls", module: "grpc_tls", target: secure.Addr, typ: "grpc",
			prober: func() (probe.Prober, error) {
				return grpcprobe.New(grpcprobe.Options{Address: secure.Addr, UseTLS: true, TLS: probe.TLSOptions{CAFile: caFile}})
			},
			families: append(grpcFams, "probe_ssl_earliest_cert_expiry", "probe_tls_version_info"), phases: grpcPhases},
	}
	if _, err := icmpprobe.Detect(nil, false); err == nil {
		cases = append(cases, kase{name: "icmp", module: "icmp", target: "127.0.0.1", typ: "icmp",
			prober:   func() (probe.Prober, error) { return icmpprobe.New(icmpprobe.Options{Address: "127.0.0.1"}) },
			families: []string{"probe_success", "probe_icmp_duration_seconds", "probe_icmp_reply_hop_limit"},
			phases:   map[string][]string{"probe_icmp_duration_seconds": {"resolve", "setup", "rtt"}}})
	} else {
		t.Logf("no ICMP socket, icmp not compared: %v", err)
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			text, err := bb.Probe(ctx, c.module, c.target)
			if err != nil {
				t.Fatal(err)
			}
			theirs, err := blackboxtest.Parse(text)
			if err != nil {
				t.Fatal(err)
			}
			p, err := c.prober()
			if err != nil {
				t.Fatal(err)
			}
			r := p.Probe(ctx)
			var b exporter.Buf
			exporter.WriteObservations(&b, exporter.RegionLabel("eu-west"), []exporter.Obs{{Labels: exporter.Labels("t", c.typ, nil), Type: c.typ, Result: &r}})
			ours, err := blackboxtest.Parse(b.String())
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range c.families {
				compareFamily(t, name, theirs[name], ours[name], c.phases[name])
			}
		})
	}
}

// compareFamily holds our family to theirs. Timings (phases) are compared
// by label only; every other value must be equal.
func compareFamily(t *testing.T, name string, theirs, ours *blackboxtest.Family, phases []string) {
	t.Helper()
	switch {
	case theirs == nil:
		t.Errorf("%s: blackbox_exporter does not write it: Vantage claims a family it does not share", name)
		return
	case ours == nil:
		t.Errorf("%s: blackbox_exporter writes it, Vantage does not", name)
		return
	case theirs.Type != ours.Type:
		t.Errorf("%s: type %q, blackbox_exporter's %q", name, ours.Type, theirs.Type)
	}
	key := func(labels map[string]string) string {
		var s string
		for _, k := range slices.Sorted(maps.Keys(labels)) {
			if !slices.Contains(ownLabels, k) {
				s += k + "=" + strconv.Quote(labels[k]) + ","
			}
		}
		return s
	}
	ourValues := map[string]float64{}
	for _, s := range ours.Samples {
		ourValues[key(s.Labels)] = s.Value
	}
	for _, s := range theirs.Samples {
		k := key(s.Labels)
		v, ok := ourValues[k]
		switch {
		case !ok:
			t.Errorf("%s{%s}: blackbox_exporter writes it (%v), Vantage does not", name, k, s.Value)
		case phases == nil && v != s.Value:
			t.Errorf("%s{%s} = %v, blackbox_exporter's %v", name, k, v, s.Value)
		}
	}
	if phases != nil {
		var got []string
		for _, s := range ours.Samples {
			got = append(got, s.Labels["phase"])
		}
		if !slices.Equal(got, phases) {
			t.Errorf("%s: phases %v, want %v", name, got, phases)
		}
	} else if len(ours.Samples) != len(theirs.Samples) {
		t.Errorf("%s: %d series, blackbox_exporter writes %d", name, len(ours.Samples), len(theirs.Samples))
	}
}
