// Package bench is the agent benchmark behind `vantage bench` (issue 3):
// one agent probing a loopback target farm of N targets at a steady rate,
// measured against the floor (a bare Go client doing the same
// fresh-connection requests) and against Prometheus blackbox_exporter
// driven at the same rate.
//
// What is measured, and how:
//
//   - CPU per probe: the agent runs in this process; its CPU is the
//     getrusage(RUSAGE_SELF) delta over the measurement window divided by
//     the probes the farm served in it. The farm runs in a child process,
//     so its CPU is not counted. The bare client runs in this process too,
//     measured the same way. blackbox_exporter runs as a child process; its
//     CPU is read from /proc/PID/stat (utime+stime), and the requests that
//     drive it come from this process (their cost is not counted, as a
//     Prometheus server's would not be).
//   - Probes are counted by the farm (requests answered, connections
//     accepted), the same for every driver.
//   - Memory: the process's VmRSS after the window and after scraping
//     /metrics (the exporter keeps its scrape buffer), and its growth over
//     the RSS measured just before the config was parsed, per target.
//   - Schedule lateness: every scheduled probe's lateness within the window
//     (agent.Options.OnLateness), p50/p99/max.
//   - Scrape: wall time and size of GET /metrics after the window.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vantage-probe/vantage/internal/memlimit"
	"github.com/vantage-probe/vantage/internal/mono"
)

// Drivers: what generates the probes of a scenario.
const (
	DriverVantage = "vantage" // the agent, in this process, at its default settings (as `vantage agent` runs)
	// DriverVantageGC100 is the agent at the Go runtime's defaults: GOGC=100
	// and no memory limit, whatever the environment says; the agent's
	// default settings are measured beside it (issue 21).
	DriverVantageGC100 = "vantage-gogc100"
	DriverBare         = "bare"     // a bare Go client, in this process: the floor
	DriverBlackbox     = "blackbox" // blackbox_exporter in a child process, driven by /probe requests
)

// Scenario is one load: Targets targets of Kind, probed at Rate probes per
// second in total (each target every Targets/Rate seconds), by each driver
// in turn.
type Scenario struct {
	Name     string
	Kind     string // one of Kinds
	Targets  int
	Rate     float64 // probes per second, all targets together
	Warmup   time.Duration
	Duration time.Duration // the measurement window
	Drivers  []string
}

// Interval is how often each target is probed.
func (s Scenario) Interval() time.Duration { return interval(s.Targets, s.Rate) }

func (s Scenario) warmup() time.Duration {
	if s.Warmup > 0 {
		return s.Warmup
	}
	// One full interval: every target has run once on its phase (an agent
	// starts each target at its phase, not all at once).
	return max(5*time.Second, s.Interval())
}

// Validate reports what is wrong with s, naming the field and quoting the value.
func (s Scenario) Validate() error {
	var errs []error
	if !slices.Contains(Kinds, s.Kind) {
		errs = append(errs, fmt.Errorf("scenario %q: kind %q: want one of %s", s.Name, s.Kind, strings.Join(Kinds, ", ")))
	}
	if s.Targets < 1 {
		errs = append(errs, fmt.Errorf("scenario %q: targets %d: want at least 1", s.Name, s.Targets))
	}
	if s.Rate <= 0 {
		errs = append(errs, fmt.Errorf("scenario %q: rate %v: want more than 0 probes/s", s.Name, s.Rate))
	}
	if s.Duration < time.Second {
		errs = append(errs, fmt.Errorf("scenario %q: duration %v: want at least 1s", s.Name, s.Duration))
	}
	if len(s.Drivers) == 0 {
		errs = append(errs, fmt.Errorf("scenario %q: no drivers", s.Name))
	}
	for _, d := range s.Drivers {
		if !slices.Contains(AllDrivers, d) {
			errs = append(errs, fmt.Errorf("scenario %q: driver %q: want %s", s.Name, d, strings.Join(AllDrivers, ", ")))
		}
	}
	if s.Targets > 0 && s.Rate > 0 && float64(s.Targets)/s.Rate < 1 {
		errs = append(errs, fmt.Errorf("scenario %q: %d targets at %v probes/s is an interval below 1s, the config's minimum",
			s.Name, s.Targets, s.Rate))
	}
	return errors.Join(errs...)
}

