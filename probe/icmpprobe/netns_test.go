//go:build linux

package icmpprobe

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/internal/testenv"
	"github.com/vantage-probe/vantage/probe"
	"github.com/vantage-probe/vantage/probe/probetest"
)

// The tests here run in a network namespace of their own (InNetNS), where
// they set net.ipv4.ping_group_range, turn the kernel's echo replies off
// for an ICMPResponder that answers as scripted, and add routes.

// allowDatagram lets every group open unprivileged ICMP sockets (Docker's
// default), in the test's namespace only.
func allowDatagram(t *testing.T) {
	probetest.Sysctl(t, "net.ipv4.ping_group_range", "0 2147483647")
}

// kinds are the socket kinds the responder tests go through, each forced.
var kinds = []Socket{SocketDatagram, SocketRaw}

func forced(t *testing.T, kind Socket, o Options) *Prober {
	t.Helper()
	p := newProber(t, o)
	p.force = kind
	return p
}

// TestDetection: datagram sockets where ping_group_range allows them, raw
// sockets (root in the namespace) where it does not.
func TestDetection(t *testing.T) {
	if !probetest.InNetNS(t) {
		return
	}
	for _, v6 := range []bool{false, true} {
		probetest.Sysctl(t, "net.ipv4.ping_group_range", "1 0")
		if kind, err := Detect(nil, v6); kind != SocketRaw {
			t.Errorf("v6 %v, ping_group_range \"1 0\": Detect %q, %v; want raw", v6, kind, err)
		}
		allowDatagram(t)
		if kind, err := Detect(nil, v6); kind != SocketDatagram {
			t.Errorf("v6 %v, every group allowed: Detect %q, %v; want datagram", v6, kind, err)
		}
	}
	// A detector keeps what worked: the shared one still opens raw sockets
	// after the sysctl changed.
	probetest.Sysctl(t, "net.ipv4.ping_group_range", "1 0")
	s := probe.NewShared()
	p, err := NewShared(Options{Address: "127.0.0.1"}, s)
	if err != nil {
		t.Fatal(err)
	}
	r := run(p, probeTimeout)
	wantOK(t, r)
	if r.ICMP.Socket != "raw" {
		t.Fatalf("socket %q, want raw", r.ICMP.Socket)
	}
	allowDatagram(t)
	if r := run(p, probeTimeout); !r.OK || r.ICMP.Socket != "raw" {
		t.Errorf("after allowing datagram sockets: %s %s, socket %v; want raw still", r.Reason, r.Message, r.ICMP)
	}
	if r := run(newProber(t, Options{Address: "127.0.0.1"}), probeTimeout); !r.OK || r.ICMP.Socket != "datagram" {
		t.Errorf("a new prober: %s %s, socket %v; want datagram", r.Reason, r.Message, r.ICMP)
	}
}

// TestDatagramKernelEcho probes loopback through datagram sockets, the
// kernel answering: the path an unprivileged agent takes.
func TestDatagramKernelEcho(t *testing.T) {
	if !probetest.InNetNS(t) {
		return
	}
	allowDatagram(t)
	for _, addr := range []string{"127.0.0.1", "::1"} {
		r := run(newProber(t, Options{Address: addr, Packets: 3, PacketInterval: time.Millisecond}), probeTimeout)
		wantOK(t, r)
		if f := r.ICMP; f.Socket != "datagram" || f.PacketsReceived != 3 || f.ReplyHopLimit != 64 {
			t.Errorf("%s: facts %+v", addr, f)
		}
	}
}

