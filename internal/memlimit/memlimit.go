// Package memlimit chooses the agent's soft memory limit (the runtime's
// GOMEMLIMIT, debug.SetMemoryLimit) and leaves GOGC at the runtime's
// default, 100 (issue 21).
//
// A low GOGC bounds memory by collecting often at every heap size: GOGC=30
// held 10,000 HTTPS targets under 64 MB, but it also collected three times
// as often as 100 at 1,000 targets, where memory was never short, and that
// cost CPU on every probe. A soft limit costs nothing until the heap nears
// it: below the limit the collector paces itself by GOGC=100; near it, it
// collects as often as it must to stay under it (up to half the CPU, after
// which the runtime lets the heap pass the limit rather than thrash).
//
// The limit, first found wins:
//
//  1. GOMEMLIMIT in the environment: the runtime has applied it; nothing is
//     changed (source "env"). GOGC in the environment likewise wins over
//     the runtime's default; this package never sets GOGC.
//  2. The container's memory limit (cgroup v2 memory.max along the
//     process's cgroup path, or cgroup v1 memory.limit_in_bytes): 90% of
//     it, and at least 16 MiB under it (ContainerShare; source "cgroup"),
//     leaving room for what the runtime does not count (the binary's
//     pages, kernel buffers). An [agent] memory_limit
//     below that is honoured (source "config"); one above it is not: the
//     kernel would kill the agent first.
//  3. [agent] memory_limit in the config (source "config").
//  4. From the number of configured targets: Base + PerTarget per target,
//     at least Floor (source "targets"): 24 MiB + 4 KiB per target, at
//     least 32 MiB.
package memlimit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
)

// Source says where a limit came from; it is the source label of
// vantage_memory_limit_bytes.
type Source string

// Sources, in order of precedence.
const (
	SourceEnv     Source = "env"     // GOMEMLIMIT
	SourceCgroup  Source = "cgroup"  // the container's (or systemd unit's) memory limit
	SourceConfig  Source = "config"  // [agent] memory_limit
	SourceTargets Source = "targets" // derived from the number of configured targets
)

// The limit derived from the number of targets. The agent's live heap is
// about 2.2-2.4 KB per HTTPS target at 10,000 (less for HTTP and TCP),
// probes in flight included, and the runtime needs about 10 MB beside the
// heap (stacks, span and GC metadata); what is left under the limit is
// the collector's room, and its CPU per probe grows as that room shrinks
// against the live heap (a collection marks the live heap each time the
// room has been allocated). PerTarget keeps the room at about 60% of the
// live heap as the targets grow; Base is the runtime's own and the
// agent's fixed structures.
//
// Measured at 10,000 HTTPS targets, 250 probes/s, live heap 22-23 MB
// (README, Figures, issue 21): 49.6 MiB held RSS at 60.4-62.3 MB in a
// suite of four runs, for 0.67-0.95 cores (the binary's resident pages,
// 14-18 MB, are outside the limit), where GOGC 100 without a limit took
// 0.41-0.50 cores and 83-91 MB. Tighter,
// the collector falls off a cliff: at 47.3 MiB with 1.5 MB less room
// (before the heap-profile buckets went) it sat at its cap of half the
// CPU in two runs of four. On a machine too busy for that room the limit
// gives way (HighGCShare). At 1,000 targets the floor, 32 MiB, is far
// above what GOGC=100 lets the heap reach (about 8 MB): the limit does
// not bind, and the collector runs at the runtime's default pace.
const (
	Base      = 13 << 20
	PerTarget = 3840 // bytes: 2.4 KB live + 60%
	Floor     = 32 << 20
	// CgroupFraction of a container's limit is the soft limit, leaving
	// at least BinaryRoom of it for what the Go runtime does not count
	// (the binary's resident pages, 14-18 MB; kernel buffers) and never
	// less than half of it.
	CgroupFraction = 0.9
	BinaryRoom     = 16 << 20
	// Min is the least memory_limit accepted: below it the runtime and
	// the agent's fixed structures alone would keep the collector running
	// without pause.
	Min = 16 << 20
)

// ContainerShare is the soft limit for a container's limit cg: 90% of it,
// but no closer to it than BinaryRoom (a 64 MiB container gets 48 MiB,
// not 57.6, which with the binary's pages would pass 64), and at least
// half of it.
func ContainerShare(cg int64) int64 {
	return max(min(int64(float64(cg)*CgroupFraction), cg-BinaryRoom), cg/2)
}

// ForTargets is the limit for n configured targets.
func ForTargets(n int) int64 {
	return max(Floor, Base+int64(max(n, 0))*PerTarget)
}

