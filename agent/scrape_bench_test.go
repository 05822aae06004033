package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/probe"
)

// BenchmarkScrape10k is one /metrics response for 10,000 HTTPS targets
// with a result each (TLS facts included) and the agent leading every
// verdict, as a cluster of one does: what `vantage bench` times end to
// end, without the HTTP round trip. It reports bytes and allocations per
// scrape; B/op is what a scrape adds to the heap.
func BenchmarkScrape10k(b *testing.B) {
	a, size := benchAgent(b, 10000)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		a.reg.WritePrometheus(io.Discard)
	}
	b.ReportMetric(float64(size), "resp-bytes")
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

// benchAgent runs an agent with n HTTPS targets, each with a result (TLS
// facts included), leading every verdict as a cluster of one does, and
// returns it with the size of its /metrics response.
func benchAgent(b *testing.B, n int) (*Agent, countWriter) {
	b.Helper()
	return benchAgentExtra(b, n, "", 0)
}

// benchAgentExtra is benchAgent with extra lines in the [agent] section
// and Options.StateFlushEvery.
func benchAgentExtra(b *testing.B, n int, extra string, flushEvery time.Duration) (*Agent, countWriter) {
	b.Helper()
	a := runBenchAgent(b, n, extra, "", flushEvery)
	now := time.Now()
	a.mu.Lock()
	states := a.states
	for _, st := range states {
		st.assigned = true
	}
	a.mu.Unlock()
	for _, st := range states {
		r := probe.Result{OK: true, At: now, Duration: 3 * time.Millisecond,
			Phases: []probe.Phase{{Name: probe.PhaseResolve, Duration: 1000}, {Name: probe.PhaseConnect, Duration: 200000},
				{Name: probe.PhaseTLS, Duration: 2000000}, {Name: probe.PhaseProcessing, Duration: 500000}, {Name: probe.PhaseTransfer, Duration: 30000}},
			HTTP: &probe.HTTPFacts{StatusCode: 200, Version: "2", ContentLength: 2},
			TLS:  &probe.TLSFacts{Version: "TLS 1.3", EarliestExpiry: now.Add(90 * 24 * time.Hour), LastChainExpiry: now.Add(90 * 24 * time.Hour)}}
		a.record(st, &r)
	}
	// The leader's verdicts appear with its next evaluation (every second).
	var size countWriter
	for deadline := time.Now().Add(30 * time.Second); ; {
		var out bytes.Buffer
		a.reg.WritePrometheus(&out)
		if strings.Count(out.String(), "\nvantage_target_up{") == n {
			size = countWriter(out.Len())
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("verdicts of %d targets not exported within 30 s", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return a, size
}

// benchIdleAgent runs an agent with a state directory and n HTTPS targets
// probed in another region only: configured, assigned nowhere here.
func benchIdleAgent(b *testing.B, n int) *Agent {
	b.Helper()
	a := runBenchAgent(b, n, fmt.Sprintf("state_dir = %q\n", filepath.Join(b.TempDir(), "state")), "regions = [\"elsewhere\"]\n", time.Hour)
	// Every target's verdict, made by this agent as their leader.
	for deadline := time.Now().Add(30 * time.Second); len(a.Cluster().LeaderVerdicts()) < n; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d verdicts within 30 s", len(a.Cluster().LeaderVerdicts()), n)
		}
	}
	return a
}

// runBenchAgent writes a config of n HTTPS targets (extra lines in the
// [agent] section, targetExtra in each target), loads it and runs an
// agent on it until the benchmark ends.
func runBenchAgent(b *testing.B, n int, extra, targetExtra string, flushEvery time.Duration) *Agent {
	b.Helper()
	dir := b.TempDir()
	var cfg strings.Builder
	cfg.WriteString(strings.Replace(baseConfig(""), "[agent]\n", "[agent]\n"+extra, 1)) // the agent's own sections
	for i := range n {
		fmt.Fprintf(&cfg, "[[target]]\nname = \"t%05d\"\ntype = \"http\"\ninterval = \"1h\"\n%surl = \"https://svc-%d.example.test/health\"\n[target.labels]\nteam = \"payments\"\n", i, targetExtra, i%100)
	}
	path := filepath.Join(dir, "vantage.toml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	c, err := config.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	a, err := New(Options{ConfigPath: path, Config: c, Version: "bench", WatchEvery: -1, StateFlushEvery: flushEvery})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	return a
}
