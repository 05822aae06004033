package icmpprobe

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// IANA protocol numbers, for icmp.ParseMessage and inner headers.
const (
	protoICMP   = 1
	protoICMPv6 = 58
)

// eventKind says what a received message means for the probe.
type eventKind uint8

const (
	evNone  eventKind = iota // not about this probe's requests
	evReply                  // an echo reply to one of them
	evError                  // an ICMP error about one of them
)

// event is what one received message says about this probe's requests.
type event struct {
	kind eventKind
	seq  uint16 // the request's sequence number
	// For evError: the ICMP type and code (-1 for a local error), the MTU
	// a "fragmentation needed" or "packet too big" gives, who sent it.
	typ, code int
	mtu       int
	from      netip.Addr
	errno     string // for a local error: what the kernel said
	v6        bool
}

// matcher recognises the replies and errors that belong to one probe.
type matcher struct {
	v6  bool
	id  int // the echo identifier; -1 when the kernel chose it (datagram sockets)
	dst netip.Addr
	// payload is the data of every request of the probe.
	payload []byte
}

// parse reads one ICMP message (without IP header) received from from.
// Anything it cannot parse, or that is not about this probe's requests, is
// evNone: the socket may see other traffic, and a target may answer
// anything.
func (m *matcher) parse(b []byte, from netip.Addr) event {
	proto := protoICMP
	if m.v6 {
		proto = protoICMPv6
	}
	msg, err := icmp.ParseMessage(proto, b)
	if err != nil {
		return event{}
	}
	switch msg.Type {
	case ipv4.ICMPTypeEchoReply, ipv6.ICMPTypeEchoReply:
		echo, ok := msg.Body.(*icmp.Echo)
		if !ok || (m.id >= 0 && echo.ID != m.id) || !bytes.Equal(echo.Data, m.payload) ||
			from.WithZone("") != m.dst.WithZone("") {
			return event{}
		}
		return event{kind: evReply, seq: uint16(echo.Seq)}
	case ipv4.ICMPTypeDestinationUnreachable, ipv4.ICMPTypeTimeExceeded, ipv4.ICMPTypeParameterProblem,
		ipv6.ICMPTypeDestinationUnreachable, ipv6.ICMPTypePacketTooBig, ipv6.ICMPTypeTimeExceeded, ipv6.ICMPTypeParameterProblem:
	default:
		return event{}
	}
	var inner []byte
	ev := event{kind: evError, code: msg.Code, from: from, v6: m.v6}
	switch body := msg.Body.(type) {
	case *icmp.DstUnreach:
		inner = body.Data
		if !m.v6 && msg.Code == 4 && len(b) >= 8 {
			// Fragmentation needed: the next hop's MTU is in the header's
			// last two bytes (RFC 1191), which x/net does not decode.
			ev.mtu = int(binary.BigEndian.Uint16(b[6:8]))
		}
	case *icmp.TimeExceeded:
		inner = body.Data
	case *icmp.ParamProb:
		inner = body.Data
	case *icmp.PacketTooBig:
		inner, ev.mtu = body.Data, body.MTU
	default:
		return event{}
	}
	if m.v6 {
		ev.typ = int(msg.Type.(ipv6.ICMPType))
	} else {
		ev.typ = int(msg.Type.(ipv4.ICMPType))
	}
	dst, echo, ok := m.innerRequest(inner)
	if !ok || dst != m.dst.WithZone("") {
		return event{}
	}
	seq, ok := m.ours(echo)
	if !ok {
		return event{}
	}
	ev.seq = seq
	return ev
}

