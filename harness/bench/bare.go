package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/vantage-probe/vantage/internal/mono"
)

// bareClient is the floor: the cheapest fresh-connection probe a Go program
// can make with the standard library. HTTP(S) through one shared
// http.Transport with keep-alives off (a new TCP connection, and a full TLS
// handshake with chain verification, per request; HTTP/2 when the server
// offers it, as the agent's "auto"); TCP as Dial then Close. It times no
// phase, keeps no result and exports nothing.
type bareClient struct {
	tr      *http.Transport
	dialer  net.Dialer
	timeout time.Duration
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
	return &bareClient{
		tr: &http.Transport{
			DisableKeepAlives: true,
			ForceAttemptHTTP2: true,
			TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		},
		timeout: timeout,
	}, nil
}

// probe probes t once and returns the HTTP version used ("" for tcp).
func (c *bareClient) probe(ctx context.Context, t target) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if t.kind == KindTCP {
		conn, err := c.dialer.DialContext(ctx, "tcp", t.addr)
		if err != nil {
			return "", err
		}
		return "", conn.Close()
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
