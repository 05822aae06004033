package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// StreamDialer returns the dialer stream probers (TCP, TLS) use: n's source
// address, and no TCP keep-alive, whose socket options would cost four
// system calls per probe for connections that live less than a timeout.
func (n Net) StreamDialer() *net.Dialer {
	d := n.Dialer("tcp")
	d.KeepAlive = -1
	return d
}

// Connect resolves address (phase resolve) and dials it with d (phase
// connect), both bounded by ctx, and sets r.RemoteAddr. On failure it fills
// r's reason and returns nil. The conn itself does not watch ctx.
func (n Net) Connect(ctx context.Context, d *net.Dialer, network, address string, r *Result) net.Conn {
	addr, took, err := n.Resolve(ctx, address)
	r.AddPhase(PhaseResolve, took)
	if err != nil {
		reason := ReasonDNSError
		if Classify(err, ctx.Err()) == ReasonTimeout {
			reason = ReasonTimeout
		}
		*r = r.Fail(reason, "resolve: "+err.Error())
		return nil
	}
	r.RemoteAddr = addr
	start := time.Now()
	conn, err := d.DialContext(ctx, network, addr)
	r.AddPhase(PhaseConnect, time.Since(start))
	if err != nil {
		*r = r.Fail(Classify(err, ctx.Err()), err.Error())
		return nil
	}
	return conn
}

// Address validation errors, for errors.Is.
var (
	ErrNoHost   = errors.New("missing host")
	ErrPort     = errors.New("want a port number from 1 to 65535")
	ErrFamily   = errors.New("IP literal of the wrong family for ip_protocol")
	ErrNegative = errors.New("must not be negative")
)

// SplitAddress checks that address is host:port with a numeric port, and an
// IP literal host of the family n allows, and returns the host. Errors name
// the `address` key and quote the value.
func (n Net) SplitAddress(address string) (string, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return "", fmt.Errorf("address %q: want host:port: %w", address, err)
	}
	if host == "" {
		return "", fmt.Errorf("address %q: %w", address, ErrNoHost)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return "", fmt.Errorf("address %q: port %q: %w", address, port, ErrPort)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		is4 := ip.Unmap().Is4()
		if (n.IPProtocol == IPv4 && !is4) || (n.IPProtocol == IPv6 && is4) {
			return "", fmt.Errorf("address %q: %w %q", address, ErrFamily, n.IPProtocol)
		}
	}
	return host, nil
}

// Finish stamps r's total duration from r.At and returns it.
func Finish(r Result) Result {
	r.Duration = time.Since(r.At)
	return r
}
