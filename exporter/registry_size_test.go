package exporter

import (
	"bytes"
	"io"
	"runtime"
	"strings"
	"testing"
)

// A large response (10k targets: ~17 MB) must not be grown by doubling on
// every scrape whose pooled buffer a GC took: the next buffer starts at the
// last response's size.
func TestWritePrometheusPresizesFromLastScrape(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	const size = 4 << 20
	line := strings.Repeat("x", 99) + "\n"
	r := NewRegistry()
	r.AddWriter(func(b *bytes.Buffer) {
		for range size / len(line) {
			b.WriteString(line)
		}
	})
	var first bytes.Buffer
	r.WritePrometheus(&first)
	if first.Len() < size-len(line) {
		t.Fatalf("response %d bytes, want about %d", first.Len(), size)
	}
	// Two GCs empty a sync.Pool (primary, then victim cache).
	runtime.GC()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r.WritePrometheus(io.Discard)
	runtime.ReadMemStats(&after)
	// Doubling from empty allocates about twice the response; presized,
	// one buffer of the response plus 1/16 and the runtime metrics.
	if got := after.TotalAlloc - before.TotalAlloc; got > size*3/2 {
		t.Errorf("second scrape allocated %d bytes for a %d-byte response: the buffer was not presized", got, first.Len())
	}
}

// A large response's buffer is not kept between scrapes: kept, it would
// be live heap (and RSS) all the time for a moment's use.
func TestWritePrometheusKeepsNoLargeBuffer(t *testing.T) {
	line := strings.Repeat("y", 99) + "\n"
	r := NewRegistry()
	r.AddWriter(func(b *bytes.Buffer) {
		for range (2 << 20) / len(line) {
			b.WriteString(line)
		}
	})
	r.WritePrometheus(io.Discard)
	if bb, _ := r.bufPool.Get().(*bytes.Buffer); bb != nil && bb.Cap() >= 1<<20 {
		t.Errorf("a %d-byte buffer was kept in the pool", bb.Cap())
	}
}
