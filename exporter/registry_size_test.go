package exporter

import (
	"bytes"
	"io"
	"runtime"
	"strings"
	"testing"
)

// countingWriter records the sizes of the writes it gets.
type countingWriter struct {
	bytes.Buffer
	writes []int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, len(p))
	return w.Buffer.Write(p)
}

// A large response (10k targets: ~20 MB) streams through a small buffer:
// the scraper gets all of it, in pieces of about spillAt, and the scrape
// allocates a small fraction of the response.
func TestWritePrometheusStreams(t *testing.T) {
	const size = 4 << 20
	line := strings.Repeat("x", 99) + "\n"
	r := NewRegistry()
	r.AddWriter(func(b *Buf) {
		for range size / len(line) {
			b.WriteString(line)
			b.Spill()
		}
	})
	var first countingWriter
	r.WritePrometheus(&first)
	if n := strings.Count(first.String(), line); n != size/len(line) {
		t.Fatalf("response has %d of the writer's %d lines", n, size/len(line))
	}
	if len(first.writes) < size/spillAt {
		t.Errorf("%d writes for a %d-byte response: not streamed", len(first.writes), first.Len())
	}
	for _, n := range first.writes {
		if n > spillAt+len(line)+64<<10 {
			t.Errorf("a write of %d bytes: the buffer grew past spillAt", n)
			break
		}
	}
	if raceEnabled {
		return // the race detector changes allocation counts
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r.WritePrometheus(io.Discard)
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > size/8 {
		t.Errorf("a scrape allocated %d bytes for a %d-byte response: it was built in memory", got, first.Len())
	}
}

// A writer that never spills grows the buffer; that buffer is not kept
// between scrapes: kept, it would be live heap (and RSS) all the time for
// a moment's use.
func TestWritePrometheusKeepsNoLargeBuffer(t *testing.T) {
	line := strings.Repeat("y", 99) + "\n"
	r := NewRegistry()
	r.AddWriter(func(b *Buf) {
		for range (2 << 20) / len(line) {
			b.WriteString(line)
		}
	})
	var out bytes.Buffer
	r.WritePrometheus(&out)
	if out.Len() < 2<<20-len(line) {
		t.Fatalf("response %d bytes, want about 2 MB", out.Len())
	}
	if bb, _ := r.bufPool.Get().(*Buf); bb != nil && bb.Cap() >= 1<<20 {
		t.Errorf("a %d-byte buffer was kept in the pool", bb.Cap())
	}
}

// A target's label set is written once, shared by its verdict series
// (no region: the fleet's verdict) and its observation series, which add
// the agent's region after it.
func TestLabelsAndRegion(t *testing.T) {
	labels := Labels("web \"1\"", "http", map[string]string{"team": "sre", "env": "prod"})
	if want := `target="web \"1\"",type="http",env="prod",team="sre"`; labels != want {
		t.Errorf("labels %s, want %s", labels, want)
	}
	var b Buf
	WriteObservations(&b, RegionLabel("eu-west"), []Obs{{Labels: labels, Type: "http", Success: 3}})
	if want := `vantage_probes_total{` + labels + `,region="eu-west",result="success"} 3`; !strings.Contains(b.String(), want) {
		t.Errorf("observations lack %s:\n%s", want, b.String())
	}
	b.Reset()
	WriteObservations(&b, RegionLabel(""), []Obs{{Labels: Labels("db", "tcp", nil), Type: "tcp", Success: 1}})
	if strings.Contains(b.String(), "region=") {
		t.Errorf("an agent without a region wrote a region label:\n%s", b.String())
	}
}