// Setting is a chosen limit.
type Setting struct {
	Limit  int64 // bytes; math.MaxInt64 means none (GOMEMLIMIT=off)
	Source Source
	// Cgroup is the container's memory limit in bytes, 0 when there is none.
	Cgroup int64
	// Ignored is a configured memory_limit that was not used (above the
	// container's share), 0 otherwise.
	Ignored int64
}

// Input is what a limit is chosen from.
type Input struct {
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
	// Cgroup is where the container's limit is read; the zero value reads
	// the system's (/sys/fs/cgroup, /proc/self/cgroup).
	Cgroup CgroupPaths
	// Configured is [agent] memory_limit in bytes; 0 when not set.
	Configured int64
	// Targets is the number of configured targets.
	Targets int
}

// CgroupPaths locate the cgroup file systems; tests point them at a
// temporary directory.
type CgroupPaths struct {
	Root     string // the cgroup mount; default /sys/fs/cgroup
	SelfFile string // the process's cgroup membership; default /proc/self/cgroup
}

// Choose picks the limit for in; it changes nothing.
func Choose(in Input) Setting {
	getenv := in.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if getenv("GOMEMLIMIT") != "" {
		return Setting{Limit: debug.SetMemoryLimit(-1), Source: SourceEnv}
	}
	cg, _ := in.Cgroup.Limit()
	if cg > 0 {
		share := ContainerShare(cg)
		switch {
		case in.Configured > 0 && in.Configured <= share:
			return Setting{Limit: in.Configured, Source: SourceConfig, Cgroup: cg}
		case in.Configured > share:
			return Setting{Limit: share, Source: SourceCgroup, Cgroup: cg, Ignored: in.Configured}
		}
		return Setting{Limit: share, Source: SourceCgroup, Cgroup: cg}
	}
	if in.Configured > 0 {
		return Setting{Limit: in.Configured, Source: SourceConfig}
	}
	return Setting{Limit: ForTargets(in.Targets), Source: SourceTargets}
}

// Apply sets the runtime's memory limit to s, unless it came from the
// environment (the runtime applied that itself).
func Apply(s Setting) {
	if s.Source != SourceEnv && s.Limit > 0 {
		debug.SetMemoryLimit(s.Limit)
	}
}

// GCPercent is the collector's GOGC in effect (-1: off).
func GCPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// Tuner keeps the agent's limit current as its config changes: a reload
// that changes memory_limit or the number of targets changes the limit.
type Tuner struct {
	in  Input
	log *slog.Logger

	mu    sync.Mutex
	cur   Setting
	set   bool
	valve valve
}

// NewTuner returns a Tuner reading the environment and cgroups as in says
// (its Configured and Targets are ignored: Update supplies them). log
// receives a line for the first limit and for every change; nil discards.
func NewTuner(in Input, log *slog.Logger) *Tuner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Tuner{in: in, log: log}
}

// Update chooses and applies the limit for a config with configured
// memory_limit (0: none) and targets targets, and returns it.
func (t *Tuner) Update(configured int64, targets int) Setting {
	t.mu.Lock()
	defer t.mu.Unlock()
	in := t.in
	in.Configured, in.Targets = configured, targets
	s := Choose(in)
	if s.Source == SourceTargets {
		// A reload moves the derived limit; steps the valve took stay.
		t.valve.base = s.Limit
		s.Limit = t.valve.raised(s.Limit)
	} else {
		t.valve = valve{}
	}
	if t.set && s == t.cur {
		return s
	}
	Apply(s)
	attrs := []any{"limit", FormatSize(s.Limit), "limit_bytes", s.Limit, "source", string(s.Source), "gogc", GCPercent()}
	if s.Cgroup > 0 {
		attrs = append(attrs, "cgroup_limit", FormatSize(s.Cgroup))
	}
	if s.Source == SourceTargets {
		attrs = append(attrs, "targets", targets)
	}
	if !t.set {
		t.log.Info("memory limit", attrs...)
	} else {
		t.log.Info("memory limit changed", append(attrs, "was", FormatSize(t.cur.Limit), "was_source", string(t.cur.Source))...)
	}
	if s.Ignored > 0 && (!t.set || t.cur.Ignored != s.Ignored) {
		t.log.Warn("memory_limit is above 90% of the container's memory limit; using that instead",
			"memory_limit", FormatSize(s.Ignored), "cgroup_limit", FormatSize(s.Cgroup))
	}
	t.cur, t.set = s, true
	return s
}

// Current is the last limit Update applied (zero before the first).
func (t *Tuner) Current() Setting {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cur
}