// AllDrivers is every driver, in the order a scenario runs them.
var AllDrivers = []string{DriverVantage, DriverVantageGC100, DriverBare, DriverBlackbox}

// CompareDrivers are the drivers of the scenarios that compare the agent
// with the floor and blackbox_exporter: the agent at GOGC=100 is left out
// (it is measured where the collector's setting matters: HTTP, HTTPS, TCP
// and the memory scenario).
var CompareDrivers = []string{DriverVantage, DriverBare, DriverBlackbox}

// DefaultSuite is what `vantage bench` runs without flags (about fourteen
// minutes on two cores):
//
//   - rss-https: 10,000 HTTPS targets configured and exported (every one
//     probed once before the window), for RSS and the scrape at that size,
//     at the agent's default settings and then at GOGC=100 without a
//     memory limit; 250 probes/s, because the farm's side of each TLS
//     handshake runs on the same machine;
//   - scale-mixed: 10,000 targets (a third each HTTP, HTTPS, TCP) at 1,000
//     probes/s, for CPU, schedule lateness and the scrape under load;
//   - http, https, tcp, icmp, grpc, grpcs: 1,000 targets of one protocol,
//     the agent (HTTP, HTTPS, TCP: at its default settings and at
//     GOGC=100) against the bare client and blackbox_exporter: 500
//     probes/s, HTTPS 200, gRPC 250 and gRPC over TLS 100 (a TLS probe
//     costs both ends a millisecond or more of CPU, and all three drivers
//     must keep up on two cores with the farm beside them).
//
// The memory scenario runs first, in a fresh process, so that earlier runs
// do not inflate its figures.
func DefaultSuite() []Scenario {
	const window = 30 * time.Second
	return []Scenario{
		{Name: "rss-https", Kind: KindHTTPS, Targets: 10000, Rate: 250, Duration: window, Drivers: []string{DriverVantage, DriverVantageGC100}},
		{Name: "scale-mixed", Kind: KindMixed, Targets: 10000, Rate: 1000, Duration: window, Drivers: []string{DriverVantage}},
		{Name: "http", Kind: KindHTTP, Targets: 1000, Rate: 500, Duration: window, Drivers: AllDrivers},
		{Name: "https", Kind: KindHTTPS, Targets: 1000, Rate: 200, Duration: window, Drivers: AllDrivers},
		{Name: "tcp", Kind: KindTCP, Targets: 1000, Rate: 500, Duration: window, Drivers: AllDrivers},
		{Name: "icmp", Kind: KindICMP, Targets: 1000, Rate: 500, Duration: window, Drivers: CompareDrivers},
		{Name: "grpc", Kind: KindGRPC, Targets: 1000, Rate: 250, Duration: window, Drivers: CompareDrivers},
		{Name: "grpcs", Kind: KindGRPCS, Targets: 1000, Rate: 100, Duration: window, Drivers: CompareDrivers},
	}
}

