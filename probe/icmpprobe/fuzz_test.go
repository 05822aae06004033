package icmpprobe

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"unicode/utf8"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Sending packets per input is too slow to fuzz, and the kernel would not
// deliver most inputs anyway; matcher.parse is where what the network sent
// meets the prober, so the fuzz target runs it on its own, with the
// addresses and payload of a probe.

var (
	fuzzDst4    = netip.MustParseAddr("192.0.2.7")
	fuzzDst6    = netip.MustParseAddr("2001:db8::7")
	fuzzRouter4 = netip.MustParseAddr("198.51.100.1")
	fuzzPayload = []byte("\x01\x02\x03\x04\x05\x06\x07\x08Vantage Vantage ")
)

func fuzzMatcher(v6, raw bool, id uint16) *matcher {
	m := &matcher{v6: v6, id: -1, dst: fuzzDst4, payload: fuzzPayload}
	if v6 {
		m.dst = fuzzDst6
	}
	if raw {
		m.id = int(id)
	}
	return m
}

// echoMsg marshals an echo request or reply.
func echoMsg(v6, reply bool, id, seq uint16, data []byte) []byte {
	var typ icmp.Type = ipv4.ICMPTypeEcho
	switch {
	case v6 && reply:
		typ = ipv6.ICMPTypeEchoReply
	case v6:
		typ = ipv6.ICMPTypeEchoRequest
	case reply:
		typ = ipv4.ICMPTypeEchoReply
	}
	b, err := (&icmp.Message{Type: typ, Body: &icmp.Echo{ID: int(id), Seq: int(seq), Data: data}}).Marshal(nil)
	if err != nil {
		panic(err)
	}
	return b
}

// quote builds the datagram an ICMP error quotes: an IP header from src to
// dst, then msg.
func quote(v6 bool, src, dst netip.Addr, msg []byte) []byte {
	if v6 {
		h := make([]byte, ipv6.HeaderLen)
		h[0], h[6], h[7] = 6<<4, 58, 64
		binary.BigEndian.PutUint16(h[4:6], uint16(len(msg)))
		copy(h[8:24], src.AsSlice())
		copy(h[24:40], dst.AsSlice())
		return append(h, msg...)
	}
	h := make([]byte, ipv4.HeaderLen)
	h[0], h[8], h[9] = 4<<4|5, 64, 1
	binary.BigEndian.PutUint16(h[2:4], uint16(ipv4.HeaderLen+len(msg)))
	copy(h[12:16], src.AsSlice())
	copy(h[16:20], dst.AsSlice())
	return append(h, msg...)
}

// errorMsg marshals an ICMP error of the given type (destination
// unreachable, time exceeded, packet too big) quoting data.
func errorMsg(v6 bool, typ, code int, data []byte) []byte {
	var m icmp.Message
	switch {
	case v6 && typ == 2:
		m = icmp.Message{Type: ipv6.ICMPTypePacketTooBig, Body: &icmp.PacketTooBig{MTU: 1280, Data: data}}
	case v6 && typ == 3:
		m = icmp.Message{Type: ipv6.ICMPTypeTimeExceeded, Code: code, Body: &icmp.TimeExceeded{Data: data}}
	case v6:
		m = icmp.Message{Type: ipv6.ICMPTypeDestinationUnreachable, Code: code, Body: &icmp.DstUnreach{Data: data}}
	case typ == 11:
		m = icmp.Message{Type: ipv4.ICMPTypeTimeExceeded, Code: code, Body: &icmp.TimeExceeded{Data: data}}
	default:
		m = icmp.Message{Type: ipv4.ICMPTypeDestinationUnreachable, Code: code, Body: &icmp.DstUnreach{Data: data}}
	}
	b, err := m.Marshal(nil)
	if err != nil {
		panic(err)
	}
	return b
}

