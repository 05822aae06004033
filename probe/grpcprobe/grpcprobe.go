package grpcprobe

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/vantage-probe/vantage/internal/grpcwire"
	"github.com/vantage-probe/vantage/probe"
	"github.com/vantage-probe/vantage/probe/tlsprobe"
)

// UserAgent is sent so that target owners can tell probes from clients in
// their logs.
const UserAgent = "Vantage-Probe/1.0"

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
	scheme  string // "http" (h2c, prior knowledge) or "https"
	// body is the length-prefixed HealthCheckRequest, read-only.
	body []byte
	tr   *http.Transport
}

var _ probe.Prober = (*Prober)(nil)

// New validates o and prepares the request and TLS config once. Errors
// name the TOML key at fault with its value quoted (`address "x": ...`);
// every problem is reported, joined.
func New(o Options) (*Prober, error) { return NewShared(o, nil) }

// NewShared is New with the CA bundle, the client key pair and the HTTP/2
// transport shared through s with the other probers of a configuration
// (nil: nothing shared).
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
		scheme:  "http",
		body:    grpcwire.Request(o.Service),
		tr:      transportFor(s),
	}
	if o.UseTLS {
		p.scheme = "https"
		if p.hs, err = tlsprobe.NewHandshakerShared(o.TLS, host, s, "h2"); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// idleConnTimeout bounds how long net/http keeps a closed HTTP/2
// connection reachable, as in httpprobe (see its transportFor): with the
// default, the heap would hold every connection of the last 5 s of probes.
const idleConnTimeout = 100 * time.Millisecond

// maxHeaderBytes bounds the response headers and trailers a probe accepts.
const maxHeaderBytes = 64 << 10

// transportKey names the shared transport in probe.Shared.
type transportKey struct{}

// transportFor returns the HTTP/2 transport: h2c with prior knowledge for
// http, h2 agreed by ALPN for https, never HTTP/1. It holds nothing of a
// prober's: NewClientConn always dials, through dialPlain and dialTLS,
// which take the prober and the probe's attempt from the context, and
// never pools, so every probe sees a fresh connection and one transport
// serves every prober of a configuration.
func transportFor(s *probe.Shared) *http.Transport {
	return s.Value(transportKey{}, func() any {
		var protos http.Protocols
		protos.SetHTTP2(true)
		protos.SetUnencryptedHTTP2(true)
		return &http.Transport{
			Proxy:          nil, // a probe measures the target, not a proxy from the environment
			DialContext:    dialPlain,
			DialTLSContext: dialTLS,
			Protocols:      &protos,
			// No accept-encoding: gzip on the request; gRPC compresses
			// messages itself, when asked, and the probe does not ask.
			DisableCompression:     true,
			MaxResponseHeaderBytes: maxHeaderBytes,
			IdleConnTimeout:        idleConnTimeout,
		}
	}).(*http.Transport)
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

	a := &attempt{p: p}
	out := p.check(context.WithValue(ctx, attemptKey{}, a), a, addr)
	end := time.Now()
	a.close()

	a.phases(&r, end)
	r.TLS = a.tlsFacts
	r.GRPC = &probe.GRPCFacts{StatusCode: out.code, TLS: a.tlsFacts != nil}
	if out.answered {
		r.GRPC.ServingStatus = grpcwire.ServingName(out.serving)
	}
	reason, msg := p.verdict(ctx, out, a)
	if reason != probe.ReasonNone {
		return probe.Finish(r.Fail(reason, msg))
	}
	r.OK = true
	return probe.Finish(r)
}

// outcome is what the RPC returned: its status and, when it succeeded,
// the serving status it answered.
type outcome struct {
	status
	serving  int32
	answered bool
}

// check connects to addr and runs the Check RPC over HTTP/2.
func (p *Prober) check(ctx context.Context, a *attempt, addr string) outcome {
	cc, err := p.tr.NewClientConn(ctx, p.scheme, addr)
	if err != nil {
		return outcome{status: transportStatus(ctx, err)}
	}
	a.cc = cc
	// The transport's idle timer (idleConnTimeout, armed when the
	// connection was made) closes a connection with no request in flight
	// or reserved: reserving the slot at once keeps a probe stalled before
	// its RoundTrip (a GC pause, a loaded machine) from losing it.
	if err := cc.Reserve(); err != nil {
		return outcome{status: status{grpcwire.Unavailable, "connection closed before the request: " + err.Error()}}
	}
	h := http.Header{
		"Content-Type": {"application/grpc"},
		"Te":           {"trailers"},
		"User-Agent":   {UserAgent},
	}
	if dl, ok := ctx.Deadline(); ok {
		// The server may give up at the same time as the probe.
		h["Grpc-Timeout"] = []string{encodeTimeout(time.Until(dl))}
	}
	req := (&http.Request{
		Method:        http.MethodPost,
		URL:           &url.URL{Scheme: p.scheme, Host: p.o.Address, Path: grpcwire.CheckPath},
		Host:          p.o.Address, // the :authority
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(p.body)),
		ContentLength: int64(len(p.body)),
	}).WithContext(ctx)
	resp, err := cc.RoundTrip(req)
	if err != nil {
		return outcome{status: transportStatus(ctx, err)}
	}
	defer resp.Body.Close()
	return answer(ctx, resp)
}

