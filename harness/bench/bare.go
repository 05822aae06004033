package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/vantage-probe/vantage/internal/grpcwire"
	"github.com/vantage-probe/vantage/internal/mono"
	"github.com/vantage-probe/vantage/probe/icmpprobe"
)

// bareClient is the floor: the cheapest fresh-connection probe a Go program
// can make with the standard library. HTTP(S) through one shared
// http.Transport with keep-alives off (a new TCP connection, and a full TLS
// handshake with chain verification, per request; HTTP/2 when the server
// offers it, as the agent's "auto"); TCP as Dial then Close; ICMP as an
// ICMP socket (of the kind the agent would use) opened, one echo request
// of the agent's payload size sent, its reply read, the socket closed;
// gRPC as one health Check POSTed over HTTP/2 by a transport made for it
// (see grpcCheck). It times no phase, keeps no result and exports
// nothing.
type bareClient struct {
	tr       *http.Transport
	dialer   net.Dialer
	timeout  time.Duration
	grpcTLS  *tls.Config // cloned per check: a transport writes its ALPN list into it
	icmpNet  string      // "udp4" (datagram ICMP) or "ip4:icmp" (raw)
	icmpID   atomic.Uint32
	icmpData []byte
}

func newBareClient(caFile string, timeout time.Duration) (*bareClient, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file %q: no PEM certificate", caFile)
	}
	c := &bareClient{
		tr: &http.Transport{
			DisableKeepAlives: true,
			ForceAttemptHTTP2: true,
			TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		},
		timeout:  timeout,
		grpcTLS:  &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		icmpNet:  "ip4:icmp",
		icmpData: make([]byte, icmpprobe.DefaultPayloadSize),
	}
	if kind, err := icmpprobe.Detect(nil, false); err == nil && kind == icmpprobe.SocketDatagram {
		c.icmpNet = "udp4"
	}
	return c, nil
}

// The empty HealthCheckRequest (the server as a whole), length-prefixed,
// and the SERVING answer the farm's health server sends.
var (
	healthCheckRequest = grpcwire.Request("")
	servingAnswer      = grpcwire.Response(grpcwire.Serving)
)

// grpcCheck is one health Check: the request POSTed through an HTTP/2
// transport made for it (h2c with prior knowledge, or h2 over TLS), the
// answer checked to be SERVING with grpc-status 0, the transport closed.
// The floor for gRPC used to be grpc-go's client; the binary no longer
// links grpc-go (the agent's prober speaks the wire protocol itself), so
// the floor is now the least a Go health check over HTTP/2 costs.
func (c *bareClient) grpcCheck(ctx context.Context, addr string, secure bool) error {
	var protos http.Protocols
	tr := &http.Transport{Protocols: &protos}
	scheme := "http"
	if secure {
		scheme = "https"
		protos.SetHTTP2(true)
		tr.TLSClientConfig = c.grpcTLS.Clone()
	} else {
		protos.SetUnencryptedHTTP2(true)
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, scheme+"://"+addr+grpcwire.CheckPath, bytes.NewReader(healthCheckRequest))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64))
	if err != nil {
		return err
	}
	if st := resp.Trailer.Get("Grpc-Status"); resp.StatusCode != http.StatusOK || st != "0" || !bytes.Equal(body, servingAnswer) {
		return fmt.Errorf("%s: HTTP %d, grpc-status %q, answer % x: not SERVING", addr, resp.StatusCode, st, body)
	}
	return nil
}

// echo sends one echo request to addr and waits for its reply.
func (c *bareClient) echo(ctx context.Context, addr string) error {
	pc, err := icmp.ListenPacket(c.icmpNet, "0.0.0.0")
	if err != nil {
		return err
	}
	defer pc.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = pc.SetDeadline(dl)
	}
	// A raw socket's identifier is ours; a datagram socket's, the kernel's.
	id := int(c.icmpID.Add(1) & 0xffff)
	m := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: 1, Data: c.icmpData}}
	wb, err := m.Marshal(nil)
	if err != nil {
		return err
	}
	var dst net.Addr = &net.IPAddr{IP: net.ParseIP(addr)}
	if c.icmpNet == "udp4" {
		dst = &net.UDPAddr{IP: net.ParseIP(addr)}
	}
	if _, err := pc.WriteTo(wb, dst); err != nil {
		return err
	}
	buf := make([]byte, 1500)
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			return err
		}
		r, err := icmp.ParseMessage(1, buf[:n])
		if err != nil || r.Type != ipv4.ICMPTypeEchoReply {
			continue
		}
		if e, ok := r.Body.(*icmp.Echo); ok && e.Seq == 1 && (c.icmpNet == "udp4" || e.ID == id) {
			return nil
		}
	}
}

// probe probes t once and returns the HTTP version used ("" for tcp).
func (c *bareClient) probe(ctx context.Context, t target) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	switch t.kind {
	case KindTCP:
		conn, err := c.dialer.DialContext(ctx, "tcp", t.addr)
		if err != nil {
			return "", err
		}
		return "", conn.Close()
	case KindICMP:
		return "", c.echo(ctx, t.addr)
	case KindGRPC, KindGRPCS:
		return "", c.grpcCheck(ctx, t.addr, t.kind == KindGRPCS)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.tr.RoundTrip(req)
	if err != nil {
		return "", err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: status %d", t.url, resp.StatusCode)
	}
	return strings.TrimPrefix(resp.Proto, "HTTP/"), nil
}

// runBare measures the bare client at the scenario's rate.
func (h *harness) runBare(ctx context.Context, s Scenario, ts []target, r *Result) error {
	c, err := newBareClient(h.farm.info.CAFile, timeout(s.Interval()))
	if err != nil {
		return err
	}
	defer c.tr.CloseIdleConnections()
	var p pacer
	pctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.run(pctx, s.Rate, len(ts), h.o.MaxInFlight, func(ctx context.Context, i int) (string, error) {
			return c.probe(ctx, ts[i])
		})
	}()
	err = mono.Sleep(ctx, s.warmup())
	if err == nil {
		err = h.window(ctx, s, selfCPU, r, p.windowHooks(r))
	}
	stop()
	<-done
	r.Proto = p.protocol()
	if err == nil && r.Failures > 0 {
		err = fmt.Errorf("%d probes failed, first: %w", r.Failures, p.err())
	}
	return err
}
