package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vantage-probe/vantage/agent"
	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/internal/memlimit"
	"github.com/vantage-probe/vantage/internal/mono"
)

// runVantage measures one agent, in this process, probing ts: at its
// default settings, as `vantage agent` runs (GOGC from the environment or
// the runtime's 100, a memory limit from internal/memlimit: GOMEMLIMIT,
// the container's, or the number of targets), or, with runtimeDefaults, at
// GOGC=100 without a memory limit. The process's settings are put back
// afterwards, so that the bare client runs at the process's own.
func (h *harness) runVantage(ctx context.Context, s Scenario, ts []target, r *Result, runtimeDefaults bool) (err error) {
	gc0, limit0 := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	defer func() { debug.SetGCPercent(gc0); debug.SetMemoryLimit(limit0) }()
	var mem *memlimit.Tuner
	if runtimeDefaults {
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(math.MaxInt64)
	} else {
		debug.SetGCPercent(gc0)
		mem = memlimit.NewTuner(memlimit.Input{Getenv: h.o.Getenv}, nil)
	}
	// The baseline: this process before the agent's config exists, with
	// garbage collected and returned, so the growth is the agent's.
	if h.o.MemProfile != "" {
		// Every allocation of 4 KB or more and one in ~4 KB of the
		// smaller: the per-target structures (a few hundred bytes each,
		// 10,000 of them) show at their true size, where the default
		// sampling (one per 512 KB) leaves most of them out.
		runtime.MemProfileRate = 4096
	}
	runtime.GC()
	debug.FreeOSMemory()
	if r.BaseRSS, _, err = memory(); err != nil {
		return err
	}
	cfg, err := config.Parse("bench.toml", []byte(agentTOML(ts, s.Interval(), h.farm.info.CAFile)))
	if err != nil {
		return fmt.Errorf("generated config: %w", err)
	}
	if !h.o.NoState {
		// As `vantage agent` runs by default: incidents, SLO accounting
		// and history written to a state directory every few seconds.
		// One per agent run, so that no run reads another's.
		h.stateRuns++
		cfg.Agent.StateDir = filepath.Join(h.o.Dir, fmt.Sprintf("state-%d", h.stateRuns))
	}
	var late lateness
	a, err := agent.New(agent.Options{Config: cfg, Version: h.o.Version, WatchEvery: -1,
		MaxInFlight: h.o.MaxInFlight, OnLateness: late.add, Memory: mem})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	r.GOGC, r.MemLimit, r.MemSource = gcPercent(), debug.SetMemoryLimit(-1), "none"
	if mem != nil {
		r.MemSource = string(mem.Current().Source)
	}
	actx, stopAgent := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- a.Run(actx) }()
	defer func() {
		stopAgent()
		if rerr := <-ran; rerr != nil && err == nil {
			err = fmt.Errorf("agent: %w", rerr)
		}
	}()

	if err := mono.Sleep(ctx, s.warmup()); err != nil {
		return err
	}
	run := r.Run
	url := "http://" + a.HTTPAddr() + "/metrics"
	// A transport of its own: no proxy from the environment, no shared pool.
	c := &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
	defer c.CloseIdleConnections()
	cpuPath := h.profilePath(h.o.CPUProfile, s, run, runtimeDefaults)
	var prof *os.File
	var profErr error
	var first scrape
	var firstAt time.Time
	// rate is what the agent counted between first and sc, each taken at
	// the middle of its scrape.
	rate := func(sc scrape, at time.Time) float64 {
		return float64(sc.successes+sc.failures-first.successes-first.failures) / at.Sub(firstAt).Seconds()
	}
	hk := hooks{
		// The agent's counters before the window, so that failures while
		// warming up are not the window's; then the scrape's garbage is
		// collected before the CPU reading.
		before: func() error {
			t0 := time.Now()
			var err error
			first, err = scrapeMetrics(ctx, c, url)
			firstAt = t0.Add(time.Since(t0) / 2)
			runtime.GC()
			return err
		},
		start: func() {
			late.on.Store(true)
			if cpuPath != "" {
				if prof, profErr = os.Create(cpuPath); profErr == nil {
					profErr = pprof.StartCPUProfile(prof)
				}
			}
		},
		stop: func() {
			late.on.Store(false)
			if prof != nil {
				pprof.StopCPUProfile()
				_ = prof.Close()
			}
		},
	}
	werr := h.window(ctx, s, selfCPU, r, hk)
	if werr != nil && r.Window > 0 {
		// Too slow to count: still say what the agent itself counted.
		t0 := time.Now()
		if sc, err := scrapeMetrics(ctx, c, url); err == nil {
			r.AgentRate = rate(sc, t0.Add(time.Since(t0)/2))
			r.Failures, r.Skipped = sc.failures-first.failures, sc.skipped-first.skipped
		}
		r.LateP50, r.LateP99, r.LateMax, r.LateSamples = late.quantiles()
	}
	if werr != nil {
		return werr
	}
	if profErr != nil {
		return fmt.Errorf("cpu profile %q: %w", cpuPath, profErr)
	}
	if r.RSS, _, err = memory(); err != nil {
		return err
	}
	r.LateP50, r.LateP99, r.LateMax, r.LateSamples = late.quantiles()

	// Scrapes, after the window so their CPU is not counted per probe. The
	// first one closes the window's failure count.
	var times []time.Duration
	var last scrape
	var scrapeProf *os.File
	if cpuPath != "" {
		// The scrapes get a profile of their own: FILE.scrape.EXT.
		ext := filepath.Ext(cpuPath)
		if scrapeProf, err = os.Create(strings.TrimSuffix(cpuPath, ext) + ".scrape" + ext); err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(scrapeProf); err != nil {
			_ = scrapeProf.Close()
			return err
		}
	}
	stopScrapeProf := func() {
		if scrapeProf != nil {
			pprof.StopCPUProfile()
			_ = scrapeProf.Close()
			scrapeProf = nil
		}
	}
	defer stopScrapeProf()
	c0, err := selfCPU()
	if err != nil {
		return err
	}
	// One scrape read and counted, then the timed ones: read to the end
	// and discarded, as Prometheus's scrape_duration_seconds times the
	// fetch, not the parse (parsing here would time this process's
	// parser, which shares the agent's cores).
	t0 := time.Now()
	last, err = scrapeMetrics(ctx, c, url)
	if err != nil {
		return err
	}
	r.AgentRate = rate(last, t0.Add(time.Since(t0)/2))
	r.SkippedBy = map[string]int64{}
	for k, v := range last.skippedBy {
		if d := v - first.skippedBy[k]; d > 0 {
			r.SkippedBy[k] = d
		}
	}
	r.Failures, r.Skipped = last.failures-first.failures, last.skipped-first.skipped
	r.WarmupFailures, r.WarmupSkipped = first.failures, first.skipped
	for range h.o.Scrapes {
		d, err := timeScrape(ctx, c, url)
		if err != nil {
			return err
		}
		times = append(times, d)
	}
	c1, err := selfCPU()
	stopScrapeProf()
	if err != nil {
		return err
	}
	slices.Sort(times)
	r.ScrapeMedian, r.ScrapeMax = times[len(times)/2], times[len(times)-1]
	r.ScrapeCPU = (c1 - c0) / time.Duration(len(times))
	r.ScrapeBytes = last.bytes
	r.Proto = last.proto
	if r.ScrapedRSS, r.PeakRSS, err = memory(); err != nil {
		return err
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.HeapInuse, r.StackInuse = ms.HeapInuse, ms.StackInuse
	if mem != nil {
		r.MemSteps, _ = mem.GiveWay()
		r.MemLimitEnd = mem.Current().Limit
	}
	if p := h.profilePath(h.o.MemProfile, s, run, runtimeDefaults); p != "" {
		if err := writeHeapProfile(p); err != nil {
			return err
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	r.LiveHeap = ms.HeapAlloc
	if last.successes == 0 {
		return fmt.Errorf("/metrics: no successful probe in vantage_probes_total")
	}
	if r.Failures > 0 {
		return fmt.Errorf("the agent counted %d failed probes in the window (vantage_probes_total{result=\"failure\"})", r.Failures)
	}
	return nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC() // the profile shows live memory as of the last GC
	if err := pprof.WriteHeapProfile(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// lateness records each scheduled probe's lateness while on.
type lateness struct {
	on atomic.Bool
	mu sync.Mutex
	d  []time.Duration
}

func (l *lateness) add(d time.Duration) {
	if !l.on.Load() {
		return
	}
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// quantiles returns p50, p99, max and the number of samples (nearest rank).
func (l *lateness) quantiles() (p50, p99, maxd time.Duration, n int) {
	l.mu.Lock()
	d := slices.Clone(l.d)
	l.mu.Unlock()
	if len(d) == 0 {
		return 0, 0, 0, 0
	}
	slices.Sort(d)
	rank := func(q float64) time.Duration {
		i := int(q*float64(len(d))+0.5) - 1
		return d[min(max(i, 0), len(d)-1)]
	}
	return rank(0.5), rank(0.99), d[len(d)-1], len(d)
}

// scrape is what the benchmark reads from one /metrics response.
type scrape struct {
	bytes               int64
	successes, failures int64 // vantage_probes_total by result, all targets
	skipped             int64 // vantage_probes_skipped_total, all reasons
	skippedBy           map[string]int64
	proto               string // probe_http_version values seen
}

// getMetrics GETs /metrics; the caller closes the body of a 200 response.
func getMetrics(ctx context.Context, c *http.Client, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		_ = resp.Body.Close()
		return nil, fmt.Errorf("scrape %s: status %d", url, resp.StatusCode)
	}
	return resp, nil
}

// timeScrape fetches /metrics and reads it to the end, discarding it.
func timeScrape(ctx context.Context, c *http.Client, url string) (time.Duration, error) {
	t0 := time.Now()
	resp, err := getMetrics(ctx, c, url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, fmt.Errorf("scrape: %w", err)
	}
	return time.Since(t0), nil
}

// scrapeMetrics reads /metrics line by line (never holding the whole
// response, whose buffer would count as the agent's memory) and sums the
// counters the benchmark checks.
func scrapeMetrics(ctx context.Context, c *http.Client, url string) (scrape, error) {
	var s scrape
	resp, err := getMetrics(ctx, c, url)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	cr := &countingReader{r: resp.Body}
	sc := bufio.NewScanner(cr)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		switch {
		case hasPrefix(line, "vantage_probes_total{"):
			v := value(line)
			if strings.Contains(string(line), `result="failure"`) {
				s.failures += v
			} else {
				s.successes += v
			}
		case hasPrefix(line, "vantage_probes_skipped_total{"):
			v := value(line)
			s.skipped += v
			if _, rest, ok := strings.Cut(string(line), `reason="`); ok {
				reason, _, _ := strings.Cut(rest, `"`)
				if s.skippedBy == nil {
					s.skippedBy = map[string]int64{}
				}
				s.skippedBy[reason] += v
			}
		case hasPrefix(line, "probe_http_version{"):
			i := strings.LastIndexByte(string(line), ' ')
			s.proto = mergeProto(s.proto, string(line[i+1:]))
		}
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("scrape: %w", err)
	}
	s.bytes = cr.n
	return s, nil
}

func hasPrefix(b []byte, p string) bool { return len(b) >= len(p) && string(b[:len(p)]) == p }

// value parses a sample line's value (the last field) as a whole number.
func value(line []byte) int64 {
	s := string(line)
	v, err := strconv.ParseFloat(s[strings.LastIndexByte(s, ' ')+1:], 64)
	if err != nil {
		return 0
	}
	return int64(v)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