// Options configure a benchmark run.
type Options struct {
	// Scenarios to run; empty means DefaultSuite.
	Scenarios []Scenario
	// Count runs every scenario this many times (ranges in the report);
	// 0 means 1.
	Count int
	// FarmCommand starts the target farm in a child process (the harness
	// appends -dir and -listeners): `vantage bench farm` for the command,
	// the test binary in tests. FarmEnv is added to its environment.
	FarmCommand []string
	FarmEnv     []string
	// FarmListeners is the number of farm servers per protocol; 0 means
	// DefaultFarmListeners.
	FarmListeners int
	// Blackbox is the blackbox_exporter binary; empty skips that driver.
	Blackbox string
	// MaxInFlight bounds concurrent probes of every driver (the agent's
	// default, 1000, when 0).
	MaxInFlight int
	// Scrapes is how many times /metrics is fetched after each agent
	// window; 0 means 5.
	Scrapes int
	// CPUProfile and MemProfile, when set, receive a CPU profile of each
	// agent window and a heap profile after it. With more than one agent
	// run, the scenario name (and run number) is inserted before the
	// extension.
	CPUProfile, MemProfile string
	// MaxLoad, when positive, makes each driver wait (up to MaxLoadWait,
	// default 5 minutes) until the 1-minute load average is at most this,
	// so that a shared machine's neighbours distort the figures less.
	MaxLoad     float64
	MaxLoadWait time.Duration
	// MinAchieved is the fraction of the wanted rate a window must serve to
	// count; below it the driver's result is an error (the machine could
	// not keep up). 0 means 0.9.
	MinAchieved float64
	// NoState runs the agent without a state directory (a library agent's
	// default); by default it keeps its state in one under Dir, as
	// `vantage agent` does, so that the cost of persisting is in the
	// figures.
	NoState bool
	// Dir is a scratch directory; empty means a temporary one, removed at
	// the end.
	Dir string
	// Log receives one progress line per measurement; nil discards them.
	Log io.Writer
	// Version is stamped into the agent.
	Version string
	// Getenv is the environment the agent's memory settings are chosen
	// from (GOMEMLIMIT); nil means os.Getenv.
	Getenv func(string) string
}

// Result is one driver's measurement in one run of a scenario.
type Result struct {
	Scenario string
	Run      int // 1-based, when Count > 1
	Driver   string
	Kind     string
	Targets  int
	Rate     float64 // wanted probes/s
	Interval time.Duration

	Window   time.Duration
	Probes   int64         // served by the farm within the window
	CPU      time.Duration // the driver's process CPU within the window
	FarmCPU  time.Duration // the farm's CPU within the window (not counted; shows a saturated machine)
	Failures int64         // failed probes the driver saw in the window
	Skipped  int64         // probes not started in the window: MaxInFlight reached (the agent: or overlap)
	// AgentRate is the probe rate the agent itself counted
	// (vantage_probes_total) between the scrapes around the window, to set
	// against Achieved, the farm's count.
	AgentRate float64
	// SkippedBy splits the agent's Skipped by reason (overlap, max_in_flight).
	SkippedBy map[string]int64
	// WarmupFailures and WarmupSkipped happened before the window, while
	// the farm and the agent warm up (the bare client and blackbox_exporter
	// are driven at full rate from the start).
	WarmupFailures, WarmupSkipped int64
	Proto                         string     // HTTP version negotiated, where the driver says
	LoadAvg                       [2]float64 // 1-minute load average at the window's start and end
	Err                           string     // the driver could not be measured

	// The collector's settings the driver ran with: GOGC (-1 off), the
	// soft memory limit (math.MaxInt64: none) and where it came from
	// (memlimit.Source, or "none").
	GOGC      int
	MemLimit  int64
	MemSource string
	// MemSteps is how far a derived limit gave way during the run
	// (memlimit.HighGCShare), and MemLimitEnd the limit at its end.
	MemSteps    int
	MemLimitEnd int64

	// The agent only.
	BaseRSS, RSS, ScrapedRSS, PeakRSS uint64 // bytes: before config, after the window, after scrapes, peak
	HeapInuse, StackInuse             uint64 // Go runtime, after scrapes
	LiveHeap                          uint64 // Go heap live after a full GC, at the end
	LateP50, LateP99, LateMax         time.Duration
	LateSamples                       int
	ScrapeMedian, ScrapeMax           time.Duration
	ScrapeBytes                       int64
	ScrapeCPU                         time.Duration // process CPU per scrape (server and reading client)
}

// PerProbe is CPU time per probe served.
func (r Result) PerProbe() time.Duration {
	if r.Probes <= 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Probes)
}

