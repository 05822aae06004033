package dnsprobe_test

import (
	"context"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/probe/dnsprobe"
)

// benchProbe measures one whole probe (dial, exchange, checks, facts)
// against a loopback server answering from a zone, with an answer regex so
// the checks are part of the cost.
func benchProbe(b *testing.B, transport string) {
	e := &env{}
	server := e.start(b, transport, zone(b))
	o := e.opts(transport, server)
	o.AnswerRegex = `192\.0\.2\.2`
	p := mustNew(b, o)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		if r := p.Probe(ctx); !r.OK {
			b.Fatalf("%s: %s", r.Reason, r.Message)
		}
	}
}

func BenchmarkProbeUDP(b *testing.B) { benchProbe(b, dnsprobe.TransportUDP) }
func BenchmarkProbeTCP(b *testing.B) { benchProbe(b, dnsprobe.TransportTCP) }
