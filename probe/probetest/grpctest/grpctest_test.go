package grpctest_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/vantage-probe/vantage/probe/probetest/grpctest"
)

func check(t *testing.T, addr, service string, timeout time.Duration) (*grpc_health_v1.HealthCheckResponse, error) {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return grpc_health_v1.NewHealthClient(cc).Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: service})
}

func TestHealthServer(t *testing.T) {
	s := grpctest.NewHealth(t, nil)
	if resp, err := check(t, s.Addr, "", 10*time.Second); err != nil || resp.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
		t.Fatalf("overall health: %v, %v", resp, err)
	}
	s.Health.SetServingStatus("svc", grpc_health_v1.HealthCheckResponse_NOT_SERVING)
	if resp, err := check(t, s.Addr, "svc", 10*time.Second); err != nil || resp.GetStatus() != grpc_health_v1.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("svc: %v, %v", resp, err)
	}
	if _, err := check(t, s.Addr, "nope", 10*time.Second); status.Code(err) != codes.NotFound {
		t.Fatalf("unknown service: %v", err)
	}
	s.SetHang(true)
	if _, err := check(t, s.Addr, "", 200*time.Millisecond); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("hung: %v", err)
	}
	if s.Calls() != 4 {
		t.Errorf("Calls %d, want 4", s.Calls())
	}
	s.Close()
	s.Close()
}

func TestWithoutHealth(t *testing.T) {
	s, err := grpctest.StartHealth(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := check(t, s.Addr, "", 10*time.Second); status.Code(err) != codes.Unimplemented {
		t.Fatalf("no health service: %v", err)
	}
}