// Achieved is the probe rate the farm saw.
func (r Result) Achieved() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.Probes) / r.Window.Seconds()
}

// Cores is the driver's CPU use in cores over the window.
func (r Result) Cores() float64 {
	if r.Window <= 0 {
		return 0
	}
	return r.CPU.Seconds() / r.Window.Seconds()
}

// RSSPerTarget is the growth of RSS (after scrapes) over the RSS before
// the config was parsed, per target.
func (r Result) RSSPerTarget() float64 {
	if r.Targets == 0 || r.ScrapedRSS < r.BaseRSS {
		return 0
	}
	return float64(r.ScrapedRSS-r.BaseRSS) / float64(r.Targets)
}

// Report is a whole benchmark run.
type Report struct {
	Results   []Result
	GoVersion string
	GOGC      int   // the process's GOGC, which the bare client runs with (the agent's are in each Result)
	MemLimit  int64 // the process's memory limit, likewise (math.MaxInt64: none)
	CPUs      int
	Blackbox  string // version line, or why it was skipped
	Started   time.Time
	Elapsed   time.Duration
}

// Run starts the farm, runs every scenario Count times with each of its
// drivers in turn, and returns the measurements. A driver that fails is
// recorded (Result.Err) and the run goes on; Run itself fails only when the
// farm cannot start or ctx ends.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := supported(); err != nil {
		return nil, err
	}
	if len(o.Scenarios) == 0 {
		o.Scenarios = DefaultSuite()
	}
	var errs []error
	for _, s := range o.Scenarios {
		if err := s.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	o.Count = max(o.Count, 1)
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 1000
	}
	if o.MinAchieved <= 0 {
		o.MinAchieved = 0.9
	}
	if o.Scrapes <= 0 {
		o.Scrapes = 5
	}
	if o.FarmListeners <= 0 {
		o.FarmListeners = DefaultFarmListeners
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "vantage-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		o.Dir = d
	}
	rep := &Report{GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Started: time.Now(), GOGC: gcPercent(),
		MemLimit: debug.SetMemoryLimit(-1)}
	defer func() { rep.Elapsed = time.Since(rep.Started) }()
	h := &harness{o: o}
	if o.Blackbox != "" {
		rep.Blackbox = blackboxVersion(ctx, o.Blackbox)
	} else {
		rep.Blackbox = "not run"
	}

	farm, err := startFarm(ctx, o.FarmCommand, o.FarmEnv, FarmOptions{Listeners: o.FarmListeners, Dir: o.Dir})
	if err != nil {
		return nil, fmt.Errorf("target farm: %w", err)
	}
	defer farm.Close()
	h.farm = farm
	fmt.Fprintf(o.Log, "farm: %d servers per protocol (pid %d); load average %.2f\n",
		o.FarmListeners, farm.cmd.Process.Pid, loadAvg())

	h.vantageRuns = 0
	for _, s := range o.Scenarios {
		for _, d := range s.Drivers {
			if d == DriverVantage || d == DriverVantageGC100 {
				h.vantageRuns += o.Count
			}
		}
	}
	for run := 1; run <= o.Count; run++ {
		for _, s := range o.Scenarios {
			ts, err := makeTargets(s.Kind, s.Targets, farm.info)
			if err != nil {
				return rep, err
			}
			for _, d := range s.Drivers {
				if d == DriverBlackbox && o.Blackbox == "" {
					continue
				}
				r := Result{Scenario: s.Name, Driver: d, Kind: s.Kind, Targets: s.Targets, Rate: s.Rate,
					Interval: s.Interval()}
				if o.Count > 1 {
					r.Run = run
				}
				h.waitForLoad(ctx)
				var err error
				switch d {
				case DriverVantage, DriverVantageGC100:
					err = h.runVantage(ctx, s, ts, &r, d == DriverVantageGC100)
				case DriverBare:
					err = h.runBare(ctx, s, ts, &r)
				case DriverBlackbox:
					err = h.runBlackbox(ctx, s, ts, &r)
				}
				if ctx.Err() != nil {
					return rep, ctx.Err()
				}
				if err != nil {
					r.Err = err.Error()
				}
				rep.Results = append(rep.Results, r)
				fmt.Fprintln(o.Log, progressLine(r))
			}
		}
	}
	return rep, nil
}

