// Package soak runs a fleet against many loopback targets for a long time,
// with random target faults and agent restarts, and samples what must stay
// flat: goroutines, heap, open file descriptors, and schedule lateness.
package soak

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vantage-probe/vantage/agent"
	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/cluster"
	"github.com/vantage-probe/vantage/probe/probetest"
)

// Options configure a soak run.
type Options struct {
	Targets  int           // number of targets (half HTTP, half TCP)
	Interval time.Duration // per-target interval
	Duration time.Duration // how long to run
	Regions  int           // agents, one per region
	// RestartEvery kills a random agent (no Leave) and restarts it.
	RestartEvery time.Duration
	// FaultEvery flips a random 1% of targets to failing (and back).
	FaultEvery  time.Duration
	SampleEvery time.Duration
	Out         io.Writer // progress lines
	Seed        int64
}

// Sample is one measurement.
type Sample struct {
	At         time.Duration
	Goroutines int
	HeapMB     float64
	FDs        int
	LateP99    time.Duration
	Probes     int64
}

// Report is the outcome of a run.
type Report struct {
	Before, After Sample // process state before the fleet started and after it stopped
	Samples       []Sample
	Probes        int64
	Restarts      int
	Faults        int
}

// Run starts a farm and a fleet, plays faults and restarts until
// opts.Duration, stops everything and reports.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if opts.Regions <= 0 {
		opts.Regions = 3
	}
	if opts.SampleEvery <= 0 {
		opts.SampleEvery = 10 * time.Second
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	rng := rand.New(rand.NewSource(opts.Seed))
	rep := &Report{}
	runtime.GC()
	rep.Before = sample(0, nil)

	// The farm: failing targets answer 503 / close at once.
	var failing sync.Map
	httpSrv, err := probetest.StartHTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, bad := failing.Load(strings.TrimPrefix(r.URL.Path, "/")); bad {
			http.Error(w, "fault", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	if err != nil {
		return nil, err
	}
	defer httpSrv.Close()
	tcpSrv, err := probetest.StartTCP(probetest.TCPEcho, "")
	if err != nil {
		return nil, err
	}
	defer tcpSrv.Close()

	var b strings.Builder
	names := make([]string, opts.Targets)
	for i := range names {
		names[i] = fmt.Sprintf("t%05d", i)
		if i%2 == 0 {
			fmt.Fprintf(&b, "[[target]]\nname = %q\ntype = \"http\"\nurl = \"%s/%s\"\n", names[i], httpSrv.URL, names[i])
		} else {
			fmt.Fprintf(&b, "[[target]]\nname = %q\ntype = \"tcp\"\naddress = %q\n", names[i], tcpSrv.Addr)
		}
	}
	base := fmt.Sprintf("[cluster]\nbind = \"127.0.0.1:0\"\nlabel = \"soak\"\n[defaults]\ninterval = %q\ntimeout = \"1s\"\n%s",
		opts.Interval.String(), b.String())

	var probes atomic.Int64
	var lateMu sync.Mutex
	var late []time.Duration
	type running struct {
		a      *agent.Agent
		cancel context.CancelFunc
		done   chan struct{}
	}
	agents := make([]*running, opts.Regions)
	seed := ""
	start := func(i int) error {
		cfg, err := config.Parse("soak.toml", []byte(base))
		if err != nil {
			return err
		}
		if err := cfg.ApplyOverrides(config.Overrides{Node: fmt.Sprintf("soak-%d", i), Region: fmt.Sprintf("r%d", i),
			Listen: "127.0.0.1:0", Bind: "127.0.0.1:0"}); err != nil {
			return err
		}
		if seed != "" {
			cfg.Cluster.Join = []string{seed}
		}
		a, err := agent.New(agent.Options{Config: cfg, WatchEvery: -1,
			OnLateness: func(d time.Duration) {
				probes.Add(1)
				lateMu.Lock()
				late = append(late, d)
				lateMu.Unlock()
			},
			ClusterTuning: func(c *cluster.Config) {
				c.ProbeInterval, c.ProbeTimeout, c.SuspicionMult = 500*time.Millisecond, 200*time.Millisecond, 2
			}})
		if err != nil {
			return err
		}
		cctx, cancel := context.WithCancel(context.Background())
		r := &running{a: a, cancel: cancel, done: make(chan struct{})}
		go func() { _ = a.Run(cctx); close(r.done) }()
		agents[i] = r
		if seed == "" {
			seed = a.Cluster().LocalAddr()
		}
		return nil
	}
	for i := range agents {
		if err := start(i); err != nil {
			return nil, err
		}
	}
	defer func() {
		for _, r := range agents {
			if r != nil {
				r.cancel()
				<-r.done
			}
		}
	}()

	t0 := time.Now()
	sampleT := time.NewTicker(opts.SampleEvery)
	defer sampleT.Stop()
	var restartC, faultC <-chan time.Time
	if opts.RestartEvery > 0 {
		t := time.NewTicker(opts.RestartEvery)
		defer t.Stop()
		restartC = t.C
	}
	if opts.FaultEvery > 0 {
		t := time.NewTicker(opts.FaultEvery)
		defer t.Stop()
		faultC = t.C
	}
	end := time.NewTimer(opts.Duration)
	defer end.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-end.C:
			break loop
		case <-sampleT.C:
			lateMu.Lock()
			l := late
			late = nil
			lateMu.Unlock()
			s := sample(time.Since(t0), l)
			s.Probes = probes.Load()
			rep.Samples = append(rep.Samples, s)
			fmt.Fprintf(opts.Out, "soak %6s  goroutines %5d  heap %6.1f MB  fds %5d  lateness p99 %8s  probes %d\n",
				s.At.Round(time.Second), s.Goroutines, s.HeapMB, s.FDs, s.LateP99.Round(100*time.Microsecond), s.Probes)
		case <-faultC:
			// Heal last round's faults, break 1% of targets anew.
			failing.Range(func(k, _ any) bool { failing.Delete(k); return true })
			for i := 0; i < max(1, opts.Targets/100); i++ {
				failing.Store(names[rng.Intn(len(names))], true)
			}
			rep.Faults++
		case <-restartC:
			i := 1 + rng.Intn(len(agents)-1) // keep the seed agent
			r := agents[i]
			r.a.Kill()
			r.cancel()
			<-r.done
			agents[i] = nil
			if err := start(i); err != nil {
				return nil, err
			}
			rep.Restarts++
		}
	}
	for i, r := range agents {
		r.cancel()
		<-r.done
		agents[i] = nil
	}
	httpSrv.Close()
	tcpSrv.Close()
	rep.Probes = probes.Load()
	// Let goroutines and sockets wind down, then measure.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		runtime.GC()
		rep.After = sample(time.Since(t0), nil)
		if rep.After.Goroutines <= rep.Before.Goroutines+2 && rep.After.FDs <= rep.Before.FDs+2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return rep, nil
}

