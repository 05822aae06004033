package memlimit

import (
	"bytes"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// fakeCgroup builds a cgroup tree under a temporary directory: files maps
// a path under the mount to its content; self is /proc/self/cgroup.
func fakeCgroup(t *testing.T, self string, files map[string]string) CgroupPaths {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "cgroup")
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	selfFile := filepath.Join(dir, "self")
	if err := os.WriteFile(selfFile, []byte(self), 0o600); err != nil {
		t.Fatal(err)
	}
	return CgroupPaths{Root: root, SelfFile: selfFile}
}

func TestCgroupLimit(t *testing.T) {
	const v1None = "9223372036854771712\n" // cgroup v1's "no limit"
	for _, c := range []struct {
		name  string
		self  string
		files map[string]string
		want  int64
	}{
		{"no cgroup file system", "0::/\n", nil, 0},
		{"v2 container (own namespace)", "0::/\n", map[string]string{"memory.max": "268435456\n"}, 268435456},
		{"v2 max", "0::/\n", map[string]string{"memory.max": "max\n"}, 0},
		{"v2 systemd unit", "0::/system.slice/vantage.service\n", map[string]string{
			"system.slice/vantage.service/memory.max": "134217728\n",
			"system.slice/memory.max":                 "max\n",
		}, 134217728},
		{"v2 ancestor's limit is lower", "0::/system.slice/vantage.service\n", map[string]string{
			"system.slice/vantage.service/memory.max": "1073741824\n",
			"system.slice/memory.max":                 "536870912\n",
		}, 536870912},
		{"v2 only an ancestor limits", "0::/kubepods/pod1/c1\n", map[string]string{
			"kubepods/pod1/c1/memory.max": "max\n",
			"kubepods/pod1/memory.max":    "209715200\n",
		}, 209715200},
		{"v1 container", "12:memory:/\n0::/\n", map[string]string{"memory/memory.limit_in_bytes": "104857600\n"}, 104857600},
		{"v1 no limit (huge value)", "12:memory:/\n", map[string]string{"memory/memory.limit_in_bytes": v1None}, 0},
		{"v1 nested path", "5:cpuacct,memory:/docker/abc\n", map[string]string{
			"memory/docker/abc/memory.limit_in_bytes": "73400320\n",
			"memory/memory.limit_in_bytes":            v1None,
		}, 73400320},
		{"v2 wins over v1", "0::/\n", map[string]string{
			"memory.max":                   "52428800\n",
			"memory/memory.limit_in_bytes": "104857600\n",
		}, 52428800},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := fakeCgroup(t, c.self, c.files).Limit()
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("Limit() = %d, want %d", got, c.want)
			}
		})
	}
}

func TestCgroupLimitGarbage(t *testing.T) {
	p := fakeCgroup(t, "0::/\n", map[string]string{"memory.max": "lots\n"})
	n, err := p.Limit()
	if n != 0 || err == nil || !strings.Contains(err.Error(), `"lots"`) {
		t.Errorf("Limit() = %d, %v; want 0 and an error quoting the content", n, err)
	}
}

func env(kv ...string) func(string) string {
	return func(k string) string {
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i] == k {
				return kv[i+1]
			}
		}
		return ""
	}
}

func TestChoosePrecedence(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	container := fakeCgroup(t, "0::/\n", map[string]string{"memory.max": "268435456\n"}) // 256 MiB
	host := fakeCgroup(t, "0::/\n", nil)
	share := int64(241591910) // 90% of 256 MiB, rounded down
	for _, c := range []struct {
		name       string
		getenv     func(string) string
		cg         CgroupPaths
		configured int64
		targets    int
		want       Setting
	}{
		{"targets", env(), host, 0, 10000, Setting{Limit: Base + 10000*PerTarget, Source: SourceTargets}},
		{"targets below the floor", env(), host, 0, 100, Setting{Limit: Floor, Source: SourceTargets}},
		{"config over targets", env(), host, 100 << 20, 10000, Setting{Limit: 100 << 20, Source: SourceConfig}},
		{"cgroup over targets", env(), container, 0, 10000, Setting{Limit: share, Source: SourceCgroup, Cgroup: 268435456}},
		{"config below the container's share", env(), container, 64 << 20, 10, Setting{Limit: 64 << 20, Source: SourceConfig, Cgroup: 268435456}},
		{"config above the container's share", env(), container, 1 << 30, 10,
			Setting{Limit: share, Source: SourceCgroup, Cgroup: 268435456, Ignored: 1 << 30}},
		{"GOGC alone changes nothing here", env("GOGC", "50"), host, 0, 10000, Setting{Limit: ForTargets(10000), Source: SourceTargets}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := Choose(Input{Getenv: c.getenv, Cgroup: c.cg, Configured: c.configured, Targets: c.targets})
			if got != c.want {
				t.Errorf("Choose = %+v, want %+v", got, c.want)
			}
		})
	}
	// GOMEMLIMIT in the environment wins over everything: the limit
	// reported is the runtime's, which Apply leaves alone.
	debug.SetMemoryLimit(123 << 20)
	got := Choose(Input{Getenv: env("GOMEMLIMIT", "123MiB"), Cgroup: container, Configured: 64 << 20, Targets: 10000})
	if want := (Setting{Limit: 123 << 20, Source: SourceEnv}); got != want {
		t.Errorf("with GOMEMLIMIT: Choose = %+v, want %+v", got, want)
	}
	Apply(got)
	if now := debug.SetMemoryLimit(-1); now != 123<<20 {
		t.Errorf("Apply of the environment's limit changed the runtime's to %d", now)
	}
}