// harness is one Run's shared state.
type harness struct {
	o           Options
	farm        *farmProc
	vantageRuns int
	stateRuns   int    // state directories made (one per agent run)
	bbConfig    string // blackbox.yml, written on first use
}

// profilePath names the profile of one agent run: the path as given when
// there is a single agent run, else with ".SCENARIO[.gogc100][.RUN]"
// before the extension (.gogc100 for the agent at GOGC=100).
func (h *harness) profilePath(path string, s Scenario, run int, runtimeDefaults bool) string {
	if path == "" || h.vantageRuns <= 1 {
		return path
	}
	ext := filepath.Ext(path)
	tag := "." + s.Name
	if runtimeDefaults {
		tag += ".gogc100"
	}
	if run > 0 {
		tag += fmt.Sprintf(".%d", run)
	}
	return strings.TrimSuffix(path, ext) + tag + ext
}

// hooks let a driver act around its window.
type hooks struct {
	// before runs first, outside the window (the agent's driver reads its
	// counters and collects the garbage that made).
	before func() error
	// start runs just before the CPU reading that opens the window, stop
	// just after the one that closes it.
	start, stop func()
}

// window measures one driver over s.Duration: cpu before and after, the
// farm's counters around it (outside the CPU measurement, so fetching
// them is not counted), and the load average.
func (h *harness) window(ctx context.Context, s Scenario, cpu func() (time.Duration, error), r *Result, hk hooks) error {
	if hk.before != nil {
		if err := hk.before(); err != nil {
			return err
		}
	}
	s0, err := h.farm.stats(ctx)
	if err != nil {
		return err
	}
	r.LoadAvg[0] = loadAvg()
	f0, err := pidCPU(h.farm.cmd.Process.Pid)
	if err != nil {
		return err
	}
	if hk.start != nil {
		hk.start()
	}
	stopped := false
	stop := func() {
		if hk.stop != nil && !stopped {
			stopped = true
			hk.stop()
		}
	}
	defer stop()
	c0, err := cpu()
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := mono.Sleep(ctx, s.Duration); err != nil {
		return err
	}
	c1, err := cpu()
	r.Window = time.Since(t0)
	stop()
	if err != nil {
		return err
	}
	r.CPU = c1 - c0
	f1, err := pidCPU(h.farm.cmd.Process.Pid)
	if err != nil {
		return err
	}
	r.FarmCPU = f1 - f0
	s1, err := h.farm.stats(ctx)
	if err != nil {
		return err
	}
	r.LoadAvg[1] = loadAvg()
	r.Probes = s1.sub(s0).Total()
	if r.Probes == 0 {
		return errors.New("the farm served no probe in the window")
	}
	// A run that fell behind measured a saturated machine (or farm), not
	// the driver: CPU per probe and lateness would mislead.
	if got := r.Achieved(); got < h.o.MinAchieved*s.Rate {
		return fmt.Errorf("only %.0f of %.0f probes/s served: the machine or the farm could not keep up "+
			"(load average %.2f, farm %.2f cores)", got, s.Rate, r.LoadAvg[1], r.FarmCPU.Seconds()/r.Window.Seconds())
	}
	return nil
}

