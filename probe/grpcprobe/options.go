// Package grpcprobe checks a gRPC server with the standard health-checking
// protocol, grpc.health.v1.Health/Check, through the official client.
//
// What a probe does, where a user could wonder:
//
//   - Every probe resolves the address (through probe.Net, so source_ip
//     and ip_protocol apply), opens a new client connection to that IP,
//     runs one Check and closes the connection: it measures what a new
//     client sees. The client does no name resolution, service config
//     lookup, proxying, retry or waiting for readiness of its own.
//   - Service names the service to ask about; "" asks about the server as a
//     whole. The :authority is the configured address.
//   - SERVING passes. NOT_SERVING and UNKNOWN fail with not_serving; a
//     service the server does not know (status NOT_FOUND, as grpc-go's
//     health server answers, or SERVICE_UNKNOWN) with service_unknown; any
//     other failed RPC with grpc_error, the status code and message in the
//     result's message (a server without the health service answers
//     Unimplemented). Failures to connect keep their usual reasons.
//   - With TLS, ALPN offers h2; the chain is verified after the handshake,
//     so that an expired or untrusted certificate fails the probe
//     (cert_expired, cert_invalid) while its facts are still reported.
//   - Phases: resolve, connect, tls (zero without TLS), check (the
//     connection ready to the answer: the HTTP/2 preface and the RPC); all
//     four are always present. blackbox_exporter's
//     probe_grpc_duration_seconds has resolve and a check that spans
//     connect, tls and check here.
package grpcprobe

import "github.com/vantage-probe/vantage/probe"

// Options describe one gRPC target.
type Options struct {
	Address string // host:port
	// Service is the service name sent in the HealthCheckRequest; "" is
	// the server's overall health.
	Service string
	UseTLS  bool
	TLS     probe.TLSOptions
	Net     probe.Net
}