// answer reads the response as grpc-go's client would: the status from
// grpc-status, in the headers of a Trailers-Only response or else in the
// trailers; for a response that has none and is not gRPC (a proxy's error
// page), a code from the HTTP status.
func answer(ctx context.Context, resp *http.Response) outcome {
	if resp.ProtoMajor != 2 {
		return outcome{status: status{grpcwire.Unavailable, resp.Proto + " response: gRPC needs HTTP/2"}}
	}
	if st, ok := statusFrom(resp.Header); ok {
		if st.code == grpcwire.OK {
			return outcome{status: status{grpcwire.Internal, "no response message (Trailers-Only with status OK)"}}
		}
		return outcome{status: st}
	}
	ct := resp.Header.Get("Content-Type")
	if resp.StatusCode != http.StatusOK || !grpcwire.IsContentType(ct) {
		var msg string
		if resp.StatusCode != http.StatusOK {
			msg = fmt.Sprintf("HTTP status %d (%s)", resp.StatusCode, http.StatusText(resp.StatusCode))
		}
		if !grpcwire.IsContentType(ct) {
			if msg != "" {
				msg += "; "
			}
			msg += fmt.Sprintf("content-type %q, not application/grpc", ct)
		}
		return outcome{status: status{httpCode(resp.StatusCode), msg}}
	}
	msg, st, ok := readMessage(ctx, resp.Body)
	if !ok {
		return outcome{status: st}
	}
	// The trailers are there once the body has been read to its end.
	st, ok = statusFrom(resp.Trailer)
	switch {
	case !ok:
		return outcome{status: status{grpcwire.Internal, "the server ended the stream without a grpc-status"}}
	case st.code != grpcwire.OK:
		return outcome{status: st}
	case msg == nil:
		return outcome{status: status{grpcwire.Internal, "no response message"}}
	}
	v, err := grpcwire.ParseResponse(msg)
	if err != nil {
		return outcome{status: status{grpcwire.Internal, err.Error()}}
	}
	return outcome{status: st, serving: v, answered: true}
}

// readMessage reads the one length-prefixed message of a unary response
// (nil when there is none) and checks that nothing follows it. ok is false
// when the body is not that, st then saying why.
func readMessage(ctx context.Context, body io.Reader) (msg []byte, st status, ok bool) {
	var prefix [5]byte
	if _, err := io.ReadFull(body, prefix[:]); err != nil {
		if err == io.EOF {
			return nil, status{}, true
		}
		return nil, transportStatus(ctx, fmt.Errorf("reading the response: %w", err)), false
	}
	if prefix[0] != 0 {
		return nil, status{grpcwire.Internal, fmt.Sprintf("response message with compressed-flag %d, though the probe asked for no compression", prefix[0])}, false
	}
	n := binary.BigEndian.Uint32(prefix[1:])
	if n > maxMessage {
		return nil, status{grpcwire.ResourceExhausted, fmt.Sprintf("response message of %d bytes, over the %d a probe reads", n, maxMessage)}, false
	}
	msg = make([]byte, n)
	if _, err := io.ReadFull(body, msg); err != nil {
		return nil, transportStatus(ctx, fmt.Errorf("reading the response: %w", err)), false
	}
	var more [1]byte
	switch _, err := io.ReadFull(body, more[:]); {
	case err == nil:
		return nil, status{grpcwire.Internal, "more than one response message to a unary RPC"}, false
	case err != io.EOF:
		return nil, transportStatus(ctx, fmt.Errorf("reading the response: %w", err)), false
	}
	return msg, status{}, true
}

// transportStatus is the status of an RPC that got no answer, as grpc-go
// gives it: DeadlineExceeded or Canceled when the context ended it,
// Unavailable otherwise.
func transportStatus(ctx context.Context, err error) status {
	if probe.Classify(err, ctxErr(ctx)) == probe.ReasonTimeout {
		if errors.Is(ctx.Err(), context.Canceled) {
			return status{grpcwire.Canceled, err.Error()}
		}
		return status{grpcwire.DeadlineExceeded, err.Error()}
	}
	return status{grpcwire.Unavailable, err.Error()}
}

// ctxErr is ctx.Err(), or DeadlineExceeded once ctx's deadline has passed
// though its timer has not yet fired. The server got the same deadline
// (grpc-timeout) and may reset the stream first: on a loaded machine the
// probe then read "stream error: CANCEL; received from peer" at its
// deadline and failed with grpc_error instead of timeout. grpc-go's client
// makes the same correction for a reset that comes at its deadline.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// verdict decides the probe from the answer, or from why there was none:
// what the dialer and the handshake saw explains an Unavailable better
// than its message does.
func (p *Prober) verdict(ctx context.Context, out outcome, a *attempt) (probe.Reason, string) {
	service := fmt.Sprintf("service %q", p.o.Service)
	if p.o.Service == "" {
		service = "the server"
	}
	switch {
	case out.answered && out.serving == grpcwire.Serving:
		return probe.ReasonNone, ""
	case out.answered && out.serving == grpcwire.ServiceUnknown:
		return probe.ReasonServiceUnknown, fmt.Sprintf("%s: serving status SERVICE_UNKNOWN", service)
	case out.answered:
		return probe.ReasonNotServing, fmt.Sprintf("%s: serving status %s", service, grpcwire.ServingName(out.serving))
	case a.dialErr != nil:
		return probe.Classify(a.dialErr, ctx.Err()), a.dialErr.Error()
	case a.tlsReason != probe.ReasonNone:
		return a.tlsReason, a.tlsMsg
	case ctxErr(ctx) != nil || out.code == grpcwire.DeadlineExceeded:
		return probe.ReasonTimeout, fmt.Sprintf("health check of %s: %s", service, out.describe())
	case out.code == grpcwire.NotFound:
		return probe.ReasonServiceUnknown, fmt.Sprintf("%s: %s", service, out.describe())
	}
	return probe.ReasonGRPCError, fmt.Sprintf("health check of %s: %s", service, out.describe())
}