// waitForLoad waits until the 1-minute load average is at most MaxLoad,
// for MaxLoadWait at most.
func (h *harness) waitForLoad(ctx context.Context) {
	if h.o.MaxLoad <= 0 {
		return
	}
	wait := h.o.MaxLoadWait
	if wait <= 0 {
		wait = 5 * time.Minute
	}
	deadline := time.Now().Add(wait)
	said := false
	for {
		l := loadAvg()
		if l <= h.o.MaxLoad || l < 0 {
			return
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(h.o.Log, "load average %.2f still above %.2f after %v: measuring anyway\n", l, h.o.MaxLoad, wait)
			return
		}
		if !said {
			fmt.Fprintf(h.o.Log, "waiting for the load average (%.2f) to fall to %.2f\n", l, h.o.MaxLoad)
			said = true
		}
		if mono.Sleep(ctx, 5*time.Second) != nil {
			return
		}
	}
}

func progressLine(r Result) string {
	run := ""
	if r.Run > 0 {
		run = fmt.Sprintf(" #%d", r.Run)
	}
	if r.Err != "" && r.Probes == 0 {
		return fmt.Sprintf("%s%s %s: error: %s", r.Scenario, run, r.Driver, r.Err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s%s %-8s %5d %-5s targets  %6.0f probes/s  %7.1f µs/probe  %.2f cores (farm %.2f)  failed %d  skipped %d",
		r.Scenario, run, r.Driver, r.Targets, r.Kind, r.Achieved(), us(r.PerProbe()), r.Cores(),
		r.FarmCPU.Seconds()/max(r.Window.Seconds(), 1e-9), r.Failures, r.Skipped)
	if r.MemSource != "" {
		fmt.Fprintf(&b, " (%s)", r.settings())
	}
	if len(r.SkippedBy) > 0 {
		keys := slices.Sorted(maps.Keys(r.SkippedBy))
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %d", k, r.SkippedBy[k]))
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
	}
	if r.AgentRate > 0 {
		fmt.Fprintf(&b, " (agent counted %.0f/s)", r.AgentRate)
	}
	if r.WarmupFailures+r.WarmupSkipped > 0 {
		fmt.Fprintf(&b, " (before the window: failed %d, skipped %d)", r.WarmupFailures, r.WarmupSkipped)
	}
	fmt.Fprintf(&b, "  load %.2f→%.2f", r.LoadAvg[0], r.LoadAvg[1])
	if r.LateSamples > 0 {
		fmt.Fprintf(&b, "  lateness p50 %.2f ms p99 %.2f ms max %.0f ms", ms(r.LateP50), ms(r.LateP99), ms(r.LateMax))
	}
	if r.ScrapeBytes > 0 {
		fmt.Fprintf(&b, "  RSS %.1f MB (base %.1f, after the window %.1f, peak %.1f; Go heap in use %.1f, stacks %.1f), live heap %.1f MB  scrape %.1f ms %.1f MB",
			mb(r.ScrapedRSS), mb(r.BaseRSS), mb(r.RSS), mb(r.PeakRSS), mb(r.HeapInuse), mb(r.StackInuse), mb(r.LiveHeap), ms(r.ScrapeMedian), mb(uint64(r.ScrapeBytes)))
	}
	if r.Err != "" {
		b.WriteString("  error: " + r.Err)
	}
	return b.String()
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func mb(b uint64) float64        { return float64(b) / (1 << 20) }

// gcPercent reads the collector's GOGC setting (SetGCPercent has no getter).
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// settings says the collector's settings a driver ran with: "GOGC 100,
// memory limit 49.6MiB (targets)".
func (r Result) settings() string {
	gc := "off"
	if r.GOGC >= 0 {
		gc = strconv.Itoa(r.GOGC)
	}
	if r.MemLimit <= 0 || r.MemLimit == math.MaxInt64 {
		return "GOGC " + gc + ", no memory limit"
	}
	s := fmt.Sprintf("GOGC %s, memory limit %s (%s)", gc, memlimit.FormatSize(r.MemLimit), r.MemSource)
	if r.MemSteps > 0 {
		s += fmt.Sprintf(", gave way %d steps to %s", r.MemSteps, memlimit.FormatSize(r.MemLimitEnd))
	}
	return s
}
