package dnsprobe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"

	"github.com/vantage-probe/vantage/probe"
)

// doqNoError is RFC 9250's DOQ_NO_ERROR, sent when closing after the answer.
const doqNoError = 0x0

// exchangeQUIC runs one DoQ exchange (RFC 9250) on a fresh connection from
// a fresh UDP socket: handshake with ALPN "doq", one bidirectional stream,
// the query with ID 0 and a 2-byte length prefix, FIN, then the answer.
func (p *Prober) exchangeQUIC(ctx context.Context, remote string, res *probe.Result) (*dns.Msg, probe.Reason, error) {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return nil, probe.ReasonConfig, fmt.Errorf("server address %q: %w", remote, err)
	}
	raddr := net.UDPAddrFromAddrPort(ap)

	// "connect" for QUIC is the socket; the handshake is the "tls" phase.
	t0 := time.Now()
	pc, err := net.ListenUDP(p.net.Network("udp"), p.udpSrc)
	res.AddPhase(probe.PhaseConnect, time.Since(t0))
	if err != nil {
		return nil, probe.ReasonConnectError, fmt.Errorf("open udp socket: %w", err)
	}
	defer pc.Close()
	tr := &quic.Transport{Conn: pc}
	defer tr.Close()

	t1 := time.Now()
	conn, err := tr.Dial(ctx, raddr, p.tlsConf, p.quicConf)
	res.AddPhase(probe.PhaseTLS, time.Since(t1))
	if err != nil {
		return nil, tlsReason(err, ctx), fmt.Errorf("quic handshake: %w", err)
	}
	// Close politely first: Transport.Close would drop the connection
	// without telling the server.
	defer func() { _ = conn.CloseWithError(doqNoError, "") }()
	cs := conn.ConnectionState().TLS
	if reason, err := p.verifyTLS(&cs, res); err != nil {
		return nil, reason, err
	}

	t2 := time.Now()
	msg, err := p.doqStream(ctx, conn)
	res.AddPhase(probe.PhaseRoundTrip, time.Since(t2))
	if err != nil {
		reason := probe.Classify(err, ctx.Err())
		if ctx.Err() == nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
			reason = probe.ReasonDNSProtocol
		}
		var appErr *quic.ApplicationError
		var streamErr *quic.StreamError
		if ctx.Err() == nil && (errors.As(err, &appErr) || errors.As(err, &streamErr)) {
			// The server closed the connection or reset the stream: it
			// rejected the exchange.
			reason = probe.ReasonDNSProtocol
		}
		return nil, reason, err
	}
	if len(msg) < headerSize {
		return nil, probe.ReasonDNSProtocol, fmt.Errorf("answer of %d bytes is shorter than a DNS header", len(msg))
	}
	return unpack(msg)
}

// doqStream sends the query on a new stream and reads the answer.
func (p *Prober) doqStream(ctx context.Context, conn *quic.Conn) ([]byte, error) {
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, fmt.Errorf("open stream: %w", err)
	}
	stop := watch(ctx, str)
	defer stop()

	buf := make([]byte, max(2+len(p.query), 512))
	binary.BigEndian.PutUint16(buf, uint16(len(p.query)))
	n := 2 + copy(buf[2:], p.query) // ID stays 0 (RFC 9250 section 4.2.1)
	if _, err := str.Write(buf[:n]); err != nil {
		return nil, fmt.Errorf("send query: %w", err)
	}
	// FIN: the client sends exactly one query per stream.
	if err := str.Close(); err != nil {
		return nil, fmt.Errorf("close stream: %w", err)
	}
	if _, err := io.ReadFull(str, buf[:2]); err != nil {
		return nil, fmt.Errorf("read answer length: %w", err)
	}
	l := int(binary.BigEndian.Uint16(buf))
	if l > len(buf) {
		buf = make([]byte, l)
	}
	if _, err := io.ReadFull(str, buf[:l]); err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	return buf[:l], nil
}
