package dnsprobe

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/miekg/dns"

	"github.com/vantage-probe/vantage/probe"
)

// headerSize is the fixed DNS header length; anything shorter is garbage.
const headerSize = 12

// exchangeUDP sends the query in one datagram and waits for the answer that
// carries its ID, ignoring stale datagrams (answers to earlier, timed-out
// queries) the way miekg's client does.
func (p *Prober) exchangeUDP(ctx context.Context, remote string, res *probe.Result) (*dns.Msg, probe.Reason, error) {
	t0 := time.Now()
	conn, err := p.udpDial.DialContext(ctx, p.net.Network("udp"), remote)
	res.AddPhase(probe.PhaseConnect, time.Since(t0))
	if err != nil {
		return nil, probe.Classify(err, ctx.Err()), err
	}
	defer conn.Close()
	stop := watch(ctx, conn)
	defer stop()

	// One buffer serves the query and then the answer; one byte beyond the
	// advertised size detects an answer that did not fit.
	buf := make([]byte, max(p.udpBuf+1, len(p.query)))
	id := newID()
	n := copy(buf, p.query)
	binary.BigEndian.PutUint16(buf, id)

	t1 := time.Now()
	if _, err := conn.Write(buf[:n]); err != nil {
		res.AddPhase(probe.PhaseRoundTrip, time.Since(t1))
		return nil, probe.Classify(err, ctx.Err()), fmt.Errorf("send query: %w", err)
	}
	for {
		n, err := conn.Read(buf)
		if err != nil {
			res.AddPhase(probe.PhaseRoundTrip, time.Since(t1))
			// A connected UDP socket reports the ICMP port unreachable of an
			// earlier datagram as ECONNREFUSED here: Classify makes it
			// connect_refused.
			return nil, probe.Classify(err, ctx.Err()), fmt.Errorf("read answer: %w", err)
		}
		if n < headerSize || binary.BigEndian.Uint16(buf) != id {
			continue
		}
		res.AddPhase(probe.PhaseRoundTrip, time.Since(t1))
		if n > p.udpBuf {
			return nil, probe.ReasonDNSProtocol, fmt.Errorf("answer larger than the %d-byte UDP buffer", p.udpBuf)
		}
		return unpack(buf[:n])
	}
}

// exchangeStream runs the query over TCP or DoT: connect, TLS handshake for
// DoT, then the length-prefixed exchange of RFC 1035 section 4.2.2.
func (p *Prober) exchangeStream(ctx context.Context, remote string, res *probe.Result) (*dns.Msg, probe.Reason, error) {
	t0 := time.Now()
	raw, err := p.tcpDial.DialContext(ctx, p.net.Network("tcp"), remote)
	res.AddPhase(probe.PhaseConnect, time.Since(t0))
	if err != nil {
		return nil, probe.Classify(err, ctx.Err()), err
	}
	var conn net.Conn = raw
	defer func() { _ = conn.Close() }()
	stop := watch(ctx, raw)
	defer stop()

	if p.transport == TransportTLS {
		tc := tls.Client(raw, p.tlsConf)
		conn = tc
		t1 := time.Now()
		err := tc.HandshakeContext(ctx)
		res.AddPhase(probe.PhaseTLS, time.Since(t1))
		if err != nil {
			return nil, tlsReason(err, ctx), fmt.Errorf("tls handshake: %w", err)
		}
		cs := tc.ConnectionState()
		if reason, err := p.verifyTLS(&cs, res); err != nil {
			return nil, reason, err
		}
	}

	// Length prefix and query go out in one write: one segment, one syscall.
	buf := make([]byte, max(2+len(p.query), 512))
	binary.BigEndian.PutUint16(buf, uint16(len(p.query)))
	n := 2 + copy(buf[2:], p.query)
	id := newID()
	binary.BigEndian.PutUint16(buf[2:], id)

	t2 := time.Now()
	msg, err := func() ([]byte, error) {
		if _, err := conn.Write(buf[:n]); err != nil {
			return nil, fmt.Errorf("send query: %w", err)
		}
		if _, err := io.ReadFull(conn, buf[:2]); err != nil {
			return nil, fmt.Errorf("read answer length: %w", err)
		}
		l := int(binary.BigEndian.Uint16(buf))
		if l > len(buf) {
			buf = make([]byte, l)
		}
		if _, err := io.ReadFull(conn, buf[:l]); err != nil {
			return nil, fmt.Errorf("read answer: %w", err)
		}
		return buf[:l], nil
	}()
	res.AddPhase(probe.PhaseRoundTrip, time.Since(t2))
	if err != nil {
		reason := probe.Classify(err, ctx.Err())
		if ctx.Err() == nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
			// The server closed the connection instead of answering.
			reason = probe.ReasonDNSProtocol
		}
		return nil, reason, err
	}
	if len(msg) < headerSize {
		return nil, probe.ReasonDNSProtocol, fmt.Errorf("answer of %d bytes is shorter than a DNS header", len(msg))
	}
	if got := binary.BigEndian.Uint16(msg); got != id {
		return nil, probe.ReasonDNSProtocol, fmt.Errorf("answer ID %d does not match query ID %d", got, id)
	}
	return unpack(msg)
}

// unpack parses an answer; a malformed one is a protocol failure.
func unpack(b []byte) (*dns.Msg, probe.Reason, error) {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return nil, probe.ReasonDNSProtocol, fmt.Errorf("malformed answer: %w", err)
	}
	if !m.Response {
		return nil, probe.ReasonDNSProtocol, errors.New("answer does not have the QR (response) bit set")
	}
	return m, probe.ReasonNone, nil
}
