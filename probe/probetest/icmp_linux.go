//go:build linux

package probetest

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// ICMPMode is how an ICMPResponder answers each echo request. The mode is
// read per request, so SetMode takes effect at once.
type ICMPMode int32

const (
	// ICMPEcho answers with an echo reply: the healthy mode.
	ICMPEcho ICMPMode = iota
	// ICMPSilent never answers: a host that is down or filtered.
	ICMPSilent
	// ICMPUnreachable answers with destination unreachable (IPv4: host
	// unreachable; IPv6: address unreachable), quoting the request, from
	// ICMPErrorSource4 (IPv4) or ::1: a router that gave up.
	ICMPUnreachable
	// ICMPTimeExceeded answers with time exceeded in transit: a loop.
	ICMPTimeExceeded
	// ICMPTooBig answers with fragmentation needed (IPv4) or packet too
	// big (IPv6), with an MTU of ICMPTooBigMTU.
	ICMPTooBig
	// ICMPDuplicate answers each request with two identical echo replies.
	ICMPDuplicate
	// ICMPNoise sends, before the echo reply, replies a prober must not
	// count: one with another sequence number, one with other data, one
	// with another identifier, one from another address (IPv4).
	ICMPNoise
	// ICMPEveryOther answers the 1st, 3rd, 5th... request it sees and
	// ignores the others: packet loss.
	ICMPEveryOther
)

// Addresses and values the responder's errors carry.
const (
	ICMPErrorSource4 = "127.0.0.2"
	ICMPTooBigMTU    = 1280
)

// ICMPResponder answers ICMP echo requests sent to loopback addresses in
// place of the kernel, as its mode says, over IPv4 and IPv6. It runs only
// inside InNetNS, where it turns the kernel's own echo replies off
// (net.ipv4.icmp_echo_ignore_all and its IPv6 twin) and opens raw sockets.
type ICMPResponder struct {
	mode     atomic.Int32
	requests atomic.Int64

	v4, v6 *icmp.PacketConn
	errV4  *icmp.PacketConn // bound to ICMPErrorSource4, the "router"
	wg     sync.WaitGroup
}

// StartICMPResponder starts a responder for the test and closes it at
// cleanup.
func StartICMPResponder(t testing.TB, mode ICMPMode) *ICMPResponder {
	t.Helper()
	Sysctl(t, "net.ipv4.icmp_echo_ignore_all", "1")
	Sysctl(t, "net.ipv6.icmp.echo_ignore_all", "1")
	s := &ICMPResponder{}
	s.mode.Store(int32(mode))
	var err error
	if s.v4, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0"); err != nil {
		t.Fatalf("icmp responder: %v", err)
	}
	if s.errV4, err = icmp.ListenPacket("ip4:icmp", ICMPErrorSource4); err != nil {
		t.Fatalf("icmp responder: %v", err)
	}
	if s.v6, err = icmp.ListenPacket("ip6:ipv6-icmp", "::"); err != nil {
		t.Fatalf("icmp responder: %v", err)
	}
	// The address each request was sent to, to quote it in errors.
	if err := s.v4.IPv4PacketConn().SetControlMessage(ipv4.FlagDst, true); err != nil {
		t.Fatalf("icmp responder: %v", err)
	}
	if err := s.v6.IPv6PacketConn().SetControlMessage(ipv6.FlagDst, true); err != nil {
		t.Fatalf("icmp responder: %v", err)
	}
	s.wg.Add(2)
	go s.serve(false)
	go s.serve(true)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// SetMode changes how requests are answered from now on.
func (s *ICMPResponder) SetMode(m ICMPMode) { s.mode.Store(int32(m)) }

// Requests counts the echo requests seen so far.
func (s *ICMPResponder) Requests() int64 { return s.requests.Load() }

// Close closes the sockets and waits for the responder's goroutines.
func (s *ICMPResponder) Close() error {
	err := errors.Join(s.v4.Close(), s.v6.Close(), s.errV4.Close())
	s.wg.Wait()
	return err
}

