package grpcprobe_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vantage-probe/vantage/probe"
	"github.com/vantage-probe/vantage/probe/grpcprobe"
	"github.com/vantage-probe/vantage/probe/probetest/grpctest"
)

// The benchmarks run against a grpc-go health server in the same process:
// cpu-ns/op counts its share too, the same for every benchmark here.
// BenchmarkBareClient is grpc-go's client with its defaults, one
// connection per check as a probe makes: the official client the
// hand-written prober stands in for (tests only link grpc-go).

func benchProbe(b *testing.B, o grpcprobe.Options) {
	p := newProber(b, o)
	// One context for the whole run: the agent's per-probe WithTimeout is
	// the agent's cost, not the prober's.
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		if r := p.Probe(ctx); !r.OK {
			b.Fatalf("%s: %s", r.Reason, r.Message)
		}
	}
}

func BenchmarkProbeGRPC(b *testing.B) {
	k := newPKI(b)
	plain, secure := grpctest.NewHealth(b, nil), grpctest.NewHealth(b, &k.leaf)
	b.Run("plaintext", func(b *testing.B) { benchProbe(b, grpcprobe.Options{Address: plain.Addr}) })
	b.Run("tls", func(b *testing.B) {
		benchProbe(b, grpcprobe.Options{Address: secure.Addr, UseTLS: true, TLS: probe.TLSOptions{CAFile: k.caFile}})
	})
}

func BenchmarkBareClient(b *testing.B) {
	s := grpctest.NewHealth(b, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	req := &grpc_health_v1.HealthCheckRequest{}
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		cc, err := grpc.NewClient("passthrough:///"+s.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		resp, err := grpc_health_v1.NewHealthClient(cc).Check(ctx, req)
		if err != nil || resp.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
			b.Fatalf("%v %v", resp, err)
		}
		_ = cc.Close()
	}
}
