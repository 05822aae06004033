package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func TestTuneMemory(t *testing.T) {
	gc := debug.SetGCPercent(100)
	ml := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(gc); debug.SetMemoryLimit(ml) })
	dir := t.TempDir()
	file := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	limited := file("memory.max", "268435456\n")
	unlimited := file("max", "max\n")
	v1none := file("v1", "9223372036854771712\n")
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, c := range []struct {
		name      string
		getenv    func(string) string
		files     []string
		wantGC    int
		wantLimit int64
	}{
		{"no container", env(), []string{filepath.Join(dir, "missing")}, agentGCPercent, -1},
		{"container limit", env(), []string{filepath.Join(dir, "missing"), limited}, agentGCPercent, 268435456 / 10 * 9},
		{"cgroup v2 without limit", env(), []string{unlimited}, agentGCPercent, -1},
		{"cgroup v1 without limit", env(), []string{v1none}, agentGCPercent, -1},
		{"operator's GOGC and GOMEMLIMIT win", env("GOGC", "200", "GOMEMLIMIT", "1GiB"), []string{limited}, -1, -1},
	} {
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(-1)
		gotGC, gotLimit := tuneMemory(log, c.getenv, c.files)
		if gotGC != c.wantGC || gotLimit != c.wantLimit {
			t.Errorf("%s: set GOGC %d, limit %d; want %d, %d", c.name, gotGC, gotLimit, c.wantGC, c.wantLimit)
		}
		if c.wantGC > 0 {
			if now := debug.SetGCPercent(100); now != c.wantGC {
				t.Errorf("%s: the runtime's GOGC is %d, want %d", c.name, now, c.wantGC)
			}
		}
		if c.wantLimit > 0 {
			if now := debug.SetMemoryLimit(-1); now != c.wantLimit {
				t.Errorf("%s: the runtime's memory limit is %d, want %d", c.name, now, c.wantLimit)
			}
		}
	}
}
