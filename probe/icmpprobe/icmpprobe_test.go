package icmpprobe

import (
	"context"
	"errors"
	"net/netip"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/probe"
)

// probeTimeout bounds probes expected to succeed: generous, for a loaded
// 2-core machine.
const probeTimeout = 10 * time.Second

func newProber(t testing.TB, o Options) *Prober {
	t.Helper()
	p, err := New(o)
	if err != nil {
		t.Fatalf("New(%+v): %v", o, err)
	}
	return p
}

func run(p *Prober, timeout time.Duration) probe.Result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return p.Probe(ctx)
}

func wantOK(t *testing.T, r probe.Result) {
	t.Helper()
	if !r.OK || r.Reason != probe.ReasonNone {
		t.Fatalf("probe failed: %s: %s", r.Reason, r.Message)
	}
}

func wantFail(t *testing.T, r probe.Result, reason probe.Reason, msg ...string) {
	t.Helper()
	if r.OK || r.Reason != reason {
		t.Fatalf("OK %v reason %q (%s), want failure %q", r.OK, r.Reason, r.Message, reason)
	}
	for _, m := range msg {
		if !strings.Contains(r.Message, m) {
			t.Errorf("message %q does not contain %q", r.Message, m)
		}
	}
}

// needSocket skips the test when this process may open no ICMP socket
// (neither root nor a group in net.ipv4.ping_group_range).
func needSocket(t testing.TB, v6 bool) {
	t.Helper()
	if _, err := Detect(nil, v6); err != nil {
		t.Skipf("needs an ICMP socket: %v", err)
	}
}

// needRaw skips the test when raw sockets are not allowed (CAP_NET_RAW).
func needRaw(t testing.TB) {
	t.Helper()
	c, err := openSocket(SocketRaw, false, netip.Addr{}, false)
	if err != nil {
		t.Skipf("needs a raw socket (root or CAP_NET_RAW): %v", err)
	}
	_ = c.close()
}

func TestLoopback(t *testing.T) {
	for _, tt := range []struct {
		address string
		proto   probe.IPProtocol
		remote  string
	}{
		{"127.0.0.1", "", "127.0.0.1"},
		{"::1", "", "::1"},
		{"[::1]", "", "::1"},
		{"localhost", probe.IPv4, "127.0.0.1"},
		{"::ffff:127.0.0.1", "", "127.0.0.1"},
	} {
		t.Run(tt.address, func(t *testing.T) {
			needSocket(t, strings.Contains(tt.remote, ":"))
			p := newProber(t, Options{Address: tt.address, Packets: 3, PacketInterval: time.Millisecond, Net: probe.Net{IPProtocol: tt.proto}})
			r := run(p, probeTimeout)
			wantOK(t, r)
			if r.RemoteAddr != tt.remote {
				t.Errorf("RemoteAddr %q, want %q", r.RemoteAddr, tt.remote)
			}
			f := r.ICMP
			if f == nil || f.PacketsSent != 3 || f.PacketsReceived != 3 || f.ReplyHopLimit != 64 {
				t.Fatalf("facts %+v, want 3 of 3 answered with hop limit 64", f)
			}
			if f.RTT <= 0 || f.RTTMin > f.RTT || f.RTT > f.RTTMax || (f.Socket != string(SocketRaw) && f.Socket != string(SocketDatagram)) {
				t.Errorf("facts %+v", f)
			}
			if len(r.Phases) != 3 || r.Phases[0].Name != probe.PhaseResolve || r.Phases[1].Name != probe.PhaseSetup || r.Phases[2].Name != probe.PhaseRTT {
				t.Errorf("phases %v, want resolve, setup, rtt", r.Phases)
			}
			if r.Phase(probe.PhaseSetup) <= 0 || r.Phase(probe.PhaseRTT) != f.RTT {
				t.Errorf("phases %v, rtt facts %v", r.Phases, f.RTT)
			}
			if (tt.address == "localhost") != (r.Phase(probe.PhaseResolve) > 0) {
				t.Errorf("resolve phase %v for %q", r.Phase(probe.PhaseResolve), tt.address)
			}
			// Two requests 1 ms apart after the first: the probe lasts that
			// long at least.
			if r.Duration < 2*time.Millisecond {
				t.Errorf("Duration %v, want at least the 2 ms between 3 requests", r.Duration)
			}
		})
	}
}