// innerRequest finds the echo request an ICMP error quotes: the original
// datagram's destination and its ICMP message (at least the 8-byte header;
// the data may be cut).
func (m *matcher) innerRequest(d []byte) (netip.Addr, []byte, bool) {
	if m.v6 {
		// A fixed 40-byte header whose next header is ICMPv6; a request
		// sent with extension headers is not this prober's.
		if len(d) < ipv6.HeaderLen+8 || d[0]>>4 != 6 || d[6] != protoICMPv6 {
			return netip.Addr{}, nil, false
		}
		return netip.AddrFrom16([16]byte(d[24:40])), d[ipv6.HeaderLen:], true
	}
	if len(d) < ipv4.HeaderLen || d[0]>>4 != 4 {
		return netip.Addr{}, nil, false
	}
	hl := int(d[0]&0x0f) * 4
	if hl < ipv4.HeaderLen || len(d) < hl+8 || d[9] != protoICMP {
		return netip.Addr{}, nil, false
	}
	return netip.AddrFrom4([4]byte(d[16:20])), d[hl:], true
}

// ours reads the sequence number of an echo request this probe sent, from
// its quoted ICMP header and whatever of its data the error quotes.
func (m *matcher) ours(req []byte) (uint16, bool) {
	want := byte(ipv4.ICMPTypeEcho)
	if m.v6 {
		want = byte(ipv6.ICMPTypeEchoRequest)
	}
	if len(req) < 8 || req[0] != want || req[1] != 0 {
		return 0, false
	}
	if m.id >= 0 && int(binary.BigEndian.Uint16(req[4:6])) != m.id {
		return 0, false
	}
	data := req[8:]
	if len(data) > len(m.payload) || !bytes.Equal(data, m.payload[:len(data)]) {
		return 0, false
	}
	return binary.BigEndian.Uint16(req[6:8]), true
}

// String describes an error event for a result's message:
// "destination unreachable (host unreachable) from 192.0.2.1".
func (ev event) String() string {
	var what string
	switch {
	case ev.typ < 0:
		what = "local error: " + ev.errno
		if ev.mtu > 0 {
			what += fmt.Sprintf(" (MTU %d)", ev.mtu)
		}
		return what
	case ev.v6:
		what = describe6(ev.typ, ev.code)
	default:
		what = describe4(ev.typ, ev.code)
	}
	if ev.mtu > 0 {
		what += fmt.Sprintf(", MTU %d", ev.mtu)
	}
	if ev.from.IsValid() {
		what += " from " + ev.from.String()
	}
	return what
}

// describe4 names an ICMPv4 error (RFC 792, 1812).
func describe4(typ, code int) string {
	switch typ {
	case 3:
		codes := [...]string{
			"network unreachable", "host unreachable", "protocol unreachable", "port unreachable",
			"fragmentation needed", "source route failed", "destination network unknown",
			"destination host unknown", "source host isolated", "network administratively prohibited",
			"host administratively prohibited", "network unreachable for TOS", "host unreachable for TOS",
			"communication administratively prohibited", "host precedence violation", "precedence cutoff",
		}
		if code >= 0 && code < len(codes) {
			return "destination unreachable (" + codes[code] + ")"
		}
		return fmt.Sprintf("destination unreachable (code %d)", code)
	case 11:
		if code == 1 {
			return "time exceeded (fragment reassembly)"
		}
		return "time exceeded (TTL expired in transit)"
	case 12:
		return fmt.Sprintf("parameter problem (code %d)", code)
	}
	return fmt.Sprintf("ICMP type %d code %d", typ, code)
}

// describe6 names an ICMPv6 error (RFC 4443).
func describe6(typ, code int) string {
	switch typ {
	case 1:
		codes := [...]string{
			"no route to destination", "administratively prohibited", "beyond scope of source address",
			"address unreachable", "port unreachable", "source address failed ingress/egress policy",
			"reject route to destination",
		}
		if code >= 0 && code < len(codes) {
			return "destination unreachable (" + codes[code] + ")"
		}
		return fmt.Sprintf("destination unreachable (code %d)", code)
	case 2:
		return "packet too big"
	case 3:
		if code == 1 {
			return "time exceeded (fragment reassembly)"
		}
		return "time exceeded (hop limit exceeded in transit)"
	case 4:
		return fmt.Sprintf("parameter problem (code %d)", code)
	}
	return fmt.Sprintf("ICMPv6 type %d code %d", typ, code)
}