func (s *ICMPResponder) serve(v6 bool) {
	defer s.wg.Done()
	buf := make([]byte, 65536)
	for {
		var n int
		var src net.Addr
		var dst net.IP
		var err error
		proto := 1
		if v6 {
			proto = 58
			var cm *ipv6.ControlMessage
			n, cm, src, err = s.v6.IPv6PacketConn().ReadFrom(buf)
			if cm != nil {
				dst = cm.Dst
			}
		} else {
			var cm *ipv4.ControlMessage
			n, cm, src, err = s.v4.IPv4PacketConn().ReadFrom(buf)
			if cm != nil {
				dst = cm.Dst
			}
		}
		if err != nil {
			return // closed
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || (m.Type != ipv4.ICMPTypeEcho && m.Type != ipv6.ICMPTypeEchoRequest) {
			continue // its own replies and errors come back too
		}
		echo, ok := m.Body.(*icmp.Echo)
		if !ok {
			continue
		}
		seen := s.requests.Add(1)
		from, _ := netip.AddrFromSlice(src.(*net.IPAddr).IP)
		to, _ := netip.AddrFromSlice(dst)
		s.answer(ICMPMode(s.mode.Load()), v6, seen, echo, buf[:n], from.Unmap(), to.Unmap())
	}
}

// answer sends what mode says for one request (req, the ICMP message, from
// from to to).
func (s *ICMPResponder) answer(mode ICMPMode, v6 bool, seen int64, echo *icmp.Echo, req []byte, from, to netip.Addr) {
	pc := s.v4
	replyType, unreach, exceeded := icmp.Type(ipv4.ICMPTypeEchoReply), icmp.Type(ipv4.ICMPTypeDestinationUnreachable), icmp.Type(ipv4.ICMPTypeTimeExceeded)
	if v6 {
		pc = s.v6
		replyType, unreach, exceeded = ipv6.ICMPTypeEchoReply, ipv6.ICMPTypeDestinationUnreachable, ipv6.ICMPTypeTimeExceeded
	}
	peer := &net.IPAddr{IP: from.AsSlice()}
	send := func(c *icmp.PacketConn, m icmp.Message) {
		b, err := m.Marshal(nil) // the kernel computes the ICMPv6 checksum
		if err == nil {
			_, _ = c.WriteTo(b, peer)
		}
	}
	reply := func(id, seq int, data []byte) icmp.Message {
		return icmp.Message{Type: replyType, Body: &icmp.Echo{ID: id, Seq: seq, Data: data}}
	}
	// The datagram an error quotes: the request's IP header and message.
	quoted := func() []byte {
		if v6 {
			h := make([]byte, ipv6.HeaderLen, ipv6.HeaderLen+len(req))
			h[0] = 6 << 4
			binary.BigEndian.PutUint16(h[4:6], uint16(len(req)))
			h[6], h[7] = 58, 64
			copy(h[8:24], from.AsSlice())
			copy(h[24:40], to.AsSlice())
			return append(h, req...)
		}
		h := make([]byte, ipv4.HeaderLen, ipv4.HeaderLen+len(req))
		h[0] = 4<<4 | 5
		binary.BigEndian.PutUint16(h[2:4], uint16(ipv4.HeaderLen+len(req)))
		h[8], h[9] = 64, 1
		copy(h[12:16], from.AsSlice())
		copy(h[16:20], to.AsSlice())
		binary.BigEndian.PutUint16(h[10:12], checksum(h))
		return append(h, req...)
	}
	errConn := s.errV4
	if v6 {
		errConn = s.v6
	}
	switch mode {
	case ICMPSilent:
	case ICMPEcho:
		send(pc, reply(echo.ID, echo.Seq, echo.Data))
	case ICMPDuplicate:
		send(pc, reply(echo.ID, echo.Seq, echo.Data))
		send(pc, reply(echo.ID, echo.Seq, echo.Data))
	case ICMPNoise:
		send(pc, reply(echo.ID, echo.Seq+1000, echo.Data))
		other := append([]byte(nil), echo.Data...)
		if len(other) > 0 {
			other[len(other)-1] ^= 0xff
		} else {
			other = []byte{0}
		}
		send(pc, reply(echo.ID, echo.Seq, other))
		send(pc, reply(echo.ID^0x5555, echo.Seq, echo.Data))
		if !v6 {
			send(s.errV4, reply(echo.ID, echo.Seq, echo.Data))
		}
		send(pc, reply(echo.ID, echo.Seq, echo.Data))
	case ICMPEveryOther:
		if seen%2 == 1 {
			send(pc, reply(echo.ID, echo.Seq, echo.Data))
		}
	case ICMPUnreachable:
		code := 1 // host unreachable
		if v6 {
			code = 3 // address unreachable
		}
		send(errConn, icmp.Message{Type: unreach, Code: code, Body: &icmp.DstUnreach{Data: quoted()}})
	case ICMPTimeExceeded:
		send(errConn, icmp.Message{Type: exceeded, Body: &icmp.TimeExceeded{Data: quoted()}})
	case ICMPTooBig:
		if v6 {
			send(errConn, icmp.Message{Type: ipv6.ICMPTypePacketTooBig, Body: &icmp.PacketTooBig{MTU: ICMPTooBigMTU, Data: quoted()}})
			return
		}
		// x/net cannot set the next-hop MTU of "fragmentation needed".
		b := append([]byte{3, 4, 0, 0, 0, 0, ICMPTooBigMTU >> 8, ICMPTooBigMTU & 0xff}, quoted()...)
		binary.BigEndian.PutUint16(b[2:4], checksum(b))
		_, _ = errConn.WriteTo(b, peer)
	}
}

// checksum is the Internet checksum (RFC 1071).
func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
