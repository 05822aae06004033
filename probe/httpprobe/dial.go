package httpprobe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/vantage-probe/vantage/probe"
)

// errNoRun is what the shared transport's dial functions return for a
// context without a probe's run: a request that did not come from Probe.
var errNoRun = errors.New("no probe run in the dial's context: the shared transport dials only for Probe")

// runOf returns the probe's run that Probe put in ctx for the transport's
// dial functions, which one transport shares between every prober.
func runOf(ctx context.Context) (*run, error) {
	r, ok := ctx.Value(runKey{}).(*run)
	if !ok || r == nil {
		return nil, &reasonError{probe.ReasonConfig, errNoRun}
	}
	return r, nil
}

// dialPlain is the transport's DialContext: resolve (timed, honouring
// ip_protocol), then connect (timed, from source_ip). It runs on the
// probe's goroutine, inside Transport.NewClientConn. The prober comes from
// the run in ctx, not from a receiver, so that one transport serves every
// prober (see transportFor).
func dialPlain(ctx context.Context, _, addr string) (net.Conn, error) {
	r, err := runOf(ctx)
	if err != nil {
		return nil, err
	}
	p := r.p
	ipport, err := p.resolve(ctx, r, addr)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	c, err := p.dialer.DialContext(ctx, p.net.Network("tcp"), ipport)
	r.add(iConnect, time.Since(start))
	if err != nil {
		return nil, err
	}
	r.res.RemoteAddr = ipport
	return c, nil
}

func (p *Prober) resolve(ctx context.Context, r *run, addr string) (string, error) {
	ipport, d, err := p.net.Resolve(ctx, addr)
	r.add(iResolve, d)
	if err != nil {
		return "", &reasonError{probe.ReasonDNSError, fmt.Errorf("resolving %q: %w", addr, err)}
	}
	return ipport, nil
}

// dialTLS is the transport's DialTLSContext. The handshake never verifies
// (InsecureSkipVerify); verifyTLS does, afterwards, so that a certificate
// that fails verification still reports its chain and expiry. The time of
// that verification counts in the tls phase, as it would inside crypto/tls.
func dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	r, err := runOf(ctx)
	if err != nil {
		return nil, err
	}
	p := r.p
	raw, err := dialPlain(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	tc := tls.Client(raw, p.tlsConfFor(r.serverName))
	if err := tc.HandshakeContext(ctx); err != nil {
		r.add(iTLS, time.Since(start))
		_ = raw.Close()
		return nil, &reasonError{probe.ReasonTLSHandshake, fmt.Errorf("tls handshake with %s: %w", addr, err)}
	}
	cs := tc.ConnectionState()
	err = r.verifyTLS(&cs)
	r.add(iTLS, time.Since(start))
	if err != nil {
		_ = raw.Close()
		return nil, err
	}
	if p.version == Version2 && cs.NegotiatedProtocol != "h2" {
		_ = raw.Close()
		got := cs.NegotiatedProtocol
		if got == "" {
			got = "http/1.1"
		}
		return nil, &reasonError{probe.ReasonHTTPError, fmt.Errorf("http_version 2: %s negotiated %q, not h2", addr, got)}
	}
	return tc, nil
}

// tlsConfFor returns the shared config when the hop's server name is the
// one it was built for (always, unless a redirect changed host), else a
// clone with the new name.
func (p *Prober) tlsConfFor(serverName string) *tls.Config {
	if serverName == p.tlsConf.ServerName {
		return p.tlsConf
	}
	c := p.tlsConf.Clone()
	c.ServerName = serverName
	return c
}

// verifyTLS verifies the presented chain (unless insecure_skip_verify),
// records the hop's TLS facts either way, and returns a cert_expired or
// cert_invalid error when verification failed.
func (r *run) verifyTLS(cs *tls.ConnectionState) error {
	var err error
	if !r.p.skipVerify {
		chains, reason, verr := probe.VerifyChain(cs, r.p.roots, r.serverName, time.Now())
		cs.VerifiedChains = chains
		if verr != nil {
			err = &reasonError{reason, fmt.Errorf("certificate for %q: %w", r.serverName, verr)}
		}
	}
	// crypto/tls sends no SNI for an IP literal: the facts then name the
	// host verified against.
	r.tls = probe.TLSFactsShared(r.p.shared, cs, r.serverName)
	return err
}

// h3Conn is one HTTP/3 connection with the UDP socket and QUIC transport
// dialled for it alone; Close releases all three.
type h3Conn struct {
	cc *http3.ClientConn
	qc *quic.Conn
	tr *quic.Transport
	pc net.PacketConn
}

func (c *h3Conn) RoundTrip(req *http.Request) (*http.Response, error) { return c.cc.RoundTrip(req) }

func (c *h3Conn) Close() error {
	_ = c.qc.CloseWithError(0, "")
	_ = c.tr.Close()
	return c.pc.Close()
}

// dialH3 dials a fresh QUIC connection. What it measures, as best quic-go
// allows: resolve as for TCP; connect is opening the UDP socket (QUIC has
// no separate connect step); tls is the whole QUIC handshake, which carries
// the TLS 1.3 handshake (one round trip plus certificate verification);
// processing runs from the handshake to the decoded response headers and
// transfer to the end of the body.
func (p *Prober) dialH3(ctx context.Context, r *run, hostport string) (*h3Conn, error) {
	ipport, err := p.resolve(ctx, r, hostport)
	if err != nil {
		return nil, err
	}
	ap, err := netip.ParseAddrPort(ipport)
	if err != nil {
		return nil, &reasonError{probe.ReasonConnectError, fmt.Errorf("address %q: %w", ipport, err)}
	}
	start := time.Now()
	network := "udp4"
	if ap.Addr().Unmap().Is6() {
		network = "udp6"
	}
	laddr := &net.UDPAddr{}
	if p.net.SourceIP.IsValid() {
		laddr.IP = p.net.SourceIP.AsSlice()
	}
	pc, err := net.ListenUDP(network, laddr)
	r.add(iConnect, time.Since(start))
	if err != nil {
		return nil, &reasonError{probe.ReasonConnectError, fmt.Errorf("udp socket for %s: %w", ipport, err)}
	}
	r.res.RemoteAddr = ipport
	tr := &quic.Transport{Conn: pc}

	start = time.Now()
	qc, err := tr.Dial(ctx, net.UDPAddrFromAddrPort(ap), p.tlsConfFor(r.serverName), p.quicConf)
	if err != nil {
		r.add(iTLS, time.Since(start))
		_ = tr.Close()
		_ = pc.Close()
		return nil, &reasonError{probe.ReasonTLSHandshake, fmt.Errorf("quic handshake with %s: %w", ipport, err)}
	}
	cs := qc.ConnectionState().TLS
	err = r.verifyTLS(&cs)
	r.add(iTLS, time.Since(start))
	if err != nil {
		_ = qc.CloseWithError(0, "")
		_ = tr.Close()
		_ = pc.Close()
		return nil, err
	}
	return &h3Conn{cc: p.h3.NewClientConn(qc), qc: qc, tr: tr, pc: pc}, nil
}