// Raw sockets pick their own identifier; a sequence number that wraps
// within a probe still matches every reply.
func TestRawSequenceWraps(t *testing.T) {
	needRaw(t)
	p := newProber(t, Options{Address: "127.0.0.1", Packets: 4, PacketInterval: time.Millisecond})
	p.force = SocketRaw
	p.seq.Store(65534)
	r := run(p, probeTimeout)
	wantOK(t, r)
	if r.ICMP.PacketsReceived != 4 || r.ICMP.Socket != "raw" {
		t.Fatalf("facts %+v", r.ICMP)
	}
}

func TestPayloadSizes(t *testing.T) {
	needSocket(t, false)
	for _, size := range []int{1, 7, 8, 1472, 9000} {
		p := newProber(t, Options{Address: "127.0.0.1", PayloadSize: size})
		wantOK(t, run(p, probeTimeout))
	}
}

func TestSourceIP(t *testing.T) {
	needSocket(t, false)
	p := newProber(t, Options{Address: "localhost", Net: probe.Net{SourceIP: netip.MustParseAddr("127.0.0.1")}})
	if p.net.IPProtocol != probe.IPv4 {
		t.Errorf("source_ip 127.0.0.1: ip_protocol %q, want the source's family", p.net.IPProtocol)
	}
	r := run(p, probeTimeout)
	wantOK(t, r)
	if r.RemoteAddr != "127.0.0.1" {
		t.Errorf("RemoteAddr %q", r.RemoteAddr)
	}
	// 192.0.2.1 (TEST-NET-1) is nobody's address here: the bind fails.
	p = newProber(t, Options{Address: "127.0.0.1", Net: probe.Net{SourceIP: netip.MustParseAddr("192.0.2.1")}})
	r = run(p, probeTimeout)
	wantFail(t, r, probe.ReasonConnectError, "bind")
	if r.ICMP != nil {
		t.Errorf("facts %+v without a request sent", r.ICMP)
	}
}

func TestResolveFailure(t *testing.T) {
	p := newProber(t, Options{Address: "no-such-host.invalid"})
	r := run(p, probeTimeout)
	wantFail(t, r, probe.ReasonDNSError, "resolve")
	if r.ICMP != nil || r.RemoteAddr != "" {
		t.Errorf("facts %+v, remote %q after a failed resolution", r.ICMP, r.RemoteAddr)
	}
}

