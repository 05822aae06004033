package healthsrv_test

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/vantage-probe/vantage/probe"
	"github.com/vantage-probe/vantage/probe/grpcprobe"
	"github.com/vantage-probe/vantage/probe/probetest"
	"github.com/vantage-probe/vantage/probe/probetest/healthsrv"
)

// The server is checked with grpc-go's client: what it answers is what a
// real gRPC client understands.

func start(t *testing.T, cert *tls.Certificate) *healthsrv.Server {
	t.Helper()
	s, err := healthsrv.Start(cert)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func dial(t *testing.T, addr string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func check(t *testing.T, cc *grpc.ClientConn, service string) (grpc_health_v1.HealthCheckResponse_ServingStatus, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := grpc_health_v1.NewHealthClient(cc).Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: service})
	return resp.GetStatus(), err
}

func TestStatuses(t *testing.T) {
	s := start(t, nil)
	cc := dial(t, s.Addr, insecure.NewCredentials())
	want := func(service string, st grpc_health_v1.HealthCheckResponse_ServingStatus) {
		t.Helper()
		if got, err := check(t, cc, service); err != nil || got != st {
			t.Errorf("Check(%q) = %v, %v; want %v", service, got, err, st)
		}
	}
	want("", grpc_health_v1.HealthCheckResponse_SERVING)
	s.SetServingStatus("orders.v1.Orders", healthsrv.NotServing)
	want("orders.v1.Orders", grpc_health_v1.HealthCheckResponse_NOT_SERVING)
	s.SetServingStatus("orders.v1.Orders", healthsrv.Serving)
	want("orders.v1.Orders", grpc_health_v1.HealthCheckResponse_SERVING)
	s.SetServingStatus("ledger", healthsrv.Unknown) // proto3 sends an empty message
	want("ledger", grpc_health_v1.HealthCheckResponse_UNKNOWN)
	s.SetServingStatus("", healthsrv.NotServing)
	want("", grpc_health_v1.HealthCheckResponse_NOT_SERVING)

	_, err := check(t, cc, "nope")
	if st := status.Convert(err); st.Code() != codes.NotFound || st.Message() != "unknown service" {
		t.Errorf("unknown service: %v, want NotFound: unknown service", err)
	}
	if n := s.Calls(); n != 6 {
		t.Errorf("Calls %d, want 6", n)
	}
}

func TestUnimplemented(t *testing.T) {
	s := start(t, nil)
	cc := dial(t, s.Addr, insecure.NewCredentials())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for method, msg := range map[string]string{
		"/orders.v1.Orders/Get":        "unknown service orders.v1.Orders",
		"/grpc.health.v1.Health/Other": "unknown method Other for service grpc.health.v1.Health",
	} {
		err := cc.Invoke(ctx, method, &grpc_health_v1.HealthCheckRequest{}, &grpc_health_v1.HealthCheckResponse{})
		if st := status.Convert(err); st.Code() != codes.Unimplemented || st.Message() != msg {
			t.Errorf("%s: %v, want Unimplemented: %s", method, err, msg)
		}
	}
	if n := s.Calls(); n != 0 {
		t.Errorf("Calls %d, want only Checks counted", n)
	}
}

func TestTLS(t *testing.T) {
	ca, err := probetest.NewCA("healthsrv CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Leaf(probetest.Days(30), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, &leaf)
	s.SetServingStatus("svc", healthsrv.NotServing)
	// grpc-go's client insists on h2 by ALPN.
	cc := dial(t, s.Addr, credentials.NewTLS(&tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}))
	if got, err := check(t, cc, ""); err != nil || got != grpc_health_v1.HealthCheckResponse_SERVING {
		t.Errorf("over TLS: %v, %v", got, err)
	}
	if got, err := check(t, cc, "svc"); err != nil || got != grpc_health_v1.HealthCheckResponse_NOT_SERVING {
		t.Errorf("svc over TLS: %v, %v", got, err)
	}
	// Plaintext to the TLS server fails.
	if _, err := check(t, dial(t, s.Addr, insecure.NewCredentials()), ""); status.Code(err) != codes.Unavailable {
		t.Errorf("plaintext to TLS: %v, want Unavailable", err)
	}
}

func TestClose(t *testing.T) {
	s, err := healthsrv.Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	cc := dial(t, s.Addr, insecure.NewCredentials())
	if _, err := check(t, cc, ""); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Closed: connections are gone and new ones refused.
	_, err = grpc_health_v1.NewHealthClient(cc).Check(ctx, &grpc_health_v1.HealthCheckRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("after Close: %v, want Unavailable", err)
	}
}

// TestWithProber checks the pair the demo and the benchmark run: Vantage's
// prober against this server.
func TestWithProber(t *testing.T) {
	ca, err := probetest.NewCA("healthsrv CA")
	if err != nil {
		t.Fatal(err)
	}
	caFile, err := ca.WriteCAFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Leaf(probetest.Days(30), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, cert := range []*tls.Certificate{nil, &leaf} {
		s := start(t, cert)
		s.SetServingStatus("down", healthsrv.NotServing)
		for service, want := range map[string]probe.Reason{"": probe.ReasonNone, "down": probe.ReasonNotServing, "nope": probe.ReasonServiceUnknown} {
			p, err := grpcprobe.New(grpcprobe.Options{Address: s.Addr, Service: service, UseTLS: cert != nil, TLS: probe.TLSOptions{CAFile: caFile}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			r := p.Probe(ctx)
			cancel()
			if r.Reason != want || r.OK != (want == probe.ReasonNone) || r.GRPC == nil || r.GRPC.TLS != (cert != nil) {
				t.Errorf("TLS %v, service %q: %v %s %q %+v, want %q", cert != nil, service, r.OK, r.Reason, r.Message, r.GRPC, want)
			}
		}
	}
}
