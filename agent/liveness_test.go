package agent

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/internal/testenv"
)

// /healthz used to answer 200 while the scheduler spun holding its lock
// (an interval that overflowed): an orchestrator never restarted the
// wedged agent. It now fails, naming the loop, when a loop stops passing,
// and recovers when it turns again; the watchdog metric shows the age.
func TestHealthzFailsWhileALoopIsWedged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.toml")
	writeConfig(t, path, baseConfig("[[target]]\nname = \"db\"\ntype = \"tcp\"\naddress = \"127.0.0.1:1\"\n"))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{ConfigPath: path, Config: cfg, Version: "test", WatchEvery: -1, StallAfter: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()

	testenv.Poll(t, 10*time.Second, "/healthz ok", func() bool { code, _ := get(t, a, "/healthz"); return code == 200 })

	// Wedge the scheduler as the overflow did: its lock held, no pass.
	a.sched.mu.Lock()
	wedged := true
	defer func() {
		if wedged {
			a.sched.mu.Unlock()
		}
	}()
	var body string
	testenv.Poll(t, 10*time.Second, "/healthz to fail", func() bool {
		var code int
		code, body = get(t, a, "/healthz")
		return code == http.StatusServiceUnavailable
	})
	if !strings.Contains(body, "scheduler loop has not run for") {
		t.Errorf("/healthz body %q does not name the scheduler loop", body)
	}
	if v, ok := value(scrape(t, a), `vantage_loop_tick_age_seconds{loop="scheduler"}`); !ok || v < 1.5 {
		t.Errorf("vantage_loop_tick_age_seconds{loop=scheduler} = %v (found %v), want >= 1.5 while wedged", v, ok)
	}
	a.sched.mu.Unlock()
	wedged = false
	testenv.Poll(t, 10*time.Second, "/healthz to recover", func() bool { code, _ := get(t, a, "/healthz"); return code == 200 })
}
