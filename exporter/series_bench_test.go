package exporter

import (
	"fmt"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/probe"
)

// benchObs is n targets' observations, a quarter of each probe type, each
// with a full result of its kind: what a scrape of a mixed fleet writes.
func benchObs(n int) []Obs {
	now := time.Unix(1_780_000_000, 0)
	chain := []probe.Cert{{Subject: "CN=svc.example.test", Issuer: "CN=Example CA,O=Example", NotAfter: now.Add(90 * 24 * time.Hour),
		SHA256: "fd36aae4f37cdc448d25799eb8aae554b9fad186495a201e0589f392e978533b", DNSNames: []string{"svc.example.test", "www.example.test"}}}
	tlsFacts := &probe.TLSFacts{Version: "TLS 1.3", Verified: true, EarliestExpiry: now.Add(90 * 24 * time.Hour),
		LastChainExpiry: now.Add(90 * 24 * time.Hour), Chain: chain}
	results := map[string]*probe.Result{
		"http": {OK: true, At: now, Duration: 3 * time.Millisecond, RemoteAddr: "192.0.2.10:443",
			Phases: []probe.Phase{{Name: probe.PhaseResolve, Duration: 1000}, {Name: probe.PhaseConnect, Duration: 200000},
				{Name: probe.PhaseTLS, Duration: 2000000}, {Name: probe.PhaseProcessing, Duration: 500000}, {Name: probe.PhaseTransfer, Duration: 30000}},
			HTTP: &probe.HTTPFacts{StatusCode: 200, Version: "2", ContentLength: 2}, TLS: tlsFacts},
		"tls": {OK: true, At: now, Duration: 2 * time.Millisecond, RemoteAddr: "192.0.2.11:443",
			Phases: []probe.Phase{{Name: probe.PhaseResolve, Duration: 1000}, {Name: probe.PhaseConnect, Duration: 200000}, {Name: probe.PhaseTLS, Duration: 1500000}},
			TLS:    tlsFacts},
		"dns": {OK: true, At: now, Duration: time.Millisecond, RemoteAddr: "[2001:db8::53]:53",
			Phases: []probe.Phase{{Name: probe.PhaseConnect, Duration: 20000}, {Name: probe.PhaseRoundTrip, Duration: 900000}},
			DNS:    &probe.DNSFacts{Rcode: "NOERROR", AnswerRRs: 1, Server: "[2001:db8::53]:53", Transport: "udp"}},
		"tcp": {OK: true, At: now, Duration: 300 * time.Microsecond, RemoteAddr: "192.0.2.12:5432",
			Phases: []probe.Phase{{Name: probe.PhaseResolve, Duration: 1000}, {Name: probe.PhaseConnect, Duration: 290000}}},
	}
	types := []string{"http", "tls", "dns", "tcp"}
	obs := make([]Obs, n)
	for i := range obs {
		typ := types[i%len(types)]
		obs[i] = Obs{Labels: Labels(fmt.Sprintf("t%05d", i), typ, map[string]string{"team": "payments"}), Type: typ,
			Result: results[typ], Success: 100, Failure: 1}
	}
	return obs
}

// BenchmarkWriteObservations writes the observation families of 1,000
// targets of every probe type into a buffer that spills nowhere: the
// writer's own cost per scrape, without the agent around it. allocs/op is
// the writer's allocations (0: none per sample).
func BenchmarkWriteObservations(b *testing.B) {
	obs := benchObs(1000)
	var buf Buf
	WriteObservations(&buf, RegionLabel("eu-west"), obs)
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		WriteObservations(&buf, RegionLabel("eu-west"), obs)
	}
}

// The observation writer allocates nothing per sample: a scrape of 10k
// targets writes hundreds of thousands of them.
func TestWriteObservationsAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	obs := benchObs(100)
	var buf Buf
	region := RegionLabel("eu-west")
	WriteObservations(&buf, region, obs) // grows the buffer once
	if got := testing.AllocsPerRun(20, func() {
		buf.Reset()
		WriteObservations(&buf, region, obs)
	}); got != 0 {
		t.Errorf("WriteObservations allocated %v times per scrape of %d targets, want 0", got, len(obs))
	}
}
