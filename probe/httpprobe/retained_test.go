package httpprobe

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/probe"
	"github.com/vantage-probe/vantage/probe/probetest"
)

// BenchmarkRetainedHTTPS measures what an agent keeps per HTTPS target on
// the real result path: the prober (built through one probe.Shared, as
// the agent builds them) and the latest probe.Result, held as the agent
// holds it (a *Result of its own). Each target has a URL of its own on a
// host name, so that the result's remote address is resolved, not copied
// from the URL. A figure is the heap that dropping the probers, or the
// results, gives back, over the targets: what is shared (transport, TLS
// config and facts, settings) counts for nothing.
//
//	go test -run '^$' -bench RetainedHTTPS -benchtime 1x ./probe/httpprobe/
func BenchmarkRetainedHTTPS(b *testing.B) {
	const n = 500
	k := newPKI(b)
	srv := probetest.NewHTTPSServer(b, probetest.HTTPRespond(200, benchBody), k.leaf)
	port := srv.URL[len("https://127.0.0.1:"):]
	urls := make([]string, n)
	for i := range urls {
		urls[i] = fmt.Sprintf("https://localhost:%s/health/svc-%05d", port, i)
	}
	ctx := benchCtx(b)
	var proberB, resultB float64
	for b.Loop() {
		s := probe.NewShared()
		// Built once before measuring, so that what is shared exists.
		mustNewShared(b, urls[0], k.caFile, s).Probe(ctx)
		base := heapAfterGC()
		probers := make([]*Prober, n)
		for i := range probers {
			probers[i] = mustNewShared(b, urls[i], k.caFile, s)
		}
		withProbers := heapAfterGC()
		results := make([]*probe.Result, n)
		for i, p := range probers {
			r := p.Probe(ctx)
			if !r.OK {
				b.Fatalf("probe failed: %s %s", r.Reason, r.Message)
			}
			results[i] = &r
		}
		withResults := heapAfterGC()
		runtime.KeepAlive(results)
		results = nil
		withoutResults := heapAfterGC()
		runtime.KeepAlive(probers)
		proberB += float64(withProbers-base) / n
		resultB += float64(withResults-withoutResults) / n
	}
	b.ReportMetric(proberB/float64(b.N), "prober-B/target")
	b.ReportMetric(resultB/float64(b.N), "result-B/target")
}

func mustNewShared(b *testing.B, url, caFile string, s *probe.Shared) *Prober {
	p, err := NewShared(Options{URL: url, TLS: probe.TLSOptions{CAFile: caFile},
		Net: probe.Net{IPProtocol: probe.IPv4}, FollowRedirects: true}, s)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// heapAfterGC is the live heap once the probes' connections are gone: a
// closed HTTP/2 connection stays reachable for idleConnTimeout.
func heapAfterGC() int64 {
	time.Sleep(3 * idleConnTimeout)
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