func TestNewValidation(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want []string
		is   error
	}{
		{name: "no address", o: Options{}, want: []string{`address "": missing host`}, is: probe.ErrNoHost},
		{name: "port", o: Options{Address: "example.com:80"}, want: []string{`address "example.com:80": want a host name or IP address, without a port`}},
		{name: "v6 with port", o: Options{Address: "[::1]:80"}, want: []string{`address "[::1]:80"`}},
		{name: "family", o: Options{Address: "127.0.0.1", Net: probe.Net{IPProtocol: probe.IPv6}}, want: []string{`address "127.0.0.1"`}, is: probe.ErrFamily},
		{name: "ip_protocol", o: Options{Address: "a", Net: probe.Net{IPProtocol: "ip5"}}, want: []string{`ip_protocol "ip5": must be ip4 or ip6`}},
		{name: "source family", o: Options{Address: "a", Net: probe.Net{IPProtocol: probe.IPv4, SourceIP: netip.MustParseAddr("::1")}}, want: []string{`source_ip "::1": not of ip_protocol "ip4"`}},
		{name: "source and address", o: Options{Address: "::1", Net: probe.Net{SourceIP: netip.MustParseAddr("127.0.0.1")}}, want: []string{`source_ip "127.0.0.1": not of the family of address "::1"`}},
		{name: "negative packets", o: Options{Address: "a", Packets: -1}, want: []string{"packets -1: must not be negative"}, is: probe.ErrNegative},
		{name: "too many packets", o: Options{Address: "a", Packets: 500}, want: []string{"packets 500: above the limit of 100"}, is: ErrLimit},
		{name: "min_replies above packets", o: Options{Address: "a", Packets: 2, MinReplies: 3}, want: []string{"min_replies 3: above the limit of packets (2)"}, is: ErrLimit},
		{name: "min_replies above the default", o: Options{Address: "a", MinReplies: 2}, want: []string{"min_replies 2: above the limit of packets (1)"}},
		{name: "negative min_replies", o: Options{Address: "a", MinReplies: -2}, want: []string{"min_replies -2"}, is: probe.ErrNegative},
		{name: "negative interval", o: Options{Address: "a", PacketInterval: -time.Second}, want: []string{"packet_interval -1s"}, is: probe.ErrNegative},
		{name: "payload", o: Options{Address: "a", PayloadSize: 70000}, want: []string{"payload_size 70000: above the limit of 65507"}, is: ErrLimit},
		{name: "negative payload", o: Options{Address: "a", PayloadSize: -1}, want: []string{"payload_size -1"}, is: probe.ErrNegative},
		{
			name: "every problem at once", o: Options{Address: "x:1", Packets: 101, PayloadSize: -1, PacketInterval: -1},
			want: []string{`address "x:1"`, "packets 101", "payload_size -1", "packet_interval -1ns"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(tt.o)
			if err == nil || p != nil {
				t.Fatalf("New = %v, %v; want an error", p, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v does not wrap %v", err, tt.is)
			}
		})
	}
	p := newProber(t, Options{Address: "[fe80::1%lo]"})
	if p.host != "fe80::1%lo" || p.packets != 1 || p.minReplies != 1 || p.interval != DefaultPacketInterval || p.payloadSize != DefaultPayloadSize {
		t.Errorf("defaults: %+v", p)
	}
}

func TestNoSocketMessage(t *testing.T) {
	err := noSocket(false, syscall.EACCES, syscall.EPERM)
	if !errors.Is(err, ErrNoSocket) {
		t.Fatalf("%v does not wrap ErrNoSocket", err)
	}
	if runtime.GOOS == "linux" {
		for _, w := range []string{"net.ipv4.ping_group_range", "sysctl -w", "CAP_NET_RAW", "setcap cap_net_raw+ep", "permission denied", "operation not permitted"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("message %q does not name %q", err, w)
			}
		}
	}
}

// The detector remembers the kind that worked, per family, in the
// probe.Shared it lives in.
func TestDetectIsShared(t *testing.T) {
	needSocket(t, false)
	s := probe.NewShared()
	kind, err := Detect(s, false)
	if err != nil || (kind != SocketDatagram && kind != SocketRaw) {
		t.Fatalf("Detect: %q, %v", kind, err)
	}
	d := detectorFor(s)
	if d.kind[0] != kind || d.kind[1] != "" {
		t.Errorf("detector %v after detecting %q for IPv4", d.kind, kind)
	}
	a, b := newShared(t, s), newShared(t, s)
	if a.det != d || b.det != d {
		t.Errorf("probers of one Shared have their own detectors")
	}
	if c := newProber(t, Options{Address: "127.0.0.1"}); c.det == d {
		t.Errorf("a prober without a Shared uses a shared detector")
	}
}

func newShared(t *testing.T, s *probe.Shared) *Prober {
	t.Helper()
	p, err := NewShared(Options{Address: "127.0.0.1"}, s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConcurrentProbes runs probes of one prober and of several at once:
// each must count its own replies only, raw sockets seeing all of them.
func TestConcurrentProbes(t *testing.T) {
	needSocket(t, false)
	ps := []*Prober{
		newProber(t, Options{Address: "127.0.0.1", Packets: 5, PacketInterval: time.Millisecond}),
		newProber(t, Options{Address: "127.0.0.1", Packets: 5, PacketInterval: time.Millisecond}),
	}
	done := make(chan probe.Result)
	const each = 8
	for i := range 2 * each {
		go func() { done <- run(ps[i%2], probeTimeout) }()
	}
	for range 2 * each {
		r := <-done
		if !r.OK || r.ICMP.PacketsReceived != 5 || r.ICMP.PacketsSent != 5 {
			t.Errorf("probe: %s %s, facts %+v", r.Reason, r.Message, r.ICMP)
		}
	}
}
