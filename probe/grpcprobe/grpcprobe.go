package grpcprobe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/vantage-probe/vantage/probe"
	"github.com/vantage-probe/vantage/probe/tlsprobe"
)

// UserAgent is sent (before grpc-go's own) so that target owners can tell
// probes from clients in their logs.
const UserAgent = "Vantage-Probe/1.0"

// bufferSize is the client connection's read and write buffer: a health
// check is a few hundred bytes each way, and grpc-go's 32 KB defaults,
// allocated for every connection, would be most of a probe's garbage.
const bufferSize = 4096

// Indices of the phases in Result.Phases: all four are always present, so
// that the exported series never come and go.
const (
	iResolve = iota
	iConnect
	iTLS
	iCheck
	numPhases
)

// Prober probes one grpc target. It is immutable after New and safe for
// concurrent use: what a probe learns lives in that probe's attempt.
type Prober struct {
	o       Options
	hs      *tlsprobe.Handshaker // nil without TLS
	dialer  *net.Dialer
	network string
	req     *grpc_health_v1.HealthCheckRequest
	// opts are the dial options every probe shares, read-only; each probe
	// adds its own dialer (and credentials with TLS).
	opts []grpc.DialOption
}

var _ probe.Prober = (*Prober)(nil)

// New validates o and prepares the dial options and TLS config once.
// Errors name the TOML key at fault with its value quoted (`address "x":
// ...`); every problem is reported, joined.
func New(o Options) (*Prober, error) { return NewShared(o, nil) }

// NewShared is New with the CA bundle and client key pair shared through s
// with the other probers of a configuration (nil: nothing shared).
func NewShared(o Options, s *probe.Shared) (*Prober, error) {
	var errs []error
	host, err := o.Net.SplitAddress(o.Address)
	if err != nil {
		errs = append(errs, err)
	}
	switch o.Net.IPProtocol {
	case probe.IPAuto, probe.IPv4, probe.IPv6:
	default:
		errs = append(errs, fmt.Errorf("ip_protocol %q: must be ip4 or ip6", string(o.Net.IPProtocol)))
	}
	p := &Prober{
		o:       o,
		dialer:  o.Net.StreamDialerShared(s),
		network: o.Net.Network("tcp"),
		req:     &grpc_health_v1.HealthCheckRequest{Service: o.Service},
		opts: []grpc.DialOption{
			grpc.WithAuthority(o.Address),
			grpc.WithUserAgent(UserAgent),
			// A probe measures the target: no proxy from the environment,
			// no service config (a DNS TXT lookup), no retries.
			grpc.WithNoProxy(),
			grpc.WithDisableServiceConfig(),
			grpc.WithDisableRetry(),
			grpc.WithReadBufferSize(bufferSize),
			grpc.WithWriteBufferSize(bufferSize),
		},
	}
	if o.UseTLS {
		if p.hs, err = tlsprobe.NewHandshakerShared(o.TLS, host, s, "h2"); err != nil {
			errs = append(errs, err)
		}
	} else {
		p.opts = append(p.opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// Probe runs one probe: resolve, a new connection, one Check, close. It
// fails with dns_error, connect_refused, connect_error, timeout,
// tls_handshake, cert_expired, cert_invalid, not_serving, service_unknown
// or grpc_error. Result.GRPC is filled once the RPC was attempted,
// Result.TLS once a handshake completed.
func (p *Prober) Probe(ctx context.Context) probe.Result {
	r := probe.Result{At: time.Now(), Phases: make([]probe.Phase, numPhases)}
	for i, name := range [numPhases]string{probe.PhaseResolve, probe.PhaseConnect, probe.PhaseTLS, probe.PhaseCheck} {
		r.Phases[i].Name = name
	}
	addr, took, err := p.o.Net.Resolve(ctx, p.o.Address)
	r.Phases[iResolve].Duration = took
	if err != nil {
		reason := probe.ReasonDNSError
		if probe.Classify(err, ctx.Err()) == probe.ReasonTimeout {
			reason = probe.ReasonTimeout
		}
		return probe.Finish(r.Fail(reason, "resolve: "+err.Error()))
	}
	r.RemoteAddr = addr

	a := &attempt{p: p, ctx: ctx}
	opts := append(p.opts[:len(p.opts):len(p.opts)], grpc.WithContextDialer(a.dial))
	if p.hs != nil {
		opts = append(opts, grpc.WithTransportCredentials(creds{a}))
	}
	// passthrough: the address is already resolved, grpc-go must not
	// resolve it again.
	cc, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		return probe.Finish(r.Fail(probe.ReasonConfig, "grpc client: "+err.Error()))
	}
	resp, err := grpc_health_v1.NewHealthClient(cc).Check(ctx, p.req)
	end := time.Now()
	// Close waits for nothing: the transport's goroutines end on their own
	// once the connection is closed.
	_ = cc.Close()

	s := a.snapshot(end)
	r.Phases[iConnect].Duration = s.connect
	r.Phases[iTLS].Duration = s.tls
	r.Phases[iCheck].Duration = s.check
	r.TLS = s.tlsFacts
	st := status.Convert(err)
	r.GRPC = &probe.GRPCFacts{StatusCode: int(st.Code()), TLS: s.tlsFacts != nil}
	if resp != nil {
		r.GRPC.ServingStatus = resp.GetStatus().String()
	}
	reason, msg := p.verdict(ctx, resp, st, s)
	if reason != probe.ReasonNone {
		return probe.Finish(r.Fail(reason, msg))
	}
	r.OK = true
	return probe.Finish(r)
}

// verdict decides the probe from the answer, or from why there was none:
// what the dialer and the handshake saw explains an Unavailable better
// than its message does.
func (p *Prober) verdict(ctx context.Context, resp *grpc_health_v1.HealthCheckResponse, st *status.Status, s snapshot) (probe.Reason, string) {
	service := fmt.Sprintf("service %q", p.o.Service)
	if p.o.Service == "" {
		service = "the server"
	}
	switch {
	case st.Code() == codes.OK && resp.GetStatus() == grpc_health_v1.HealthCheckResponse_SERVING:
		return probe.ReasonNone, ""
	case st.Code() == codes.OK && resp.GetStatus() == grpc_health_v1.HealthCheckResponse_SERVICE_UNKNOWN:
		return probe.ReasonServiceUnknown, fmt.Sprintf("%s: serving status SERVICE_UNKNOWN", service)
	case st.Code() == codes.OK:
		return probe.ReasonNotServing, fmt.Sprintf("%s: serving status %s", service, resp.GetStatus())
	case s.dialErr != nil:
		return probe.Classify(s.dialErr, ctx.Err()), s.dialErr.Error()
	case s.tlsReason != probe.ReasonNone:
		return s.tlsReason, s.tlsMsg
	case ctx.Err() != nil || st.Code() == codes.DeadlineExceeded:
		return probe.ReasonTimeout, fmt.Sprintf("health check of %s: %s", service, describe(st))
	case st.Code() == codes.NotFound:
		return probe.ReasonServiceUnknown, fmt.Sprintf("%s: %s", service, describe(st))
	}
	return probe.ReasonGRPCError, fmt.Sprintf("health check of %s: %s", service, describe(st))
}

// describe renders a status as "code Unavailable: message".
func describe(st *status.Status) string {
	return fmt.Sprintf("code %s: %s", st.Code(), st.Message())
}
