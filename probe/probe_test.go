package probe

import (
	"testing"
	"time"
)

func TestLatency(t *testing.T) {
	for _, c := range []struct {
		name string
		r    Result
		want time.Duration
	}{
		{"http", Result{Duration: 40 * time.Millisecond}, 40 * time.Millisecond},
		{"icmp with replies", Result{Duration: 52 * time.Millisecond,
			ICMP: &ICMPFacts{PacketsSent: 3, PacketsReceived: 2, RTT: 900 * time.Microsecond}}, 900 * time.Microsecond},
		{"icmp without a reply", Result{Duration: 2 * time.Second, ICMP: &ICMPFacts{PacketsSent: 3}}, 2 * time.Second},
	} {
		if got := c.r.Latency(); got != c.want {
			t.Errorf("%s: Latency %v, want %v", c.name, got, c.want)
		}
	}
}
