// Package grpcprobe checks a gRPC server with the standard health-checking
// protocol, grpc.health.v1.Health/Check. The client is written by hand:
// the gRPC wire protocol (a length-prefixed protobuf message each way, the
// status in HTTP/2 trailers) over net/http's HTTP/2, so that the agent
// does not link grpc-go and protobuf (3.6 MB of binary, 3.2 MB of resident
// memory at 10k targets) for one RPC of two one-field messages. Its tests
// check it against grpc-go's own health server.
//
// What a probe does, where a user could wonder:
//
//   - Every probe resolves the address (through probe.Net, so source_ip
//     and ip_protocol apply), opens a new HTTP/2 connection to that IP
//     (h2c with prior knowledge, or TLS), runs one Check and closes the
//     connection: it measures what a new client sees. There is no proxy,
//     service config, retry or waiting for readiness. The request carries
//     grpc-timeout, from the probe's deadline, and user-agent
//     Vantage-Probe/1.0.
//   - Service names the service to ask about; "" asks about the server as a
//     whole. The :authority is the configured address.
//   - SERVING passes. NOT_SERVING and UNKNOWN fail with not_serving; a
//     service the server does not know (status NOT_FOUND, as grpc-go's
//     health server answers, or SERVICE_UNKNOWN) with service_unknown; any
//     other failed RPC with grpc_error, the status code and message in the
//     result's message (a server without the health service answers
//     Unimplemented). An answer without grpc-status that is not gRPC (a
//     proxy's error page) gets its code from the HTTP status, as gRPC's
//     HTTP-to-gRPC mapping says: 404 Unimplemented, 503 Unavailable...
//     An answer is read up to 64 KiB. Failures to connect keep their
//     usual reasons.
//   - With TLS, ALPN offers h2 only; the chain is verified after the
//     handshake, so that an expired or untrusted certificate fails the
//     probe (cert_expired, cert_invalid) while its facts are still
//     reported. A server that does not agree to h2 fails the probe before
//     any request: tls_handshake when it refuses the handshake for it,
//     grpc_error (Unavailable) when it knows no ALPN.
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