func TestResponder(t *testing.T) {
	if !probetest.InNetNS(t) {
		return
	}
	allowDatagram(t)
	resp := probetest.StartICMPResponder(t, probetest.ICMPEcho)
	const silentTimeout = 300 * time.Millisecond
	for _, kind := range kinds {
		for _, addr := range []string{"127.0.0.1", "::1"} {
			v6 := strings.Contains(addr, ":")
			name := func(s string) string { return fmt.Sprintf("%s/%s/%s", kind, addr, s) }
			o := Options{Address: addr, Packets: 3, PacketInterval: time.Millisecond}
			t.Run(name("echo"), func(t *testing.T) {
				resp.SetMode(probetest.ICMPEcho)
				r := run(forced(t, kind, o), probeTimeout)
				wantOK(t, r)
				if f := r.ICMP; f.Socket != string(kind) || f.PacketsSent != 3 || f.PacketsReceived != 3 || f.ReplyHopLimit != 64 {
					t.Errorf("facts %+v", f)
				}
			})
			t.Run(name("silent"), func(t *testing.T) {
				resp.SetMode(probetest.ICMPSilent)
				start := time.Now()
				r := run(forced(t, kind, o), silentTimeout)
				took := time.Since(start)
				wantFail(t, r, probe.ReasonTimeout, "no echo reply from "+addr, "0 of 3 requests answered")
				if took < silentTimeout-20*time.Millisecond || took > silentTimeout+3*time.Second {
					t.Errorf("returned after %v, want about %v", took, silentTimeout)
				}
				if f := r.ICMP; f == nil || f.PacketsSent != 3 || f.PacketsReceived != 0 || f.ReplyHopLimit != -1 || f.RTT != 0 {
					t.Errorf("facts %+v", f)
				}
				if rtt := r.Phase(probe.PhaseRTT); rtt < silentTimeout/2 {
					t.Errorf("rtt phase %v, want the time waited", rtt)
				}
			})
			for _, tt := range []struct {
				mode probetest.ICMPMode
				want string
			}{
				{probetest.ICMPUnreachable, map[bool]string{false: "destination unreachable (host unreachable) from 127.0.0.2", true: "destination unreachable (address unreachable) from ::1"}[v6]},
				{probetest.ICMPTimeExceeded, "time exceeded"},
				{probetest.ICMPTooBig, "MTU 1280"},
			} {
				t.Run(name(fmt.Sprint("error", tt.mode)), func(t *testing.T) {
					resp.SetMode(tt.mode)
					start := time.Now()
					r := run(forced(t, kind, o), probeTimeout)
					wantFail(t, r, probe.ReasonICMPUnreachable, tt.want, "0 of 3 requests answered")
					if took := time.Since(start); took > probeTimeout/2 {
						t.Errorf("took %v: an ICMP error for every request should end the probe", took)
					}
					if f := r.ICMP; f == nil || f.PacketsSent != 3 || f.PacketsReceived != 0 {
						t.Errorf("facts %+v", f)
					}
				})
			}
			t.Run(name("duplicates and noise count once"), func(t *testing.T) {
				for _, mode := range []probetest.ICMPMode{probetest.ICMPDuplicate, probetest.ICMPNoise} {
					resp.SetMode(mode)
					r := run(forced(t, kind, o), probeTimeout)
					wantOK(t, r)
					if f := r.ICMP; f.PacketsSent != 3 || f.PacketsReceived != 3 {
						t.Errorf("mode %d: facts %+v", mode, f)
					}
				}
			})
			t.Run(name("loss"), func(t *testing.T) {
				resp.SetMode(probetest.ICMPEveryOther)
				o := Options{Address: addr, Packets: 4, PacketInterval: time.Millisecond}
				// Requests alternate between answered and not whatever the
				// count before: each probe sends an even number.
				r := run(forced(t, kind, o), silentTimeout)
				wantOK(t, r)
				if f := r.ICMP; f.PacketsSent != 4 || f.PacketsReceived != 2 {
					t.Errorf("facts %+v, want 2 of 4", f)
				}
				o.MinReplies = 3
				r = run(forced(t, kind, o), silentTimeout)
				wantFail(t, r, probe.ReasonPacketLoss, "2 of 4 requests answered, min_replies 3")
				if r.ICMP.RTT <= 0 || r.Phase(probe.PhaseRTT) != r.ICMP.RTT {
					t.Errorf("rtt %v, phase %v: the mean of the replies that came", r.ICMP.RTT, r.Phases)
				}
			})
		}
	}
}

// TestSendErrors: requests the kernel refuses to send.
func TestSendErrors(t *testing.T) {
	if !probetest.InNetNS(t) {
		return
	}
	allowDatagram(t)
	probetest.IPCommand(t, "route", "add", "unreachable", "198.51.100.1/32")
	probetest.IPCommand(t, "route", "add", "prohibit", "198.51.100.2/32")
	probetest.IPCommand(t, "link", "set", "lo", "mtu", "1280")
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			r := run(forced(t, kind, Options{Address: "198.51.100.1"}), probeTimeout)
			wantFail(t, r, probe.ReasonConnectError, "send: ", "no route to host")
			if r.ICMP != nil {
				t.Errorf("facts %+v without a request sent", r.ICMP)
			}
			wantFail(t, run(forced(t, kind, Options{Address: "198.51.100.2"}), probeTimeout), probe.ReasonConnectError, "send: ")
			// Above the MTU: fragmented without dont_fragment, refused with it.
			wantOK(t, run(forced(t, kind, Options{Address: "127.0.0.1", PayloadSize: 1400}), probeTimeout))
			r = run(forced(t, kind, Options{Address: "127.0.0.1", PayloadSize: 1400, DontFragment: true}), probeTimeout)
			wantFail(t, r, probe.ReasonConnectError, "message too long", "dont_fragment with payload_size 1400")
			wantOK(t, run(forced(t, kind, Options{Address: "127.0.0.1", PayloadSize: 1200, DontFragment: true}), probeTimeout))
		})
	}
}

// TestCancelAndNoLeaks: a probe waiting on a silent host returns as soon as
// its context is cancelled, and no probe leaves a goroutine behind.
func TestCancelAndNoLeaks(t *testing.T) {
	if !probetest.InNetNS(t) {
		return
	}
	allowDatagram(t)
	resp := probetest.StartICMPResponder(t, probetest.ICMPSilent)
	for _, kind := range kinds {
		p := forced(t, kind, Options{Address: "127.0.0.1", Packets: 2, PacketInterval: time.Millisecond})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan probe.Result, 1)
		// Counted before the probe starts: it may send both requests
		// before this goroutine runs again.
		before := resp.Requests()
		go func() { done <- p.Probe(ctx) }()
		testenv.Poll(t, 10*time.Second, "the requests", func() bool { return resp.Requests() >= before+2 })
		cancel()
		select {
		case r := <-done:
			wantFail(t, r, probe.ReasonTimeout)
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: probe still running 5 s after cancel", kind)
		}
	}
	base := runtime.NumGoroutine()
	for range 3 {
		for _, mode := range []probetest.ICMPMode{probetest.ICMPEcho, probetest.ICMPSilent, probetest.ICMPUnreachable, probetest.ICMPNoise} {
			resp.SetMode(mode)
			for _, kind := range kinds {
				for _, addr := range []string{"127.0.0.1", "::1"} {
					run(forced(t, kind, Options{Address: addr, Packets: 2, PacketInterval: time.Millisecond}), 50*time.Millisecond)
				}
			}
		}
	}
	testenv.Poll(t, 10*time.Second, "goroutines back to baseline", func() bool { return runtime.NumGoroutine() <= base })
}
