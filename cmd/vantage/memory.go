package main

import (
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// agentGCPercent is the agent's GOGC unless the environment sets one. An
// agent's heap is mostly long-lived per-target state (config, prober,
// latest result, shared observations) plus short-lived probe garbage; the
// default GOGC=100 lets the heap grow to twice the live state before a
// collection, and the runtime keeps 10% more than that from the OS. At 10k
// HTTPS targets (23 MB live) 30 holds RSS near 61 MB where 50 held 74 and
// 100 about 100; the price is a collection about three times as often as
// at 100, on a live heap that per-target layout work has made less than
// half what it was when 50 was chosen (CPU per probe in README.md,
// Figures, measured at 30).
const agentGCPercent = 30

// cgroupMemoryFiles are where a container's memory limit is read from:
// cgroup v2, then v1.
var cgroupMemoryFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// tuneMemory applies the agent's GC settings: GOGC=30 unless GOGC is set,
// and, in a container with a memory limit and no GOMEMLIMIT, a soft limit
// at 90% of it, so that the collector works harder near the limit instead
// of the kernel killing the agent (as Prometheus 3 does by default). It
// returns what it set, for the start-up log.
func tuneMemory(log *slog.Logger, getenv func(string) string, limitFiles []string) (gcPercent int, memLimit int64) {
	gcPercent, memLimit = -1, -1
	if getenv("GOGC") == "" {
		debug.SetGCPercent(agentGCPercent)
		gcPercent = agentGCPercent
	}
	if getenv("GOMEMLIMIT") == "" {
		if limit, ok := cgroupMemoryLimit(limitFiles); ok {
			memLimit = limit / 10 * 9
			debug.SetMemoryLimit(memLimit)
		}
	}
	if gcPercent >= 0 || memLimit >= 0 {
		log.Debug("memory tuned", "gogc", gcPercent, "gomemlimit_bytes", memLimit)
	}
	return gcPercent, memLimit
}

// cgroupMemoryLimit reads the first limit file that exists: a byte count,
// or "max" (no limit). cgroup v1 reports "no limit" as a huge number.
func cgroupMemoryLimit(files []string) (int64, bool) {
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 || n >= 1<<60 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}
