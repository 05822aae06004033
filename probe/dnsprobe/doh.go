package dnsprobe

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/vantage-probe/vantage/probe"
)

// dohDial is one DoH probe's dial state. The transport dials on its own
// goroutine, hence the mutex.
type dohDial struct {
	mu      sync.Mutex
	connect time.Duration
	tls     time.Duration
	reason  probe.Reason    // set when the dial failed, for the RoundTrip error
	facts   *probe.TLSFacts // of the first handshake
	conns   []net.Conn
	closed  bool // the probe is over: a late dial closes its own connection
}

func (d *dohDial) closeAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		_ = c.Close()
	}
	d.conns = nil
	d.closed = true
}

// dohError carries the reason of a failed DoH dial through net/http.
type dohError struct {
	reason probe.Reason
	err    error
}

func (e *dohError) Error() string { return e.err.Error() }
func (e *dohError) Unwrap() error { return e.err }

// exchangeHTTPS POSTs the query as application/dns-message (RFC 8484) over a
// fresh connection, HTTP/2 when the server's ALPN allows, and reads at most
// 64 KiB of answer.
func (p *Prober) exchangeHTTPS(ctx context.Context, remote string, res *probe.Result) (*dns.Msg, probe.Reason, error) {
	st := &dohDial{}
	// The transport is per probe: every probe measures a fresh connect and
	// handshake and nothing outlives it. Keep-alives off makes the transport
	// close the connection after the answer, and a dial that finishes after
	// a cancelled request is closed instead of pooled.
	tr := &http.Transport{
		DialTLSContext: func(_ context.Context, _, _ string) (net.Conn, error) {
			// The probe's ctx, not net/http's: the dial must not outlive
			// the probe.
			return p.dialDoH(ctx, remote, st)
		},
		ForceAttemptHTTP2:      true,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: maxDoHResponse,
	}
	defer st.closeAll()
	defer tr.CloseIdleConnections()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.dohURL, bytes.NewReader(p.query))
	if err != nil {
		return nil, probe.ReasonConfig, err
	}
	req.Header = http.Header{
		"Content-Type": {"application/dns-message"},
		"Accept":       {"application/dns-message"},
	}

	t0 := time.Now()
	body, reason, err := p.roundTripDoH(ctx, tr, req)
	elapsed := time.Since(t0)

	st.mu.Lock()
	connect, handshake, dialReason := st.connect, st.tls, st.reason
	res.TLS = st.facts
	st.mu.Unlock()
	// Phases that never started (no handshake after a refused connect)
	// are left out rather than reported as zero.
	if connect > 0 {
		res.AddPhase(probe.PhaseConnect, connect)
	}
	if handshake > 0 {
		res.AddPhase(probe.PhaseTLS, handshake)
	}
	if rt := elapsed - connect - handshake; rt > 0 && dialReason == probe.ReasonNone {
		res.AddPhase(probe.PhaseRoundTrip, rt)
	}
	if err != nil {
		var de *dohError
		switch {
		case ctx.Err() != nil:
			reason = probe.ReasonTimeout
		case errors.As(err, &de):
			reason = de.reason
		case dialReason != probe.ReasonNone:
			reason = dialReason
		}
		return nil, reason, err
	}
	return unpack(body)
}

// roundTripDoH sends req and returns the bounded body of a 200 answer.
func (p *Prober) roundTripDoH(ctx context.Context, tr *http.Transport, req *http.Request) ([]byte, probe.Reason, error) {
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, probe.Classify(err, ctx.Err()), err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, probe.ReasonHTTPError, fmt.Errorf("DoH server answered HTTP status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDoHResponse+1))
	if err != nil {
		return nil, probe.Classify(err, ctx.Err()), fmt.Errorf("read DoH answer: %w", err)
	}
	if len(body) > maxDoHResponse {
		return nil, probe.ReasonDNSProtocol, fmt.Errorf("DoH answer larger than %d bytes", maxDoHResponse)
	}
	return body, probe.ReasonNone, nil
}

// dialDoH connects to the resolved remote, runs the handshake and verifies
// the chain itself, recording phases, facts and the connection in st.
func (p *Prober) dialDoH(ctx context.Context, remote string, st *dohDial) (net.Conn, error) {
	t0 := time.Now()
	raw, err := p.tcpDial.DialContext(ctx, p.net.Network("tcp"), remote)
	d := time.Since(t0)
	st.mu.Lock()
	st.connect += d
	st.mu.Unlock()
	if err != nil {
		return nil, &dohError{probe.Classify(err, ctx.Err()), err}
	}
	tc := tls.Client(raw, p.tlsConf)
	t1 := time.Now()
	err = tc.HandshakeContext(ctx)
	d = time.Since(t1)

	st.mu.Lock()
	defer st.mu.Unlock()
	st.tls += d
	if st.closed {
		_ = raw.Close()
		return nil, &dohError{probe.ReasonTimeout, errors.New("probe ended during the dial")}
	}
	st.conns = append(st.conns, raw)
	if err != nil {
		st.reason = tlsReason(err, ctx)
		return nil, &dohError{st.reason, fmt.Errorf("tls handshake: %w", err)}
	}
	cs := tc.ConnectionState()
	var tr probe.Result
	reason, err := p.verifyTLS(&cs, &tr)
	if st.facts == nil {
		// Only the first connection's facts are kept; with keep-alives off
		// and no redirects there is only one.
		st.facts = tr.TLS
	}
	if err != nil {
		st.reason = reason
		return nil, &dohError{reason, err}
	}
	return tc, nil
}