func FuzzReply(f *testing.F) {
	req4 := echoMsg(false, false, 0x1234, 7, fuzzPayload)
	req6 := echoMsg(true, false, 0x1234, 7, fuzzPayload)
	src4, src6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	f.Add(echoMsg(false, true, 0x1234, 7, fuzzPayload), false, true, uint16(0x1234), uint16(7))
	f.Add(echoMsg(true, true, 0x1234, 7, fuzzPayload), true, false, uint16(0), uint16(65535))
	f.Add(echoMsg(false, true, 0x1234, 7, fuzzPayload[:5]), false, false, uint16(0x1234), uint16(7))
	f.Add(errorMsg(false, 3, 1, quote(false, src4, fuzzDst4, req4)), false, true, uint16(0x1234), uint16(7))
	f.Add(errorMsg(false, 3, 4, quote(false, src4, fuzzDst4, req4[:8])), false, false, uint16(1), uint16(2))
	f.Add(errorMsg(false, 11, 0, quote(false, src4, fuzzDst4, req4[:12])), false, true, uint16(0x1234), uint16(0))
	f.Add(errorMsg(true, 1, 3, quote(true, src6, fuzzDst6, req6)), true, true, uint16(0x1234), uint16(7))
	f.Add(errorMsg(true, 2, 0, quote(true, src6, fuzzDst6, req6)), true, false, uint16(0), uint16(7))
	f.Add(errorMsg(true, 3, 0, quote(true, src6, fuzzDst6, req6[:8])), true, false, uint16(0), uint16(7))
	f.Add([]byte{0, 0}, false, false, uint16(0), uint16(0))
	f.Add([]byte{3, 1, 0, 0, 0, 0, 0, 0, 0x4f}, false, true, uint16(0), uint16(0))
	f.Fuzz(func(t *testing.T, b []byte, v6, raw bool, id, seq uint16) {
		m := fuzzMatcher(v6, raw, id)
		proto := protoICMP
		if v6 {
			proto = protoICMPv6
		}
		// Whatever came: a reply only if it is one, to a request of ours.
		ev := m.parse(b, m.dst)
		switch ev.kind {
		case evReply:
			msg, err := icmp.ParseMessage(proto, b)
			if err != nil {
				t.Fatalf("reply from unparsable %x: %v", b, err)
			}
			echo, ok := msg.Body.(*icmp.Echo)
			if !ok || (msg.Type != ipv4.ICMPTypeEchoReply && msg.Type != ipv6.ICMPTypeEchoReply) || !bytes.Equal(echo.Data, fuzzPayload) ||
				uint16(echo.Seq) != ev.seq || raw && echo.ID != int(id) {
				t.Fatalf("%x read as the reply to %d: %+v %+v", b, ev.seq, msg, msg.Body)
			}
			if other := m.parse(b, fuzzRouter4); other.kind != evNone {
				t.Fatalf("%x from another address read as %+v", b, other)
			}
		case evError:
			if s := ev.String(); s == "" || !utf8.ValidString(s) {
				t.Fatalf("error %+v described as %q", ev, s)
			}
			if ev.from != m.dst {
				t.Fatalf("error %+v: sender %v, want %v", ev, ev.from, m.dst)
			}
		}

		// Made to measure: the reply to seq, and an error quoting it.
		if ev := m.parse(echoMsg(v6, true, id, seq, fuzzPayload), m.dst); ev.kind != evReply || ev.seq != seq {
			t.Fatalf("reply id %d seq %d: %+v", id, seq, ev)
		}
		if ev := m.parse(echoMsg(v6, true, id, seq, append(fuzzPayload[:len(fuzzPayload):len(fuzzPayload)], b...)), m.dst); len(b) > 0 && ev.kind != evNone {
			t.Fatalf("reply with other data read as %+v", ev)
		}
		if raw {
			if ev := m.parse(echoMsg(v6, true, id+1, seq, fuzzPayload), m.dst); ev.kind != evNone {
				t.Fatalf("reply with another id read as %+v", ev)
			}
		}
		src := netip.MustParseAddr("192.0.2.1")
		if v6 {
			src = netip.MustParseAddr("2001:db8::1")
		}
		req := echoMsg(v6, false, id, seq, fuzzPayload)
		cut := 8 + int(seq)%(len(fuzzPayload)+1) // errors may quote part of the data
		if ev := m.parse(errorMsg(v6, 3, 1, quote(v6, src, m.dst, req[:cut])), fuzzRouter4); ev.kind != evError || ev.seq != seq || ev.from != fuzzRouter4 {
			t.Fatalf("error quoting seq %d (%d bytes): %+v", seq, cut, ev)
		}
		if ev := m.parse(errorMsg(v6, 3, 1, quote(v6, src, src, req)), fuzzRouter4); ev.kind != evNone {
			t.Fatalf("error about a request to another host read as %+v", ev)
		}
	})
}
