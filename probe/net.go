package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// IPProtocol chooses the address family a probe uses.
type IPProtocol string

const (
	IPAuto IPProtocol = ""    // any family, in the resolver's order (RFC 6724)
	IPv4   IPProtocol = "ip4" // only IPv4 addresses
	IPv6   IPProtocol = "ip6" // only IPv6 addresses
)

// Net holds the network settings every prober shares. The zero value dials
// from any local address over any family.
type Net struct {
	// SourceIP, when valid, is the local address probes are sent from.
	SourceIP netip.Addr
	// IPProtocol restricts the address family of the remote address.
	IPProtocol IPProtocol
	// Resolver is used for name resolution; nil means net.DefaultResolver.
	Resolver *net.Resolver
}

// Network returns the network name for proto ("tcp", "udp") restricted to
// the configured family: "tcp4", "udp6", ...
func (n Net) Network(proto string) string {
	switch n.IPProtocol {
	case IPv4:
		return proto + "4"
	case IPv6:
		return proto + "6"
	}
	return proto
}

// Dialer returns a net.Dialer bound to SourceIP (if any) for the given
// transport protocol ("tcp" or "udp").
func (n Net) Dialer(proto string) *net.Dialer {
	d := &net.Dialer{}
	if n.SourceIP.IsValid() {
		ip := n.SourceIP.AsSlice()
		if proto == "udp" {
			d.LocalAddr = &net.UDPAddr{IP: ip}
		} else {
			d.LocalAddr = &net.TCPAddr{IP: ip}
		}
	}
	return d
}

// Resolve turns hostport into ip:port, honouring IPProtocol, and returns how
// long the lookup took. An IP literal returns at once with zero duration.
func (n Net) Resolve(ctx context.Context, hostport string) (string, time.Duration, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, err
	}
	if _, err := netip.ParseAddr(host); err == nil {
		if _, _, err := n.ResolveIP(ctx, host); err != nil {
			return "", 0, err
		}
		return hostport, 0, nil
	}
	ip, d, err := n.ResolveIP(ctx, host)
	if err != nil {
		return "", d, err
	}
	return net.JoinHostPort(ip.String(), port), d, nil
}

// ResolveIP turns host, a name or an IP literal, into one address of the
// family IPProtocol allows (the resolver's first), and returns how long
// the lookup took. An IP literal returns at once with zero duration.
func (n Net) ResolveIP(ctx context.Context, host string) (netip.Addr, time.Duration, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		if (n.IPProtocol == IPv4 && !ip.Unmap().Is4()) || (n.IPProtocol == IPv6 && ip.Unmap().Is4()) {
			return netip.Addr{}, 0, fmt.Errorf("address %s is not %s", host, n.IPProtocol)
		}
		return ip, 0, nil
	}
	r := n.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	start := time.Now()
	network := "ip"
	if n.IPProtocol != IPAuto {
		network = string(n.IPProtocol)
	}
	ips, err := r.LookupNetIP(ctx, network, host)
	d := time.Since(start)
	if err != nil {
		return netip.Addr{}, d, err
	}
	if len(ips) == 0 {
		return netip.Addr{}, d, fmt.Errorf("no %s address for %s", network, host)
	}
	return ips[0].Unmap(), d, nil
}

// Classify maps a network error to a Reason. ctxErr is the probe context's
// error at the time of failure, which wins: a dial cut by the deadline is a
// timeout, whatever the error chain says.
func Classify(err error, ctxErr error) Reason {
	if err == nil {
		return ReasonNone
	}
	if ctxErr != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return ReasonTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ReasonTimeout
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return ReasonDNSError
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return ReasonConnectRefused
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return ReasonConnectError
	}
	return ReasonIOError
}
