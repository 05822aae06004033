package agent

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/internal/memlimit"
	"github.com/vantage-probe/vantage/internal/testenv"
)

// TestMemoryLimitFollowsConfig: an agent with a memory tuner sets the
// process's soft limit from its config (here no container: from the
// targets), exports it with its source, and a reload that sets
// memory_limit changes both.
func TestMemoryLimitFollowsConfig(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	dir := t.TempDir()
	path := filepath.Join(dir, "vantage.toml")
	body := func(agentExtra string) string {
		return fmt.Sprintf(`
[agent]
node = "t1"
region = "eu-west"
listen = "127.0.0.1:0"
%s
[cluster]
bind = "127.0.0.1:0"
[[target]]
name = "a"
type = "tcp"
address = "127.0.0.1:1"
interval = "1h"
`, agentExtra)
	}
	writeConfig(t, path, body(""))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	// No GOMEMLIMIT, and a cgroup file system with no limit in it.
	tuner := memlimit.NewTuner(memlimit.Input{Getenv: func(string) string { return "" },
		Cgroup: memlimit.CgroupPaths{Root: filepath.Join(dir, "cgroup"), SelfFile: filepath.Join(dir, "self")}}, nil)
	a, err := New(Options{ConfigPath: path, Config: cfg, Version: "test", WatchEvery: -1, Memory: tuner})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent stopped with %v", err)
		}
	})
	check := func(source string, want int64) {
		t.Helper()
		if now := debug.SetMemoryLimit(-1); now != want {
			t.Errorf("the runtime's memory limit is %d, want %d", now, want)
		}
		m := scrape(t, a)
		got, ok := value(m, `vantage_memory_limit_bytes{source="`+source+`"}`)
		if !ok || int64(got) != want {
			t.Errorf("vantage_memory_limit_bytes{source=%q} = %v (found %v), want %d", source, got, ok, want)
		}
		if rt, ok := value(m, "go_memlimit_bytes"); ok && int64(rt) != want {
			t.Errorf("go_memlimit_bytes = %v, vantage_memory_limit_bytes %d: they disagree", rt, want)
		}
		// The valve has not moved it: an idle agent's collector is quiet.
		if steps, ok := value(m, "vantage_memory_limit_steps"); !ok || steps != 0 {
			t.Errorf("vantage_memory_limit_steps = %v (found %v), want 0", steps, ok)
		}
	}
	check("targets", memlimit.ForTargets(1))
	if promtool := testenv.RequireBinary(t, "prometheus", "promtool"); promtool != "" {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(scrape(t, a))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool check metrics: %v\n%s", err, out)
		}
	}

	writeConfig(t, path, body(`memory_limit = "100MiB"`))
	if err := a.Reload(Overrides{}); err != nil {
		t.Fatal(err)
	}
	check("config", 100<<20)

	// A reload the agent refuses leaves the limit as it was.
	writeConfig(t, path, body(`memory_limit = "1MiB"`))
	if err := a.Reload(Overrides{}); err == nil {
		t.Fatal("a reload with memory_limit 1MiB succeeded")
	}
	check("config", 100<<20)
}
