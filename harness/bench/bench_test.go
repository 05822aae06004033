package bench

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/internal/memlimit"
	"github.com/vantage-probe/vantage/probe/probetest"
)

// farmEnv makes the test binary, re-executed by the harness, serve the
// farm instead of running tests (the command's `vantage bench farm`).
const farmEnv = "VANTAGE_BENCH_TEST_FARM"

func TestMain(m *testing.M) {
	if os.Getenv(farmEnv) == "1" {
		fs := flag.NewFlagSet("farm", flag.ExitOnError)
		dir := fs.String("dir", "", "")
		listeners := fs.Int("listeners", 0, "")
		_ = fs.Parse(os.Args[1:])
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := ServeFarm(ctx, FarmOptions{Dir: *dir, Listeners: *listeners}, os.Stdin, os.Stdout)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const debianBlackbox = "/usr/bin/prometheus-blackbox-exporter"

// TestSmoke runs the whole harness for a few seconds: 50 mixed targets, a
// farm in a child process, the agent, the bare client and (when installed)
// blackbox_exporter. It checks the structure of what comes out, never an
// absolute time.
func TestSmoke(t *testing.T) {
	if err := supported(); err != nil {
		t.Skip(err)
	}
	drivers := []string{DriverVantage, DriverVantageGC100, DriverBare}
	bb := ""
	if _, err := os.Stat(debianBlackbox); err == nil {
		bb = debianBlackbox
		drivers = append(drivers, DriverBlackbox)
	} else {
		t.Logf("no %s: blackbox_exporter driver not tested", debianBlackbox)
	}
	gc0, limit0 := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	debug.SetGCPercent(gc0)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const rate = 25.0
	var progress bytes.Buffer
	rep, err := Run(ctx, Options{
		Scenarios: []Scenario{{Name: "smoke", Kind: KindMixed, Targets: 50, Rate: rate,
			Warmup: 500 * time.Millisecond, Duration: 1500 * time.Millisecond, Drivers: drivers}},
		FarmCommand:   []string{os.Args[0]},
		FarmEnv:       []string{farmEnv + "=1"},
		FarmListeners: 2,
		Blackbox:      bb,
		Scrapes:       2,
		MinAchieved:   0.3, // the test asserts its own, looser bound
		CPUProfile:    filepath.Join(dir, "cpu.pprof"),
		MemProfile:    filepath.Join(dir, "mem.pprof"),
		Log:           &progress,
		Getenv:        func(string) string { return "" }, // no GOMEMLIMIT
	})
	if err != nil {
		t.Fatalf("Run: %v\nprogress:\n%s", err, progress.String())
	}
	// The agent's settings are its run's only: the bare client and what
	// runs after have the process's own.
	if gc, limit := debug.SetGCPercent(gc0), debug.SetMemoryLimit(-1); gc != gc0 || limit != limit0 {
		t.Errorf("after Run: GOGC %d, memory limit %d; want the process's %d, %d back", gc, limit, gc0, limit0)
	}
	if len(rep.Results) != len(drivers) {
		t.Fatalf("%d results, want one per driver %v", len(rep.Results), drivers)
	}
	for i, r := range rep.Results {
		if r.Driver != drivers[i] {
			t.Errorf("result %d is driver %q, want %q (drivers run in order)", i, r.Driver, drivers[i])
		}
		if r.Err != "" {
			t.Errorf("%s: %s", r.Driver, r.Err)
			continue
		}
		// 1.5 s at 25/s is ~37 probes; a loaded machine may start a few late.
		if got := r.Achieved(); got < rate/3 || got > rate*2 {
			t.Errorf("%s: %.1f probes/s served in the window, want about %v", r.Driver, got, rate)
		}
		if r.CPU <= 0 || r.PerProbe() <= 0 {
			t.Errorf("%s: CPU %v, per probe %v: want both positive", r.Driver, r.CPU, r.PerProbe())
		}
		if r.Failures != 0 {
			t.Errorf("%s: %d failed probes against a healthy farm", r.Driver, r.Failures)
		}
		if r.Interval != 2*time.Second {
			t.Errorf("%s: interval %v, want 2s (50 targets at 25/s)", r.Driver, r.Interval)
		}
		switch r.Driver {
		case DriverVantage:
			// The default settings: the process's GOGC, and a memory limit
			// from the container or the number of targets (50 here).
			okLimit := (r.MemSource == string(memlimit.SourceTargets) && r.MemLimit == memlimit.ForTargets(50)) ||
				(r.MemSource == string(memlimit.SourceCgroup) && r.MemLimit > 0)
			if r.GOGC != gc0 || !okLimit {
				t.Errorf("vantage ran with GOGC %d, memory limit %d (%s); want GOGC %d and the limit for 50 targets or the container's",
					r.GOGC, r.MemLimit, r.MemSource, gc0)
			}
		case DriverVantageGC100:
			if r.GOGC != 100 || r.MemLimit != math.MaxInt64 || r.MemSource != "none" {
				t.Errorf("vantage-gogc100 ran with GOGC %d, memory limit %d (%s); want 100 and none", r.GOGC, r.MemLimit, r.MemSource)
			}
		default:
			continue
		}
		if r.AgentRate < rate/3 || r.AgentRate > rate*2 {
			t.Errorf("vantage: the agent counted %.1f probes/s, want about %v", r.AgentRate, rate)
		}
		if r.LateSamples == 0 {
			t.Errorf("vantage: no lateness samples: the agent's OnLateness hook was not called in the window")
		}
		if !(r.LateP50 <= r.LateP99 && r.LateP99 <= r.LateMax) {
			t.Errorf("vantage: lateness p50 %v, p99 %v, max %v: not ordered", r.LateP50, r.LateP99, r.LateMax)
		}
		if r.ScrapeBytes < 1000 || r.ScrapeMedian <= 0 || r.ScrapeMax < r.ScrapeMedian {
			t.Errorf("vantage: scrape %d bytes, median %v, max %v", r.ScrapeBytes, r.ScrapeMedian, r.ScrapeMax)
		}
		if r.BaseRSS == 0 || r.RSS == 0 || r.ScrapedRSS == 0 || r.PeakRSS < r.ScrapedRSS {
			t.Errorf("vantage: RSS base %d, window %d, scraped %d, peak %d", r.BaseRSS, r.RSS, r.ScrapedRSS, r.PeakRSS)
		}
		// Mixed targets: plain HTTP speaks 1.1, the HTTPS farm offers h2.
		if !strings.Contains(r.Proto, "1.1") || !strings.Contains(r.Proto, "2") {
			t.Errorf("vantage: HTTP versions %q, want 1.1 and 2", r.Proto)
		}
	}
	// Two agent runs: a profile each, named by scenario and settings.
	for _, p := range []string{"cpu.smoke.pprof", "mem.smoke.pprof", "cpu.smoke.gogc100.pprof", "mem.smoke.gogc100.pprof"} {
		if fi, err := os.Stat(filepath.Join(dir, p)); err != nil || fi.Size() == 0 {
			t.Errorf("profile %s: %v (size %d)", p, err, sizeOf(fi))
		}
	}
	var md, text bytes.Buffer
	rep.Write(&md, true)
	rep.Write(&text, false)
	if !strings.Contains(md.String(), "| scenario | probe | targets | probes/s | vantage µs/probe | vantage GOGC=100 µs/probe |") ||
		!strings.Contains(md.String(), "| smoke | mixed | 50 | 25 |") {
		t.Errorf("markdown report lacks the CPU table:\n%s", md.String())
	}
	if !strings.Contains(text.String(), "vantage µs/probe") || strings.Contains(text.String(), "| smoke") {
		t.Errorf("text report:\n%s", text.String())
	}
	if !strings.HasPrefix(text.String(), "Settings: vantage (default settings) smoke: GOGC ") ||
		!strings.Contains(text.String(), "; vantage GOGC=100: GOGC 100, no memory limit; bare client: GOGC ") {
		t.Errorf("the report's first line does not say the settings:\n%s", text.String())
	}
	if !strings.Contains(progress.String(), "farm: 2 servers per protocol") {
		t.Errorf("progress log:\n%s", progress.String())
	}
}

// TestSmokeGRPC runs the harness for gRPC, plaintext and over TLS: each
// driver checks the farm's health servers, the farm counts every check,
// and nothing fails.
func TestSmokeGRPC(t *testing.T) { smokeKinds(t, KindGRPC, KindGRPCS) }

// TestSmokeICMP runs the harness for ICMP in a network namespace of its
// own: the farm counts the echo requests its namespace receives, which on
// the host would include everyone else's pings.
func TestSmokeICMP(t *testing.T) {
	if !probetest.InNetNS(t) {
		return
	}
	smokeKinds(t, KindICMP)
}

func smokeKinds(t *testing.T, kinds ...string) {
	t.Helper()
	if err := supported(); err != nil {
		t.Skip(err)
	}
	drivers := []string{DriverVantage, DriverBare}
	bb := ""
	if _, err := os.Stat(debianBlackbox); err == nil {
		bb = debianBlackbox
		drivers = append(drivers, DriverBlackbox)
	}
	var scenarios []Scenario
	for _, k := range kinds {
		// A 2 s interval and 1.6 s timeout, as TestSmoke's: a TLS
		// handshake under the race detector on a loaded machine takes
		// hundreds of milliseconds.
		scenarios = append(scenarios, Scenario{Name: k, Kind: k, Targets: 20, Rate: 10,
			Warmup: 500 * time.Millisecond, Duration: 2 * time.Second, Drivers: drivers})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	rep, err := Run(ctx, Options{Scenarios: scenarios, FarmCommand: []string{os.Args[0]}, FarmEnv: []string{farmEnv + "=1"},
		FarmListeners: 1, Blackbox: bb, Scrapes: 1, MinAchieved: 0.3, Log: &progress})
	if err != nil {
		t.Fatalf("Run: %v\nprogress:\n%s", err, progress.String())
	}
	if len(rep.Results) != len(kinds)*len(drivers) {
		t.Fatalf("%d results, want %d:\n%s", len(rep.Results), len(kinds)*len(drivers), progress.String())
	}
	for _, r := range rep.Results {
		if r.Err != "" {
			t.Errorf("%s %s: %s", r.Scenario, r.Driver, r.Err)
			continue
		}
		if got := r.Achieved(); got < 10.0/3 || got > 20 {
			t.Errorf("%s %s: %.1f probes/s counted by the farm, want about 10", r.Scenario, r.Driver, got)
		}
		if r.Failures != 0 || r.PerProbe() <= 0 {
			t.Errorf("%s %s: %d failures, %v per probe", r.Scenario, r.Driver, r.Failures, r.PerProbe())
		}
	}
	var md bytes.Buffer
	rep.Write(&md, true)
	for _, k := range kinds {
		if bb != "" && !strings.Contains(md.String(), k+": agent CPU per "+k+" probe ≤ 1.00× blackbox_exporter's") {
			t.Errorf("report lacks the %s goal line:\n%s", k, md.String())
		}
	}
}

func sizeOf(fi os.FileInfo) int64 {
	if fi == nil {
		return 0
	}
	return fi.Size()
}

// TestAgentTOMLParses keeps the generated config in step with the schema:
// every kind must load, with the interval, timeout and targets wanted.
func TestAgentTOMLParses(t *testing.T) {
	fi := FarmInfo{HTTP: []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}, HTTPS: []string{"https://127.0.0.1:3"},
		TCP: []string{"127.0.0.1:4"}, GRPC: []string{"127.0.0.1:5"}, GRPCS: []string{"127.0.0.1:6", "127.0.0.1:7"}, CAFile: writeCA(t)}
	for _, kind := range Kinds {
		t.Run(kind, func(t *testing.T) {
			ts, err := makeTargets(kind, 7, fi)
			if err != nil {
				t.Fatal(err)
			}
			iv := interval(len(ts), 3.5)
			cfg, err := config.Parse("bench.toml", []byte(agentTOML(ts, iv, fi.CAFile)))
			if err != nil {
				t.Fatalf("generated config does not load: %v", err)
			}
			if len(cfg.Targets) != 7 {
				t.Fatalf("%d targets, want 7", len(cfg.Targets))
			}
			for i, ct := range cfg.Targets {
				if ct.Interval != 2*time.Second || ct.Timeout != 1600*time.Millisecond {
					t.Errorf("%s: interval %v timeout %v, want 2s and 1.6s", ct.Name, ct.Interval, ct.Timeout)
				}
				if ct.Endpoint() != ts[i].endpoint() {
					t.Errorf("%s: endpoint %q, want %q", ct.Name, ct.Endpoint(), ts[i].endpoint())
				}
				if ts[i].kind == KindHTTPS && ct.HTTP().TLS.CAFile != fi.CAFile {
					t.Errorf("%s: ca_file %q, want %q", ct.Name, ct.HTTP().TLS.CAFile, fi.CAFile)
				}
				if ts[i].kind == KindGRPCS && (ct.GRPC == nil || !ct.GRPC.UseTLS || ct.GRPC.TLS.CAFile != fi.CAFile) {
					t.Errorf("%s: grpc options %+v, want TLS with ca_file %q", ct.Name, ct.GRPC, fi.CAFile)
				}
				if want := map[string]string{KindICMP: config.TypeICMP, KindGRPC: config.TypeGRPC, KindGRPCS: config.TypeGRPC}[ts[i].kind]; want != "" && ct.Type != want {
					t.Errorf("%s: type %q, want %q", ct.Name, ct.Type, want)
				}
			}
		})
	}
	if _, err := makeTargets("udp", 1, fi); err == nil || !strings.Contains(err.Error(), `"udp"`) {
		t.Errorf("kind udp: error %v, want one quoting the kind", err)
	}
}

func writeCA(t *testing.T) string {
	t.Helper()
	ca, err := probetest.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ca.WriteCAFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestIntervalAndTimeout(t *testing.T) {
	for _, c := range []struct {
		n       int
		rate    float64
		iv, out time.Duration
	}{
		{1000, 500, 2 * time.Second, 1600 * time.Millisecond},
		{10000, 1000, 10 * time.Second, 5 * time.Second},
		{50, 25, 2 * time.Second, 1600 * time.Millisecond},
		{10, 100, time.Second, 800 * time.Millisecond}, // the config's 1s minimum
	} {
		iv := interval(c.n, c.rate)
		if iv != c.iv || timeout(iv) != c.out {
			t.Errorf("%d targets at %v/s: interval %v timeout %v, want %v and %v", c.n, c.rate, iv, timeout(iv), c.iv, c.out)
		}
	}
}

func TestScenarioValidate(t *testing.T) {
	ok := Scenario{Name: "x", Kind: KindTCP, Targets: 10, Rate: 5, Duration: time.Second, Drivers: []string{DriverBare}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid scenario: %v", err)
	}
	bad := Scenario{Name: "y", Kind: "udp", Targets: 10, Rate: 50, Duration: time.Millisecond, Drivers: []string{"curl"}}
	err := bad.Validate()
	for _, want := range []string{`kind "udp"`, `duration 1ms`, `driver "curl"`, `interval below 1s`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v: want it to mention %s", err, want)
		}
	}
	for _, s := range DefaultSuite() {
		if err := s.Validate(); err != nil {
			t.Errorf("default suite: %v", err)
		}
	}
}

func TestLatenessQuantiles(t *testing.T) {
	var l lateness
	l.add(time.Hour) // off: not recorded
	l.on.Store(true)
	for i := 100; i >= 1; i-- {
		l.add(time.Duration(i) * time.Millisecond)
	}
	p50, p99, mx, n := l.quantiles()
	if n != 100 || p50 != 50*time.Millisecond || p99 != 99*time.Millisecond || mx != 100*time.Millisecond {
		t.Errorf("p50 %v p99 %v max %v n %d; want 50ms 99ms 100ms 100", p50, p99, mx, n)
	}
}

func TestMergeProto(t *testing.T) {
	got := ""
	for _, v := range []string{"2", "2", "1.1", "2", "1.1"} {
		got = mergeProto(got, v)
	}
	if got != "2,1.1" {
		t.Errorf("merged %q, want 2,1.1", got)
	}
}

func TestPidCPU(t *testing.T) {
	if err := supported(); err != nil {
		t.Skip(err)
	}
	// Burn a little CPU so that even 10 ms ticks see it.
	deadline := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	c, err := pidCPU(os.Getpid())
	if err != nil || c <= 0 {
		t.Fatalf("pidCPU(self) = %v, %v: want a positive time", c, err)
	}
	self, err := selfCPU()
	if err != nil || self <= 0 {
		t.Fatalf("selfCPU = %v, %v", self, err)
	}
	rss, hwm, err := memory()
	if err != nil || rss == 0 || hwm < rss {
		t.Fatalf("memory = %d, %d, %v: want 0 < rss <= hwm", rss, hwm, err)
	}
}

func TestGoals(t *testing.T) {
	mk := func(s, d, kind string, n int, rate float64, cpu time.Duration) Result {
		return Result{Scenario: s, Driver: d, Kind: kind, Targets: n, Rate: rate, Window: time.Second, Probes: 1000, CPU: cpu}
	}
	scale := mk("scale", DriverVantage, KindHTTPS, 10000, 1000, 500*time.Millisecond)
	scale.ScrapedRSS, scale.LateP99, scale.ScrapeMedian = 70<<20, 10*time.Millisecond, 20*time.Millisecond
	rep := &Report{Results: []Result{
		mk("http", DriverVantage, KindHTTP, 1000, 500, 90*time.Millisecond),
		mk("http", DriverBare, KindHTTP, 1000, 500, 100*time.Millisecond),
		mk("https", DriverVantage, KindHTTPS, 1000, 500, 110*time.Millisecond),
		mk("https", DriverBare, KindHTTPS, 1000, 500, 100*time.Millisecond),
		scale,
		mk("icmp", DriverVantage, KindICMP, 1000, 500, 10*time.Millisecond),
		mk("icmp", DriverBlackbox, KindICMP, 1000, 500, 100*time.Millisecond),
		mk("grpcs", DriverVantage, KindGRPCS, 1000, 100, 120*time.Millisecond),
		mk("grpcs", DriverBlackbox, KindGRPCS, 1000, 100, 100*time.Millisecond),
		mk("grpc", DriverVantage, KindGRPC, 1000, 250, 120*time.Millisecond), // no blackbox_exporter: no goal line
		{Scenario: "failed", Driver: DriverVantage, Kind: KindMixed, Targets: 10000, Rate: 1000,
			Err: "only 10 of 1000 probes/s served"},
	}}
	got := strings.Join(rep.goals(), "\n")
	for _, want := range []string{
		"http: agent CPU per http probe ≤ 1.00× the bare client: met (worst 0.90×)",
		"https: agent CPU per https probe ≤ 1.05× the bare client: NOT met (worst 1.10×)",
		"scale: RSS < 64 MB with 10000 HTTPS targets configured and exported: NOT met (worst 70.0 MB)",
		"scale: under one core at 1000 probes/s: met (worst 0.50 cores)",
		"scale: lateness p99 < 50ms: met",
		"icmp: agent CPU per icmp probe ≤ 1.00× blackbox_exporter's: met (worst 0.10×)",
		"grpcs: agent CPU per grpcs probe ≤ 1.00× blackbox_exporter's: NOT met (worst 1.20×)",
		"scale: scrape < 100ms at 10000 targets: met",
		"failed: not measured: only 10 of 1000 probes/s served",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("goals lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "grpc: ") {
		t.Errorf("a goal line for grpc, measured without blackbox_exporter:\n%s", got)
	}
}

// TestReportSettings: the header names each scenario's settings (the
// memory limit follows the targets), the agent table has a row per agent
// driver, and the CPU table sets both beside the bare client.
func TestReportSettings(t *testing.T) {
	mk := func(s, d string, n int, cpu time.Duration, gc int, limit int64, src string) Result {
		return Result{Scenario: s, Driver: d, Kind: KindHTTPS, Targets: n, Rate: 200, Window: time.Second, Probes: 1000,
			CPU: cpu, GOGC: gc, MemLimit: limit, MemSource: src, ScrapedRSS: 60 << 20}
	}
	rep := &Report{GOGC: 100, MemLimit: math.MaxInt64, Results: []Result{
		mk("rss-https", DriverVantage, 10000, 3*time.Second, 100, memlimit.ForTargets(10000), "targets"),
		mk("rss-https", DriverVantageGC100, 10000, 2*time.Second, 100, math.MaxInt64, "none"),
		mk("https", DriverVantage, 1000, 2*time.Second, 100, memlimit.Floor, "targets"),
		mk("https", DriverVantageGC100, 1000, 2*time.Second, 100, math.MaxInt64, "none"),
		mk("https", DriverBare, 1000, 2500*time.Millisecond, 100, math.MaxInt64, ""),
	}}
	var md bytes.Buffer
	rep.Write(&md, true)
	out := md.String()
	for _, want := range []string{
		"Settings: vantage (default settings) rss-https: GOGC 100, memory limit 49.6MiB (targets); " +
			"vantage (default settings) https: GOGC 100, memory limit 32.0MiB (targets); " +
			"vantage GOGC=100: GOGC 100, no memory limit; bare client: GOGC 100, no memory limit\n",
		"| https | https | 1000 | 200 | 2000.0 | 2000.0 | 2500.0 | – | 0.80× | 0.80× | – |",
		"| rss-https | 10000 https | GOGC 100, memory limit 49.6MiB (targets) |",
		"| rss-https | 10000 https | GOGC 100, no memory limit |",
		"https: agent CPU per https probe ≤ 1.05× the bare client: met (worst 0.80×)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
