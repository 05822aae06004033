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
