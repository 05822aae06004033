package icmpprobe

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// The benchmarks probe loopback, where the kernel answers: cpu-ns/op is
// the prober's cost plus the kernel's echo, the same for every benchmark.
// Datagram sockets need net.ipv4.ping_group_range to allow the process;
// run them in a namespace that does (see TestDatagramKernelEcho), e.g.
//
//	unshare -n sh -c 'ip link set lo up; sysctl -qw net.ipv4.ping_group_range="0 2147483647"; ./icmpprobe.test -test.bench .'

func BenchmarkProbeICMP(b *testing.B) {
	for _, tt := range []struct {
		name    string
		kind    Socket
		address string
	}{
		{"raw/ipv4", SocketRaw, "127.0.0.1"},
		{"raw/ipv6", SocketRaw, "::1"},
		{"datagram/ipv4", SocketDatagram, "127.0.0.1"},
		{"datagram/ipv6", SocketDatagram, "::1"},
	} {
		b.Run(tt.name, func(b *testing.B) {
			dst := netip.MustParseAddr(tt.address)
			c, err := openSocket(tt.kind, dst.Is6(), netip.Addr{}, false)
			if err != nil {
				b.Skipf("no %s socket: %v", tt.kind, err)
			}
			_ = c.close()
			p := newProber(b, Options{Address: tt.address})
			p.force = tt.kind
			// One context for the whole run: the agent's per-probe
			// WithTimeout is the agent's cost, not the prober's.
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				if r := p.Probe(ctx); !r.OK {
					b.Fatalf("%s: %s", r.Reason, r.Message)
				}
			}
		})
	}
}

// BenchmarkBareEcho is the floor BenchmarkProbeICMP/raw/ipv4 is held to:
// a raw socket opened, one echo request written, its reply read, the
// socket closed, with x/net/icmp and nothing else.
func BenchmarkBareEcho(b *testing.B) {
	needRaw(b)
	dst := &net.IPAddr{IP: net.IPv4(127, 0, 0, 1)}
	buf := make([]byte, 1500)
	b.ReportAllocs()
	defer reportCPU(b)()
	seq := 0
	for b.Loop() {
		c, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		if err != nil {
			b.Fatal(err)
		}
		seq++
		m := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: 0x4242, Seq: seq, Data: make([]byte, DefaultPayloadSize)}}
		wb, _ := m.Marshal(nil)
		if _, err := c.WriteTo(wb, dst); err != nil {
			b.Fatal(err)
		}
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				b.Fatal(err)
			}
			if r, err := icmp.ParseMessage(1, buf[:n]); err == nil && r.Type == ipv4.ICMPTypeEchoReply {
				if e, ok := r.Body.(*icmp.Echo); ok && e.ID == 0x4242 && e.Seq == seq&0xffff {
					break
				}
			}
		}
		_ = c.Close()
	}
}