func sample(at time.Duration, late []time.Duration) Sample {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := Sample{At: at, Goroutines: runtime.NumGoroutine(), HeapMB: float64(ms.HeapInuse) / (1 << 20), FDs: openFDs()}
	if len(late) > 0 {
		sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
		s.LateP99 = late[len(late)*99/100]
	}
	return s
}

func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// Flat reports whether the steady state stayed flat: the second half's
// median goroutines and heap within slack of the first half's. Medians, not
// peaks: a peak is a burst of probes in flight (a loaded host delays them),
// a leak moves the median.
func (r *Report) Flat(goroutineSlack int, heapSlack float64) error {
	if len(r.Samples) < 4 {
		return fmt.Errorf("only %d samples", len(r.Samples))
	}
	half := len(r.Samples) / 2
	median := func(ss []Sample) (int, float64) {
		g := make([]int, len(ss))
		h := make([]float64, len(ss))
		for i, s := range ss {
			g[i], h[i] = s.Goroutines, s.HeapMB
		}
		sort.Ints(g)
		sort.Float64s(h)
		return g[len(g)/2], h[len(h)/2]
	}
	g1, h1 := median(r.Samples[:half])
	g2, h2 := median(r.Samples[half:])
	if g2 > g1+goroutineSlack {
		return fmt.Errorf("goroutines grew: first half median %d, second half median %d", g1, g2)
	}
	if h2 > h1*(1+heapSlack) {
		return fmt.Errorf("heap grew: first half median %.1f MB, second half median %.1f MB", h1, h2)
	}
	return nil
}
