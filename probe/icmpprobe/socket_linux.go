//go:build linux

package icmpprobe

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
)

// dontFragmentSupported: DontFragment sets IP_MTU_DISCOVER, a Linux option.
const dontFragmentSupported = true

// Origins of a sock_extended_err (linux/errqueue.h).
const (
	soEEOriginICMP  = 2
	soEEOriginICMP6 = 3
)

// openSocket opens one probe's socket of the given kind, bound to src when
// valid. Datagram sockets get IP_RECVERR: without it Linux drops the ICMP
// errors about an unconnected socket's requests, and the probe of an
// unreachable host would wait for its deadline.
func openSocket(kind Socket, v6 bool, src netip.Addr, df bool) (*conn, error) {
	var pc net.PacketConn
	var err error
	if kind == SocketDatagram {
		pc, err = openDatagram(v6, src)
	} else {
		pc, err = openRaw(v6, src)
	}
	if err != nil {
		return nil, err
	}
	if err := setOptions(pc, kind, v6, df); err != nil {
		_ = pc.Close()
		return nil, err
	}
	return newConn(kind, v6, pc), nil
}

// openDatagram opens an unprivileged ICMP socket, as x/net's
// icmp.ListenPacket("udp4") does, but keeps the descriptor reachable for
// the options and the error queue.
func openDatagram(v6 bool, src netip.Addr) (net.PacketConn, error) {
	family, proto := syscall.AF_INET, syscall.IPPROTO_ICMP
	if v6 {
		family, proto = syscall.AF_INET6, syscall.IPPROTO_ICMPV6
	}
	fd, err := syscall.Socket(family, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	f := os.NewFile(uintptr(fd), "icmp")
	defer f.Close() // FilePacketConn works on a duplicate
	if src.IsValid() {
		if err := syscall.Bind(fd, sockaddr(src)); err != nil {
			return nil, os.NewSyscallError("bind", err)
		}
	}
	return net.FilePacketConn(f)
}

func openRaw(v6 bool, src netip.Addr) (net.PacketConn, error) {
	network := "ip4:icmp"
	if v6 {
		network = "ip6:ipv6-icmp"
	}
	laddr := ""
	if src.IsValid() {
		laddr = src.String()
	}
	return net.ListenPacket(network, laddr)
}

func sockaddr(a netip.Addr) syscall.Sockaddr {
	if a.Is4() {
		return &syscall.SockaddrInet4{Addr: a.As4()}
	}
	sa := &syscall.SockaddrInet6{Addr: a.As16()}
	if z := a.Zone(); z != "" {
		if ifi, err := net.InterfaceByName(z); err == nil {
			sa.ZoneId = uint32(ifi.Index)
		}
	}
	return sa
}

func setOptions(pc net.PacketConn, kind Socket, v6, df bool) error {
	if kind != SocketDatagram && !df {
		return nil
	}
	sc, ok := pc.(syscall.Conn)
	if !ok {
		return fmt.Errorf("socket options: %T has no descriptor", pc)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	set := func(fd uintptr, level, opt, v int) {
		if serr == nil {
			serr = os.NewSyscallError("setsockopt", syscall.SetsockoptInt(int(fd), level, opt, v))
		}
	}
	err = rc.Control(func(fd uintptr) {
		switch {
		case v6:
			if kind == SocketDatagram {
				set(fd, syscall.SOL_IPV6, syscall.IPV6_RECVERR, 1)
			}
			if df {
				set(fd, syscall.SOL_IPV6, syscall.IPV6_MTU_DISCOVER, syscall.IPV6_PMTUDISC_DO)
			}
		default:
			if kind == SocketDatagram {
				set(fd, syscall.SOL_IP, syscall.IP_RECVERR, 1)
			}
			if df {
				set(fd, syscall.SOL_IP, syscall.IP_MTU_DISCOVER, syscall.IP_PMTUDISC_DO)
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// errQueue drains a datagram socket's error queue (IP_RECVERR): the ICMP
// errors the kernel matched to this socket's requests. A read that failed
// with the error's errno comes first; the queue says which request, which
// error and from whom. b is scratch space for the quoted request.
func (c *conn) errQueue(m *matcher, b []byte) []event {
	if c.kind != SocketDatagram {
		return nil
	}
	sc, ok := c.pc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	var evs []event
	// The error, its sender's address, and the TTL asked for on every
	// message.
	oob := make([]byte, 256)
	// Control, not Read: the queue is read without waiting, whatever the
	// read deadline (already past when a send found the error).
	_ = rc.Control(func(fd uintptr) {
		for range 64 { // the receive buffer bounds the queue anyway
			n, oobn, _, _, err := syscall.Recvmsg(int(fd), b, oob, syscall.MSG_ERRQUEUE|syscall.MSG_DONTWAIT)
			if err != nil {
				break
			}
			if ev, ok := m.parseErrQueue(b[:n], oob[:oobn]); ok {
				evs = append(evs, ev)
			}
		}
	})
	return evs
}

// parseErrQueue reads one error-queue message: the request the ICMP error
// quotes (its ICMP header and data, as the kernel rewrote its identifier)
// and the control message describing the error, a struct
// sock_extended_err followed by the sender's address (SO_EE_OFFENDER).
func (m *matcher) parseErrQueue(payload, oob []byte) (event, bool) {
	cmsgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return event{}, false
	}
	for _, cm := range cmsgs {
		ip4 := cm.Header.Level == syscall.SOL_IP && cm.Header.Type == syscall.IP_RECVERR
		ip6 := cm.Header.Level == syscall.SOL_IPV6 && cm.Header.Type == syscall.IPV6_RECVERR
		d := cm.Data
		if !(ip4 || ip6) || len(d) < 16 {
			continue
		}
		// ee_errno u32, ee_origin u8, ee_type u8, ee_code u8, ee_pad u8,
		// ee_info u32, ee_data u32.
		origin, typ, code := d[4], int(d[5]), int(d[6])
		info := binary.NativeEndian.Uint32(d[8:12])
		if origin != soEEOriginICMP && origin != soEEOriginICMP6 {
			continue // a local error: the failed send said it already
		}
		seq, ok := m.ours(payload)
		if !ok {
			return event{}, false
		}
		ev := event{kind: evError, seq: seq, typ: typ, code: code, from: offender(d[16:]), v6: m.v6}
		if (!m.v6 && typ == 3 && code == 4) || (m.v6 && typ == 2) {
			ev.mtu = int(info)
			if !m.v6 {
				ev.mtu &= 0xffff // the 16-bit next-hop MTU (RFC 1191)
			}
		}
		return ev, true
	}
	return event{}, false
}

// offender reads the sockaddr after a sock_extended_err.
func offender(sa []byte) netip.Addr {
	if len(sa) < 2 {
		return netip.Addr{}
	}
	switch binary.NativeEndian.Uint16(sa[:2]) {
	case syscall.AF_INET:
		if len(sa) >= 8 {
			return netip.AddrFrom4([4]byte(sa[4:8]))
		}
	case syscall.AF_INET6:
		if len(sa) >= 24 {
			return netip.AddrFrom16([16]byte(sa[8:24])).Unmap()
		}
	}
	return netip.Addr{}
}

// noSocket explains that neither kind of socket may be opened, and how to
// allow one.
func noSocket(v6 bool, datagram, raw error) error {
	family := "IPv4"
	if v6 {
		family = "IPv6"
	}
	gid := os.Getegid()
	rng := "unknown"
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ping_group_range"); err == nil {
		rng = strings.Join(strings.Fields(string(b)), " ")
	}
	return fmt.Errorf("%w for %s: unprivileged datagram sockets are not allowed for group %d "+
		"(net.ipv4.ping_group_range is %q; allow it with sysctl -w net.ipv4.ping_group_range=\"%d %d\" or a range that holds it), "+
		"and raw sockets need CAP_NET_RAW (run as root, or setcap cap_net_raw+ep on the binary, "+
		"or AmbientCapabilities=CAP_NET_RAW in a systemd unit): datagram: %v; raw: %v",
		ErrNoSocket, family, gid, rng, gid, gid, datagram, raw)
}