// noLimit is at or above what cgroup v1 reports for "no limit"
// (9223372036854771712, the largest int64 rounded down to a page).
const noLimit = 1 << 60

// Limit reads the process's memory limit from its cgroup: the smallest
// memory.max along its cgroup v2 path (a limit on any ancestor applies),
// else cgroup v1's memory.limit_in_bytes. 0 means no limit (none set, "max",
// v1's huge value, or no cgroup file system); err says why a file present
// could not be read.
func (p CgroupPaths) Limit() (int64, error) {
	root, self := p.Root, p.SelfFile
	if root == "" {
		root = "/sys/fs/cgroup"
	}
	if self == "" {
		self = "/proc/self/cgroup"
	}
	v2, v1 := "/", "/"
	if b, err := os.ReadFile(self); err == nil {
		v2, v1 = selfPaths(b)
	}
	// cgroup v2: the process's cgroup and each ancestor up to the root
	// (in a container with its own cgroup namespace, the path is "/").
	var limit int64
	var errs []error
	found := false
	for dir := filepath.Clean("/" + v2); ; dir = filepath.Dir(dir) {
		n, ok, err := readLimit(filepath.Join(root, dir, "memory.max"))
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			found = true
			if n > 0 && (limit == 0 || n < limit) {
				limit = n
			}
		}
		if dir == "/" {
			break
		}
	}
	if found {
		return limit, errors.Join(errs...)
	}
	// cgroup v1: the memory controller's hierarchy.
	for _, f := range []string{filepath.Join(root, "memory", filepath.Clean("/"+v1), "memory.limit_in_bytes"),
		filepath.Join(root, "memory", "memory.limit_in_bytes")} {
		n, ok, err := readLimit(f)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			return n, errors.Join(errs...)
		}
	}
	return 0, errors.Join(errs...)
}

// selfPaths reads /proc/self/cgroup: the cgroup v2 path ("0::PATH") and
// the v1 memory controller's ("N:...memory...:PATH").
func selfPaths(b []byte) (v2, v1 string) {
	v2, v1 = "/", "/"
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		id, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		ctrls, path, ok := strings.Cut(rest, ":")
		if !ok || path == "" {
			continue
		}
		if id == "0" && ctrls == "" {
			v2 = path
		}
		for _, c := range strings.Split(ctrls, ",") {
			if c == "memory" {
				v1 = path
			}
		}
	}
	return v2, v1
}

// readLimit reads one limit file: ok when it exists and holds "max" (n 0)
// or a byte count (n 0 when it means no limit).
func readLimit(file string) (n int64, ok bool, err error) {
	b, err := os.ReadFile(file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, false, nil
		}
		return 0, false, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, true, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%s: %q: not a byte count", file, s)
	}
	if v == 0 || v >= noLimit {
		return 0, true, nil
	}
	return int64(v), true, nil
}

// units are the size suffixes ParseSize accepts: the runtime's GOMEMLIMIT
// suffixes (B, KiB, MiB, GiB, TiB) and their decimal kin (KB, MB, GB, TB).
var units = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// ParseSize parses a size such as "256MiB", "1.5GiB", "500MB" or
// "268435456B": a non-negative number and a unit (B, KiB, MiB, GiB, TiB,
// KB, MB, GB, TB). A unit is required, so that "256" is not read as bytes
// by someone who meant megabytes.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	for _, u := range units {
		num, ok := strings.CutSuffix(t, u.suffix)
		if !ok {
			continue
		}
		num = strings.TrimSpace(num)
		v, err := strconv.ParseFloat(num, 64)
		if err != nil || num == "" || strings.ContainsAny(num, "eEnNxX_+") {
			return 0, fmt.Errorf("%q: want a number and a unit, like \"256MiB\" or \"1GiB\"", s)
		}
		if v < 0 {
			return 0, fmt.Errorf("%q: must not be negative", s)
		}
		b := v * float64(u.mult)
		if b >= math.MaxInt64 {
			return 0, fmt.Errorf("%q: too large", s)
		}
		return int64(b), nil
	}
	return 0, fmt.Errorf("%q: want a number and a unit (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB), like \"256MiB\"", s)
}

// FormatSize writes bytes in the largest binary unit that keeps one
// decimal: "50.0MiB", "1.5GiB"; "off" for no limit.
func FormatSize(n int64) string {
	switch {
	case n == math.MaxInt64:
		return "off"
	case n >= 1<<40:
		return strconv.FormatFloat(float64(n)/(1<<40), 'f', 1, 64) + "TiB"
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + "GiB"
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + "MiB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + "KiB"
	}
	return strconv.FormatInt(n, 10) + "B"
}
