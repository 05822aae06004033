//go:build linux

package icmpprobe

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"testing"
	"unicode/utf8"
	"unsafe"
)

// errCmsg builds the control message of an error-queue read: a struct
// sock_extended_err and the offender's sockaddr, as Linux writes them.
func errCmsg(v6 bool, origin, typ, code byte, info uint32, offender netip.Addr) []byte {
	data := make([]byte, 16)
	binary.NativeEndian.PutUint32(data[0:4], uint32(syscall.EHOSTUNREACH))
	data[4], data[5], data[6] = origin, typ, code
	binary.NativeEndian.PutUint32(data[8:12], info)
	if offender.Is4() {
		sa := make([]byte, syscall.SizeofSockaddrInet4)
		binary.NativeEndian.PutUint16(sa, syscall.AF_INET)
		copy(sa[4:8], offender.AsSlice())
		data = append(data, sa...)
	} else if offender.IsValid() {
		sa := make([]byte, syscall.SizeofSockaddrInet6)
		binary.NativeEndian.PutUint16(sa, syscall.AF_INET6)
		copy(sa[8:24], offender.AsSlice())
		data = append(data, sa...)
	}
	level, typ2 := int32(syscall.SOL_IP), int32(syscall.IP_RECVERR)
	if v6 {
		level, typ2 = syscall.SOL_IPV6, syscall.IPV6_RECVERR
	}
	b := make([]byte, syscall.CmsgSpace(len(data)))
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ2
	h.SetLen(syscall.CmsgLen(len(data)))
	copy(b[syscall.CmsgLen(0):], data)
	return b
}

// FuzzErrQueue runs the reading of a datagram socket's error queue: what
// the kernel says about an ICMP error, and the request it quotes.
func FuzzErrQueue(f *testing.F) {
	req := echoMsg(false, false, 77, 9, fuzzPayload)
	f.Add(req, errCmsg(false, soEEOriginICMP, 3, 1, 0, fuzzRouter4), false, uint16(9))
	f.Add(req[:8], errCmsg(false, soEEOriginICMP, 3, 4, 1400, fuzzRouter4), false, uint16(9))
	f.Add(echoMsg(true, false, 77, 9, fuzzPayload), errCmsg(true, soEEOriginICMP6, 2, 0, 1280, netip.MustParseAddr("2001:db8::1")), true, uint16(9))
	f.Add(req, errCmsg(false, 1, 0, 0, 1500, netip.Addr{}), false, uint16(9))
	f.Add([]byte{}, []byte{1, 2, 3}, false, uint16(0))
	f.Fuzz(func(t *testing.T, payload, oob []byte, v6 bool, seq uint16) {
		m := fuzzMatcher(v6, false, 0)
		if ev, ok := m.parseErrQueue(payload, oob); ok {
			got, ours := m.ours(payload)
			if ev.kind != evError || !ours || got != ev.seq {
				t.Fatalf("payload %x: %+v", payload, ev)
			}
			if s := ev.String(); !utf8.ValidString(s) {
				t.Fatalf("%+v described as %q", ev, s)
			}
		}
		// Made to measure: the error about request seq, from a router.
		origin, typ, router := byte(soEEOriginICMP), byte(3), fuzzRouter4
		if v6 {
			origin, typ, router = soEEOriginICMP6, 1, netip.MustParseAddr("2001:db8::1")
		}
		req := echoMsg(v6, false, 4242, seq, fuzzPayload)
		ev, ok := m.parseErrQueue(req[:8+int(seq)%(len(fuzzPayload)+1)], errCmsg(v6, origin, typ, 4, 1400, router))
		if !ok || ev.seq != seq || ev.from != router || ev.typ != int(typ) || ev.code != 4 || ev.mtu != map[bool]int{false: 1400, true: 0}[v6] {
			t.Fatalf("error about seq %d: %+v, %v", seq, ev, ok)
		}
		if _, ok := m.parseErrQueue(req, errCmsg(v6, 1, 0, 0, 1500, netip.Addr{})); ok {
			t.Fatalf("a local error read as an ICMP error")
		}
	})
}
