package agent

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/probe"
)

// newIdleAgent makes (but does not run) one agent with n HTTP targets on
// a closed port, keeping state in stateDir ("" for none).
func newIdleAgent(tb testing.TB, n int, stateDir string) *Agent {
	tb.Helper()
	var b strings.Builder
	b.WriteString("[agent]\nnode = \"bench\"\nlisten = \"127.0.0.1:0\"\n")
	if stateDir != "" {
		fmt.Fprintf(&b, "state_dir = %q\n", stateDir)
	}
	b.WriteString("[cluster]\nbind = \"127.0.0.1:0\"\n[quorum]\nmin_regions = 1\n[defaults]\ninterval = \"10s\"\ntimeout = \"1s\"\n")
	for i := range n {
		fmt.Fprintf(&b, "[[target]]\nname = \"t%05d\"\ntype = \"http\"\nurl = \"http://127.0.0.1:9/%d\"\n", i, i)
	}
	cfg, err := config.Parse(filepath.Join(tb.TempDir(), "bench.toml"), []byte(b.String()))
	if err != nil {
		tb.Fatal(err)
	}
	a, err := New(Options{Config: cfg, Version: "test", WatchEvery: -1, ClusterTuning: fastCluster})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(a.Kill)
	return a
}

// TestPersistingAddsNoAllocationToProbes: recording a probe result costs
// the same allocations with a state directory as without: the probe path
// only marks the target dirty.
func TestPersistingAddsNoAllocationToProbes(t *testing.T) {
	allocs := func(stateDir string) float64 {
		a := newIdleAgent(t, 1, stateDir)
		st := a.state("t00000")
		r := probe.Result{OK: true, At: time.Now(), Duration: 3 * time.Millisecond}
		a.record(st, &r) // the first result is news; the rest are not
		return testing.AllocsPerRun(1000, func() {
			r.At = r.At.Add(time.Second)
			a.record(st, &r)
		})
	}
	without, with := allocs(""), allocs(t.TempDir())
	t.Logf("allocations per recorded probe: %.1f without a state directory, %.1f with", without, with)
	if with > without {
		t.Errorf("persisting adds %.1f allocations to each probe", with-without)
	}
	a := newIdleAgent(t, 1, t.TempDir())
	st := a.state("t00000")
	if n := testing.AllocsPerRun(1000, func() { st.dirty.Store(true) }); n != 0 {
		t.Errorf("marking dirty allocates %.1f", n)
	}
}

// BenchmarkFlush1000ProbesPerSecond: 10,000 targets at a 10s interval are
// 1,000 probes a second; each 5s flush accrues the SLO accounting and
// writes whatever incidents changed, every twelfth also every target's
// history and SLO bucket (bulkFlushes): the figures are the mean. cpu-s/s is the process's CPU
// time per flush over the 5 seconds it covers: the share of one core
// persisting costs.
func BenchmarkFlush1000ProbesPerSecond(b *testing.B) {
	const targets, every = 10_000, 5 * time.Second
	a := newIdleAgent(b, targets, b.TempDir())
	p := a.persist
	states := make([]*targetState, 0, targets)
	for i := range targets {
		states = append(states, a.state(fmt.Sprintf("t%05d", i)))
	}
	now := time.Now()
	p.flush(now, true) // the first flush writes every target's meta
	r := probe.Result{OK: true, Duration: 3 * time.Millisecond}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	var marking time.Duration
	for i := range b.N {
		b.StopTimer()
		m0 := cpuTime()
		now = now.Add(every)
		r.At = now
		for j := range targets / 2 { // 1,000/s over 5 s
			st := states[(i*targets/2+j)%targets]
			st.addHistory(&r)
			st.dirty.Store(true)
		}
		marking += cpuTime() - m0
		b.StartTimer()
		p.flush(now, false)
	}
	b.StopTimer()
	// The process's CPU time (every goroutine, fsync waits excluded)
	// during the flushes, per flush, over the 5 s a flush covers.
	cpu := (cpuTime() - cpu0 - marking) / time.Duration(b.N)
	b.ReportMetric(float64(cpu)/float64(every), "cpu-s/s")
	b.ReportMetric(float64(p.store.Size())/(1<<20), "MB-file")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
