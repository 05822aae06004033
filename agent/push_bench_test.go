package agent

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/vantage-probe/vantage/exporter/push"
)

// BenchmarkPush is one push of an agent's series (the agent of
// BenchmarkScrape10k, with 1,000 and 10,000 targets) to an endpoint that
// reads and drops the body: what pushing costs the agent per interval. It
// reports the body before compression (raw-bytes) and on the wire
// (wire-bytes), and the process's CPU time per push (cpu-ns, user and
// system; the endpoint's reading is in it, and the agent's background
// work, which is small for targets probed hourly), and the bytes a push
// allocates when the library's buffer pool is empty (first-push-B) and
// how far that push raised the process's peak RSS (peak-rss-added-B, run
// one size alone to read it): the library builds the whole body in memory,
// unlike a scrape, which streams.
func BenchmarkPush(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("targets=%d", n), func(b *testing.B) {
			a, _ := benchAgent(b, n)
			var wire atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n, _ := io.Copy(io.Discard, r.Body)
				wire.Store(n)
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			p, err := push.New(push.Config{URL: srv.URL + "/api/v1/import/prometheus", Interval: time.Minute,
				Labels: map[string]string{"job": "vantage", "instance": "t1"}, Write: a.reg.WritePrometheus, Metrics: metrics.NewSet()})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			// The first push allocates the library's buffers (sync.Pool):
			// what a push adds to the heap when the pool is empty, as it
			// is after two collections between pushes.
			var m0, m1 runtime.MemStats
			var r0, r1 syscall.Rusage
			runtime.GC()
			runtime.ReadMemStats(&m0)
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
			p.Push(ctx)
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
			runtime.ReadMemStats(&m1)
			first := m1.TotalAlloc - m0.TotalAlloc
			peak := (r1.Maxrss - r0.Maxrss) << 10 // KiB; how far the first push raised the process's peak RSS
			var before, after syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				p.Push(ctx)
			}
			b.StopTimer()
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
			cpu := time.Duration(after.Utime.Nano() - before.Utime.Nano() + after.Stime.Nano() - before.Stime.Nano())
			st := p.Status()
			if st.Errors > 0 {
				b.Fatalf("push failed: %s", st.LastError)
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(st.LastBytes), "raw-bytes")
			b.ReportMetric(float64(wire.Load()), "wire-bytes")
			b.ReportMetric(float64(first), "first-push-B")
			b.ReportMetric(float64(peak), "peak-rss-added-B")
		})
	}
}
