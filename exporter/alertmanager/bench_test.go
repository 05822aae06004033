package alertmanager

import (
	"fmt"
	"testing"
	"time"
)

// benchAlerts are n alerts shaped like the agent's: a handful of labels,
// two annotations, a generator URL.
func benchAlerts(n int) []Alert {
	startsAt := time.Now().Add(-time.Minute)
	out := make([]Alert, n)
	for i := range out {
		target := fmt.Sprintf("target-%05d", i)
		out[i] = Alert{
			Labels: map[string]string{
				"alertname": "VantageTargetDown", "target": target, "severity": "page",
				"team": "web", "type": "http", "regions_failing": "3",
			},
			Annotations: map[string]string{
				"summary":     target + " is down from 3 of 4 regions",
				"description": "HTTP probe failed: connection refused; first failure 12:00:00Z",
			},
			StartsAt:     startsAt,
			GeneratorURL: "http://vantage-1:9115/targets/" + target,
		}
	}
	return out
}

// Building one full batch: every resend of 10k alerts builds ~160.
func BenchmarkAppendBatch64(b *testing.B) {
	n, err := New(Config{URLs: []string{"http://127.0.0.1:1"}, ExternalLabels: map[string]string{"fleet": "eu"}})
	if err != nil {
		b.Fatal(err)
	}
	if err := n.Update(benchAlerts(maxBatch)); err != nil {
		b.Fatal(err)
	}
	batch := n.senders[0].take(nil)
	if len(batch) != maxBatch {
		b.Fatalf("batch of %d", len(batch))
	}
	var buf []byte
	firingEnd := time.Now().Add(4 * time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendBatch(buf[:0], batch, firingEnd)
	}
	b.SetBytes(int64(len(buf)))
}

// An Update of 10k alerts of which none changed: what the agent pays at
// every evaluation at 10k targets.
func BenchmarkUpdate10kUnchanged(b *testing.B) {
	n, err := New(Config{URLs: []string{"http://127.0.0.1:1"}})
	if err != nil {
		b.Fatal(err)
	}
	alerts := benchAlerts(10000)
	if err := n.Update(alerts); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := n.Update(alerts); err != nil {
			b.Fatal(err)
		}
	}
}
