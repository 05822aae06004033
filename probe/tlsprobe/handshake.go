package tlsprobe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/vantage-probe/vantage/probe"
)

// Handshaker runs client TLS handshakes that report what the server
// presented even when its chain does not verify: it handshakes with
// verification off, then verifies the chain itself with probe.VerifyChain.
// Build it once per target (it reads ca_file and the client key pair then);
// it is immutable and safe for concurrent use. tcpprobe shares it.
type Handshaker struct {
	// config is shared by every handshake and never mutated after
	// NewHandshaker: crypto/tls allows concurrent use of a Config.
	config     *tls.Config
	roots      *x509.CertPool // nil: the system roots
	verifyName string
	verify     bool
	shared     *probe.Shared // certificate chains' descriptions (nil: not shared)
}

// NewHandshaker prepares handshakes to host (the target's host, a name or
// an IP literal). SNI is o.ServerName or host, except that an IP literal is
// never sent as SNI; the chain is verified against the same name (or IP).
// Errors name the TOML key at fault, value quoted.
func NewHandshaker(o probe.TLSOptions, host string) (*Handshaker, error) {
	return NewHandshakerShared(o, host, nil)
}

// NewHandshakerShared is NewHandshaker with the CA bundle and client key
// pair shared through s (nil: nothing shared), offering nextProtos over
// ALPN (gRPC needs h2).
func NewHandshakerShared(o probe.TLSOptions, host string, s *probe.Shared, nextProtos ...string) (*Handshaker, error) {
	if o.CAFile != "" {
		// TLSOptions.Config reads the file too; opening it here first gives
		// a "not found" or "permission denied" that quotes the path.
		f, err := os.Open(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file %q: %w", o.CAFile, err)
		}
		_ = f.Close()
	}
	sni := host
	if _, err := netip.ParseAddr(host); err == nil {
		sni = ""
	}
	cfg, err := o.ConfigShared(s, sni, nextProtos...)
	if err != nil {
		return nil, err
	}
	h := &Handshaker{
		config:     cfg,
		roots:      cfg.RootCAs,
		verifyName: cfg.ServerName,
		verify:     !cfg.InsecureSkipVerify,
		shared:     s,
	}
	if h.verifyName == "" {
		h.verifyName = host
	}
	// Verification happens in Handshake, after the facts are collected.
	cfg.InsecureSkipVerify = true //nolint:gosec // verified by probe.VerifyChain
	return h, nil
}

// Handshake runs the TLS handshake over conn, bounded by ctx (conn gets
// ctx's deadline), and adds the tls phase to r. Once the handshake
// completes it always fills r.TLS, verified or not. It returns the TLS
// connection (nil when the handshake failed) and, on failure, the reason
// and a message: timeout or tls_handshake when the handshake failed,
// cert_expired or cert_invalid when the chain did not verify (the
// connection is then still returned). conn stays the caller's to close in
// every case; closing it rather than the tls.Conn skips close_notify, whose
// write tls.Conn.Close would give a fresh 5 s deadline.
func (h *Handshaker) Handshake(ctx context.Context, conn net.Conn, r *probe.Result) (*tls.Conn, probe.Reason, string) {
	start := time.Now()
	if dl, ok := ctx.Deadline(); ok {
		// The poller enforces a deadline without waiting for the context's
		// timer to fire; HandshakeContext covers early cancellation.
		_ = conn.SetDeadline(dl)
	}
	tc := tls.Client(conn, h.config)
	err := tc.HandshakeContext(ctx)
	r.AddPhase(probe.PhaseTLS, time.Since(start))
	if err != nil {
		if probe.Classify(err, ctx.Err()) == probe.ReasonTimeout {
			return nil, probe.ReasonTimeout, "tls handshake: " + err.Error()
		}
		return nil, probe.ReasonTLSHandshake, "tls handshake: " + err.Error()
	}
	cs := tc.ConnectionState()
	var reason probe.Reason
	var msg string
	if h.verify {
		chains, why, err := probe.VerifyChain(&cs, h.roots, h.verifyName, time.Now())
		if err != nil {
			reason, msg = why, err.Error()
		}
		cs.VerifiedChains = chains
	}
	r.TLS = probe.TLSFactsShared(h.shared, &cs, "")
	return tc, reason, msg
}
