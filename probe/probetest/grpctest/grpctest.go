// Package grpctest holds a real grpc-go health server on loopback for the
// tests of the gRPC prober and of what is built on it. It is a package of
// its own so that importing probetest (the demo's target farm does) does
// not link a gRPC server.
package grpctest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
)

// HealthServer is google.golang.org/grpc/health's server behind a real
// grpc-go server on 127.0.0.1, plaintext or TLS. Health sets what each
// service reports (the empty name is the server as a whole, SERVING from
// the start); Hang makes every RPC wait until its client gives up.
type HealthServer struct {
	// Addr is the 127.0.0.1:port the server listens on.
	Addr   string
	Health *health.Server

	srv   *grpc.Server
	hang  atomic.Bool
	calls atomic.Int64
	done  chan struct{}
	once  sync.Once
}

// StartHealth listens on 127.0.0.1 (port chosen by the kernel) and serves
// the health service, over TLS with cert when it is not nil. withHealth
// false serves no service at all (every RPC: Unimplemented).
func StartHealth(cert *tls.Certificate, withHealth bool) (*HealthServer, error) {
	// Bind first, then serve: Addr works the moment this returns.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("grpctest: listen: %w", err)
	}
	s := &HealthServer{Addr: ln.Addr().String(), Health: health.NewServer(), done: make(chan struct{})}
	opts := []grpc.ServerOption{grpc.UnaryInterceptor(s.intercept)}
	if cert != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12})))
	}
	s.srv = grpc.NewServer(opts...)
	if withHealth {
		grpc_health_v1.RegisterHealthServer(s.srv, s.Health)
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// NewHealth starts a HealthServer for the test and stops it at cleanup.
func NewHealth(t testing.TB, cert *tls.Certificate) *HealthServer {
	t.Helper()
	s, err := StartHealth(cert, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// SetHang makes RPCs from now on wait until their client's deadline (or
// the server's Close) instead of answering: a stuck server.
func (s *HealthServer) SetHang(on bool) { s.hang.Store(on) }

// Calls counts the RPCs the server received.
func (s *HealthServer) Calls() int64 { return s.calls.Load() }

func (s *HealthServer) intercept(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	s.calls.Add(1)
	if s.hang.Load() {
		<-ctx.Done() // the client went away, or Stop closed the connection
		return nil, ctx.Err()
	}
	return next(ctx, req)
}

// Close stops the server at once, closing every connection, and waits for
// it. It is safe to call more than once.
func (s *HealthServer) Close() {
	s.once.Do(func() {
		s.srv.Stop()
		<-s.done
	})
}
