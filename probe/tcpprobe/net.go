package tcpprobe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/vantage-probe/vantage/probe"
)

// The helpers below are mirrored in tlsprobe; they are small enough that
// sharing them would cost an exported API in one of the two packages.

// newDialer returns the dialer probes use: n's source address, and no TCP
// keep-alive, whose socket options would cost four system calls per probe
// for connections that live less than a timeout.
func newDialer(n probe.Net) *net.Dialer {
	d := n.Dialer("tcp")
	d.KeepAlive = -1
	return d
}

// connect resolves address (phase resolve) and dials it (phase connect),
// both bounded by ctx, and sets r.RemoteAddr. On failure it fills r's
// reason and returns nil. The conn itself does not watch ctx: see guard.
func connect(ctx context.Context, n probe.Net, d *net.Dialer, network, address string, r *probe.Result) net.Conn {
	addr, took, err := n.Resolve(ctx, address)
	r.AddPhase(probe.PhaseResolve, took)
	if err != nil {
		reason := probe.ReasonDNSError
		if probe.Classify(err, ctx.Err()) == probe.ReasonTimeout {
			reason = probe.ReasonTimeout
		}
		*r = r.Fail(reason, "resolve: "+err.Error())
		return nil
	}
	r.RemoteAddr = addr
	start := time.Now()
	conn, err := d.DialContext(ctx, network, addr)
	r.AddPhase(probe.PhaseConnect, time.Since(start))
	if err != nil {
		*r = r.Fail(probe.Classify(err, ctx.Err()), err.Error())
		return nil
	}
	return conn
}

// guard makes I/O on conn honour ctx: it gets ctx's deadline, and is cut
// (deadline moved to the past) if ctx is cancelled earlier, without a
// goroutine per probe. Call stop before closing conn.
func guard(ctx context.Context, conn net.Conn) (stop func() bool) {
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if ctx.Done() == nil {
		return noop
	}
	return context.AfterFunc(ctx, func() { _ = conn.SetDeadline(longAgo) })
}

// splitAddress checks that address is host:port with a numeric port, and an
// IP literal host of the family n allows, and returns the host.
func splitAddress(address string, n probe.Net) (string, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return "", fmt.Errorf("address %q: want host:port: %w", address, err)
	}
	if host == "" {
		return "", fmt.Errorf("address %q: %w", address, errNoHost)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return "", fmt.Errorf("address %q: port %q: %w", address, port, errPort)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		is4 := ip.Unmap().Is4()
		if (n.IPProtocol == probe.IPv4 && !is4) || (n.IPProtocol == probe.IPv6 && is4) {
			return "", fmt.Errorf("address %q: %w %q", address, errFamily, n.IPProtocol)
		}
	}
	return host, nil
}

func finish(r probe.Result) probe.Result {
	r.Duration = time.Since(r.At)
	return r
}

var (
	errNegative = errors.New("must not be negative")
	errNoHost   = errors.New("missing host")
	errPort     = errors.New("want a port number from 1 to 65535")
	errFamily   = errors.New("IP literal of the wrong family for ip_protocol")
)

// longAgo is a deadline in the past: setting it fails pending I/O at once.
var longAgo = time.Unix(1, 0)

func noop() bool { return false }