func TestForTargets(t *testing.T) {
	if got := ForTargets(0); got != Floor {
		t.Errorf("ForTargets(0) = %d, want the floor %d", got, Floor)
	}
	if got := ForTargets(-5); got != Floor {
		t.Errorf("ForTargets(-5) = %d, want the floor %d", got, Floor)
	}
	// It grows with the targets once above the floor, by PerTarget each.
	a, b := ForTargets(20000), ForTargets(20001)
	if b-a != PerTarget {
		t.Errorf("one more target adds %d bytes, want %d", b-a, PerTarget)
	}
	// The limit leaves the collector room over the live heap measured at
	// 10,000 HTTPS targets (2.2-2.4 KB per target, README Figures) and the
	// runtime's own (about 10 MB beside the heap): at least 60% of the
	// live heap at every size, so that the collector's CPU per probe does
	// not grow with the targets. (At 10,000 targets 47.3 MiB, 55% by this
	// reckoning with the profiling buckets then in the runtime's own, put
	// the collector at its cap in two runs of four.)
	const livePerTarget, runtimeOwn = 2400, 10 << 20
	for _, n := range []int{1000, 5000, 10000, 20000, 100000, 1000000} {
		live := int64(n) * livePerTarget
		if room := ForTargets(n) - live - runtimeOwn; room < live*6/10 {
			t.Errorf("ForTargets(%d) = %s: %s over a live heap of %s and the runtime's own: too little room",
				n, FormatSize(ForTargets(n)), FormatSize(room), FormatSize(live))
		}
	}
	// 1,000 targets: the limit must not bind where GOGC=100 keeps the heap
	// small (twice a live heap of 4 MB, plus the runtime's own).
	if ForTargets(1000) < 2*4<<20+runtimeOwn {
		t.Errorf("ForTargets(1000) = %s: it would bind at 1,000 targets", FormatSize(ForTargets(1000)))
	}
}

func TestTunerAppliesAndLogs(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	var log bytes.Buffer
	tu := NewTuner(Input{Getenv: env(), Cgroup: fakeCgroup(t, "0::/\n", nil)}, slog.New(slog.NewTextHandler(&log, nil)))
	s := tu.Update(0, 10000)
	if now := debug.SetMemoryLimit(-1); now != ForTargets(10000) || s.Limit != now {
		t.Fatalf("after Update: runtime limit %d, setting %d; want %d", now, s.Limit, ForTargets(10000))
	}
	if got := log.String(); !strings.Contains(got, "msg=\"memory limit\"") || !strings.Contains(got, "source=targets") ||
		!strings.Contains(got, "limit="+FormatSize(ForTargets(10000))) || !strings.Contains(got, "gogc=") {
		t.Errorf("start-up log line: %q", got)
	}
	log.Reset()
	tu.Update(0, 10000)
	if log.Len() != 0 {
		t.Errorf("an unchanged limit logged again: %q", log.String())
	}
	tu.Update(200<<20, 10000) // a reload sets memory_limit
	if now := debug.SetMemoryLimit(-1); now != 200<<20 {
		t.Errorf("after a reload with memory_limit: runtime limit %d, want %d", now, 200<<20)
	}
	if got := log.String(); !strings.Contains(got, "memory limit changed") || !strings.Contains(got, "source=config") ||
		!strings.Contains(got, "was_source=targets") {
		t.Errorf("reload log line: %q", got)
	}
	if c := tu.Current(); c.Source != SourceConfig || c.Limit != 200<<20 {
		t.Errorf("Current() = %+v", c)
	}
}

func TestContainerShare(t *testing.T) {
	for _, c := range []struct{ cg, want int64 }{
		{64 << 20, 48 << 20},   // 90% would leave the binary's pages 6 MiB
		{256 << 20, 241591910}, // 90%: it leaves more than 16 MiB
		{4 << 30, 3865470566},
		{24 << 20, 12 << 20}, // never under half
	} {
		if got := ContainerShare(c.cg); got != c.want {
			t.Errorf("ContainerShare(%s) = %s, want %s", FormatSize(c.cg), FormatSize(got), FormatSize(c.want))
		}
	}
}

func TestTunerWarnsAboveContainer(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	var log bytes.Buffer
	cg := fakeCgroup(t, "0::/\n", map[string]string{"memory.max": "104857600\n"})
	tu := NewTuner(Input{Getenv: env(), Cgroup: cg}, slog.New(slog.NewTextHandler(&log, nil)))
	s := tu.Update(1<<30, 5)
	if s.Source != SourceCgroup || s.Limit != 104857600-BinaryRoom { // 100 MiB: 16 MiB under it, not 90%

		t.Errorf("Update = %+v", s)
	}
	if !strings.Contains(log.String(), "level=WARN") || !strings.Contains(log.String(), "memory_limit=1.0GiB") {
		t.Errorf("no warning for a memory_limit above the container's: %q", log.String())
	}
}

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"256MiB", 256 << 20}, {"1GiB", 1 << 30}, {"1.5GiB", 3 << 29}, {"512KiB", 512 << 10},
		{"500MB", 500e6}, {"2GB", 2e9}, {"1TiB", 1 << 40}, {"268435456B", 268435456}, {" 64 MiB ", 64 << 20},
	} {
		got, err := ParseSize(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", "256", "MiB", "256 megabytes", "-1MiB", "1e3MiB", "NaNMiB", "InfGiB", "0x10MiB",
		"9999999TiB", "256mib"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{
		512: "512B", 2048: "2.0KiB", 50 << 20: "50.0MiB", 3 << 29: "1.5GiB", 1 << 40: "1.0TiB", math.MaxInt64: "off",
	} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}
