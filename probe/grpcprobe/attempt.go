package grpcprobe

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/vantage-probe/vantage/probe"
)

// attempt is one probe's connection as grpc-go makes it, on goroutines of
// its own: the dialer and the TLS handshake record here what they saw, for
// the probe to read when the RPC has returned. Only the first dial and
// handshake are the probe's: grpc-go may try again before the connection
// is closed.
type attempt struct {
	p   *Prober
	ctx context.Context // the probe's: its deadline bounds the dial and the handshake

	mu                 sync.Mutex
	dialStart, dialEnd time.Time
	dialErr            error
	tlsStart, tlsEnd   time.Time
	tlsFacts           *probe.TLSFacts
	tlsReason          probe.Reason
	tlsMsg             string
}

// bounded returns ctx (grpc-go's, cancelled when the connection closes)
// bounded by the probe's deadline too.
func (a *attempt) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := a.ctx.Deadline(); ok {
		return context.WithDeadline(ctx, dl)
	}
	return ctx, func() {}
}

// dial is grpc-go's dialer: probe.Net's dialer (source_ip, the family),
// timed.
func (a *attempt) dial(ctx context.Context, addr string) (net.Conn, error) {
	a.mu.Lock()
	first := a.dialStart.IsZero()
	if first {
		a.dialStart = time.Now()
	}
	a.mu.Unlock()
	ctx, cancel := a.bounded(ctx)
	defer cancel()
	c, err := a.p.dialer.DialContext(ctx, a.p.network, addr)
	if first {
		a.mu.Lock()
		a.dialEnd, a.dialErr = time.Now(), err
		a.mu.Unlock()
	}
	return c, err
}

// creds are the TLS transport credentials of one attempt: the handshake of
// tlsprobe.Handshaker, which reports the chain even when it does not
// verify, in place of grpc-go's, which would only say that it failed.
type creds struct{ a *attempt }

var _ credentials.TransportCredentials = creds{}

func (c creds) ClientHandshake(ctx context.Context, _ string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	a := c.a
	a.mu.Lock()
	first := a.tlsStart.IsZero()
	if first {
		a.tlsStart = time.Now()
	}
	a.mu.Unlock()
	ctx, cancel := a.bounded(ctx)
	defer cancel()
	var r probe.Result
	tc, reason, msg := a.p.hs.Handshake(ctx, raw, &r)
	// Handshake bounded itself with a deadline on raw; from here on the
	// connection is grpc-go's.
	_ = raw.SetDeadline(time.Time{})
	if first {
		a.mu.Lock()
		a.tlsEnd, a.tlsFacts, a.tlsReason, a.tlsMsg = time.Now(), r.TLS, reason, msg
		a.mu.Unlock()
	}
	if reason != probe.ReasonNone {
		return nil, nil, errors.New(msg)
	}
	info := credentials.TLSInfo{
		State:          tc.ConnectionState(),
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity},
	}
	return rawCloser{tc, raw}, info, nil
}

func (creds) ServerHandshake(net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("grpcprobe: client credentials only")
}

func (creds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls", SecurityVersion: "1.2"}
}

func (c creds) Clone() credentials.TransportCredentials { return c }

func (creds) OverrideServerName(string) error { return nil }

// rawCloser is a TLS connection closed by closing the connection under it,
// skipping close_notify, as every prober does: tls.Conn.Close would give
// the alert a fresh 5 s write deadline, on grpc-go's goroutine.
type rawCloser struct {
	*tls.Conn
	raw net.Conn
}

func (c rawCloser) Close() error { return c.raw.Close() }

// snapshot is what an attempt saw, read once the RPC returned at end.
type snapshot struct {
	connect, tls, check time.Duration
	dialErr             error
	tlsFacts            *probe.TLSFacts
	tlsReason           probe.Reason
	tlsMsg              string
}

// snapshot reads the attempt. A step still under way at end counts until
// end, so that a timeout shows where it hit; check runs from the
// connection ready (connected, and handshaken with TLS) to end.
func (a *attempt) snapshot(end time.Time) snapshot {
	a.mu.Lock()
	defer a.mu.Unlock()
	span := func(from, to time.Time) time.Duration {
		if from.IsZero() {
			return 0
		}
		if to.IsZero() || to.After(end) {
			to = end
		}
		return max(to.Sub(from), 0)
	}
	s := snapshot{
		connect:   span(a.dialStart, a.dialEnd),
		tls:       span(a.tlsStart, a.tlsEnd),
		dialErr:   a.dialErr,
		tlsFacts:  a.tlsFacts,
		tlsReason: a.tlsReason,
		tlsMsg:    a.tlsMsg,
	}
	ready := a.dialEnd
	if a.p.hs != nil {
		ready = a.tlsEnd
	}
	if a.dialErr == nil && a.tlsReason == probe.ReasonNone && !ready.IsZero() && ready.Before(end) {
		s.check = end.Sub(ready)
	}
	return s
}
