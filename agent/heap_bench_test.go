package agent

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"
)

// BenchmarkLiveHeap10k reports the live heap per target of an agent with
// 10,000 HTTPS targets, each with a result and a verdict it leads: the
// per-target structures that issue 21's 64 MB goal has to fit (the
// probes' connections in flight come on top, in `vantage bench`).
func BenchmarkLiveHeap10k(b *testing.B) {
	liveHeap(b, 10000, func() *Agent { a, _ := benchAgent(b, 10000); return a })
}

// BenchmarkLiveHeap10kState is BenchmarkLiveHeap10k with a state
// directory, as `vantage agent` (and `vantage bench`) keep by default,
// after one flush: each target's first sighting and objective written, its
// SLO accounting accrued and waiting for the next bulk write. The flushing
// loop waits an hour, so that no flush is under way (its garbage, a
// copy of the cluster's first sightings among it, still reachable) when
// the heap is measured; the extra GC empties the store's page pool.
func BenchmarkLiveHeap10kState(b *testing.B) {
	liveHeap(b, 10000, func() *Agent {
		a, _ := benchAgentExtra(b, 10000, fmt.Sprintf("state_dir = %q\n", b.TempDir()), time.Hour)
		a.persist.flush(time.Now(), false)
		runtime.GC()
		return a
	})
}

// BenchmarkLiveHeap10kElsewhere is the agent of a large fleet: 10,000
// targets configured, none probed here (each names another region), so
// no result, history or series; with a state directory, after one flush.
// The agent still leads them all, as a cluster of one does (a member of a
// 100-agent fleet leads 1%): the leader's state comes on top of what a
// member keeps. Issue 17's model takes its per-target term from here.
func BenchmarkLiveHeap10kElsewhere(b *testing.B) { liveHeapElsewhere(b, 10000) }

// BenchmarkLiveHeap100kElsewhere is the same at issue 17's 100,000
// targets: the per-target terms where they count.
func BenchmarkLiveHeap100kElsewhere(b *testing.B) { liveHeapElsewhere(b, 100000) }

func liveHeapElsewhere(b *testing.B, n int) {
	liveHeap(b, n, func() *Agent {
		a := benchIdleAgent(b, n)
		a.persist.flush(time.Now(), false)
		runtime.GC()
		return a
	})
}

func liveHeap(b *testing.B, n int, start func() *Agent) {
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	a := start()
	var after runtime.MemStats
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&after)
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "live-B/target")
	// VANTAGE_HEAP_PROFILE=FILE writes the live heap while the agent runs
	// (go test's -memprofile is taken after it stopped); use it with
	// -memprofilerate 512 to see small objects.
	if path := os.Getenv("VANTAGE_HEAP_PROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			b.Fatal(err)
		}
	}
	runtime.KeepAlive(a)
}
