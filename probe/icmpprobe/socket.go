package icmpprobe

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/vantage-probe/vantage/probe"
)

// Socket is the kind of ICMP socket a probe uses.
type Socket string

const (
	// SocketDatagram is an unprivileged ICMP socket (SOCK_DGRAM,
	// IPPROTO_ICMP): Linux allows it to the groups in
	// net.ipv4.ping_group_range; the kernel picks the echo identifier and
	// hands the socket only its own replies and errors.
	SocketDatagram Socket = "datagram"
	// SocketRaw is a raw ICMP socket: it needs CAP_NET_RAW and sees every
	// ICMP message the host receives.
	SocketRaw Socket = "raw"
)

// ErrNoSocket is wrapped by the error of a probe or Detect when neither
// kind of socket may be opened; its message says how to allow one.
var ErrNoSocket = errors.New("no ICMP socket allowed")

// Detect reports which kind of socket ICMP probes of a family use (ipv6:
// ICMPv6), deciding it by opening one when no probe sharing s has yet; the
// answer is kept in s as a probe's would be (nil: decided afresh). It lets
// the agent say at start-up that ICMP targets cannot work, before their
// first probe fails. Its error wraps ErrNoSocket when neither kind is
// allowed.
func Detect(s *probe.Shared, ipv6 bool) (Socket, error) {
	c, err := detectorFor(s).open(ipv6, netip.Addr{}, false)
	if err != nil {
		return "", err
	}
	_ = c.close()
	return c.kind, nil
}

// detectorKey names the shared detector in probe.Shared.
type detectorKey struct{}

// detector remembers, per family, the kind of socket that could be opened.
// Only a success is remembered: a refusal is tried again at the next
// probe, so that fixing the sysctl or the capability needs no reload.
type detector struct {
	mu   sync.Mutex
	kind [2]Socket // IPv4, IPv6; "" until known
}

func detectorFor(s *probe.Shared) *detector {
	return s.Value(detectorKey{}, func() any { return new(detector) }).(*detector)
}

// open opens a socket of the kind known to work for the family, or finds
// that kind: datagram first (no privilege needed), raw when the kernel
// refuses it.
func (d *detector) open(v6 bool, src netip.Addr, df bool) (*conn, error) {
	i := 0
	if v6 {
		i = 1
	}
	d.mu.Lock()
	kind := d.kind[i]
	d.mu.Unlock()
	if kind != "" {
		return openSocket(kind, v6, src, df)
	}
	c, derr := openSocket(SocketDatagram, v6, src, df)
	if derr != nil {
		if !denied(derr) {
			return nil, derr
		}
		var rerr error
		if c, rerr = openSocket(SocketRaw, v6, src, df); rerr != nil {
			if !denied(rerr) {
				return nil, rerr
			}
			return nil, noSocket(v6, derr, rerr)
		}
	}
	d.mu.Lock()
	d.kind[i] = c.kind
	d.mu.Unlock()
	return c, nil
}

// denied reports whether a socket could not be opened for want of a
// permission or of kernel support, rather than, say, a bad source address.
func denied(err error) bool {
	return errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) ||
		errors.Is(err, syscall.EPROTONOSUPPORT) || errors.Is(err, syscall.ESOCKTNOSUPPORT)
}

// conn is one probe's socket, with its IP-level view for control messages
// (the reply's TTL or hop limit).
type conn struct {
	kind Socket
	v6   bool
	pc   net.PacketConn
	p4   *ipv4.PacketConn // IPv4 only
	p6   *ipv6.PacketConn // IPv6 only
}

// newConn wraps pc and asks for the reply's TTL or hop limit; a kernel that
// will not give it costs only that fact (ReplyHopLimit -1). Raw sockets
// get a kernel filter that passes only echo replies and errors: they
// would otherwise wake the probe for every ICMP message the host receives,
// its own echo requests on loopback included.
func newConn(kind Socket, v6 bool, pc net.PacketConn) *conn {
	c := &conn{kind: kind, v6: v6, pc: pc}
	if v6 {
		c.p6 = ipv6.NewPacketConn(pc)
		_ = c.p6.SetControlMessage(ipv6.FlagHopLimit, true)
		if kind == SocketRaw {
			var f ipv6.ICMPFilter
			f.SetAll(true)
			for _, t := range []ipv6.ICMPType{ipv6.ICMPTypeEchoReply, ipv6.ICMPTypeDestinationUnreachable,
				ipv6.ICMPTypePacketTooBig, ipv6.ICMPTypeTimeExceeded, ipv6.ICMPTypeParameterProblem} {
				f.Accept(t)
			}
			_ = c.p6.SetICMPFilter(&f)
		}
		return c
	}
	c.p4 = ipv4.NewPacketConn(pc)
	_ = c.p4.SetControlMessage(ipv4.FlagTTL, true)
	if kind == SocketRaw {
		var f ipv4.ICMPFilter
		f.SetAll(true)
		for _, t := range []ipv4.ICMPType{ipv4.ICMPTypeEchoReply, ipv4.ICMPTypeDestinationUnreachable,
			ipv4.ICMPTypeTimeExceeded, ipv4.ICMPTypeParameterProblem} {
			f.Accept(t)
		}
		_ = c.p4.SetICMPFilter(&f)
	}
	return c
}

// to is the socket address of dst for WriteTo.
func (c *conn) to(dst netip.Addr) net.Addr {
	if c.kind == SocketDatagram {
		return &net.UDPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	}
	return &net.IPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
}

// read reads one ICMP message (without IP header) into b, with the TTL or
// hop limit it arrived with (-1 when unknown) and its sender.
func (c *conn) read(b []byte) (n, hop int, from netip.Addr, err error) {
	var src net.Addr
	hop = -1
	if c.v6 {
		var cm *ipv6.ControlMessage
		n, cm, src, err = c.p6.ReadFrom(b)
		if cm != nil {
			hop = cm.HopLimit
		}
	} else {
		var cm *ipv4.ControlMessage
		n, cm, src, err = c.p4.ReadFrom(b)
		if cm != nil {
			hop = cm.TTL
		}
	}
	switch a := src.(type) {
	case *net.UDPAddr:
		from, _ = netip.AddrFromSlice(a.IP)
	case *net.IPAddr:
		from, _ = netip.AddrFromSlice(a.IP)
	}
	return n, hop, from.Unmap(), err
}

func (c *conn) close() error { return c.pc.Close() }
