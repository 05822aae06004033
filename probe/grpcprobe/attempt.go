package grpcprobe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/vantage-probe/vantage/probe"
)

// attempt is one probe's connection. The transport's dial functions record
// here what they saw; they run on the probe's goroutine, inside
// Transport.NewClientConn, so the probe reads it without a lock once that
// has returned.
type attempt struct {
	p *Prober
	// raw is the TCP connection and cc the HTTP/2 connection on it, both
	// closed by close whatever happened.
	raw net.Conn
	cc  *http.ClientConn

	dialStart, dialEnd time.Time
	dialErr            error
	tlsStart, tlsEnd   time.Time
	tlsFacts           *probe.TLSFacts
	tlsReason          probe.Reason
	tlsMsg             string
	// ready is when the connection was ready for HTTP/2: connected, and
	// handshaken with h2 agreed over TLS. Zero when it never was.
	ready time.Time
}

// attemptKey finds the attempt in the context the transport hands to the
// dial functions, which one transport shares between every prober.
type attemptKey struct{}

// errNoAttempt is what the dial functions return for a context without an
// attempt: a connection that did not come from Probe.
var errNoAttempt = errors.New("grpcprobe: the transport dials only for Probe")

func attemptOf(ctx context.Context) (*attempt, error) {
	a, ok := ctx.Value(attemptKey{}).(*attempt)
	if !ok || a == nil {
		return nil, errNoAttempt
	}
	return a, nil
}

// dialPlain is the transport's DialContext: probe.Net's dialer (source_ip,
// the family) to the already resolved addr, timed.
func dialPlain(ctx context.Context, _, addr string) (net.Conn, error) {
	a, err := attemptOf(ctx)
	if err != nil {
		return nil, err
	}
	c, err := a.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	a.ready = a.dialEnd
	return c, nil
}

func (a *attempt) dial(ctx context.Context, addr string) (net.Conn, error) {
	a.dialStart = time.Now()
	c, err := a.p.dialer.DialContext(ctx, a.p.network, addr)
	a.dialEnd = time.Now()
	if err != nil {
		a.dialErr = err
		return nil, err
	}
	a.raw = c
	return c, nil
}

// dialTLS is the transport's DialTLSContext: the connection of dialPlain,
// then tlsprobe.Handshaker's handshake, which reports the chain even when
// it does not verify. It returns the *tls.Conn itself, from which net/http
// reads the ALPN protocol; anything but h2 fails here, before a request is
// sent: gRPC is HTTP/2 only, and so is grpc-go's client.
func dialTLS(ctx context.Context, _, addr string) (net.Conn, error) {
	a, err := attemptOf(ctx)
	if err != nil {
		return nil, err
	}
	raw, err := a.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	a.tlsStart = time.Now()
	var r probe.Result
	tc, reason, msg := a.p.hs.Handshake(ctx, raw, &r)
	a.tlsEnd, a.tlsFacts = time.Now(), r.TLS
	if reason != probe.ReasonNone {
		if reason == probe.ReasonTLSHandshake && strings.HasSuffix(msg, noALPNAlert) {
			msg += " (the server offers no h2 by ALPN: gRPC needs HTTP/2)"
		}
		a.tlsReason, a.tlsMsg = reason, msg
		return nil, errors.New(msg)
	}
	// Handshake bounded raw with the probe's deadline; from here on the
	// probe's context bounds the HTTP/2 connection, and a deadline firing
	// on the socket first would race it with a less telling error.
	_ = raw.SetDeadline(time.Time{})
	if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
		if p == "" {
			p = "no protocol"
		} else {
			p = fmt.Sprintf("%q", p)
		}
		return nil, fmt.Errorf("%s negotiated %s by ALPN, not h2: it does not speak HTTP/2 over TLS, which gRPC needs", addr, p)
	}
	a.ready = a.tlsEnd
	return tc, nil
}

// noALPNAlert ends crypto/tls's message for the no_application_protocol
// alert: the server speaks only protocols other than h2 (http/1.1,
// typically). tlsprobe hands over the message, not the error.
const noALPNAlert = "tls: no application protocol"

// close closes the connection. The socket goes first, so that closing the
// TLS connection on it sends no close_notify: tls.Conn.Close would give
// that write a fresh 5 s deadline, on the probe's goroutine.
func (a *attempt) close() {
	if a.raw != nil {
		_ = a.raw.Close()
	}
	if a.cc != nil {
		_ = a.cc.Close()
	}
}

// phases fills r's connect, tls and check phases; check runs from the
// connection ready to end.
func (a *attempt) phases(r *probe.Result, end time.Time) {
	span := func(from, to time.Time) time.Duration {
		if from.IsZero() || to.IsZero() {
			return 0
		}
		return max(to.Sub(from), 0)
	}
	r.Phases[iConnect].Duration = span(a.dialStart, a.dialEnd)
	r.Phases[iTLS].Duration = span(a.tlsStart, a.tlsEnd)
	r.Phases[iCheck].Duration = span(a.ready, end)
}
