//go:build !linux

package icmpprobe

import (
	"fmt"
	"net/netip"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// dontFragmentSupported: DontFragment sets IP_MTU_DISCOVER, a Linux option.
const dontFragmentSupported = false

// openSocket opens one probe's socket through x/net (darwin has datagram
// ICMP sockets too). ICMP errors reach raw sockets only here.
func openSocket(kind Socket, v6 bool, src netip.Addr, _ bool) (*conn, error) {
	network, laddr := "udp4", "0.0.0.0"
	switch {
	case kind == SocketDatagram && v6:
		network, laddr = "udp6", "::"
	case kind == SocketRaw && v6:
		network, laddr = "ip6:ipv6-icmp", "::"
	case kind == SocketRaw:
		network = "ip4:icmp"
	}
	if src.IsValid() {
		laddr = src.String()
	}
	pc, err := icmp.ListenPacket(network, laddr)
	if err != nil {
		return nil, err
	}
	c := &conn{kind: kind, v6: v6, pc: pc, p4: pc.IPv4PacketConn(), p6: pc.IPv6PacketConn()}
	if v6 {
		_ = c.p6.SetControlMessage(ipv6.FlagHopLimit, true)
	} else {
		_ = c.p4.SetControlMessage(ipv4.FlagTTL, true)
	}
	return c, nil
}

func (c *conn) errQueue(*matcher, []byte) []event { return nil }

func noSocket(v6 bool, datagram, raw error) error {
	family := "IPv4"
	if v6 {
		family = "IPv6"
	}
	return fmt.Errorf("%w for %s: datagram: %v; raw (needs root): %v", ErrNoSocket, family, datagram, raw)
}
