package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/cluster"
	"github.com/vantage-probe/vantage/exporter/page"
	"github.com/vantage-probe/vantage/internal/testenv"
)

// quietAgent starts one agent with n TCP targets that are never probed in
// the test's time (24h interval) and a cluster that evaluates hourly, so
// the heap moves only for what the test asks of it.
func quietAgent(t *testing.T, n int) *Agent {
	t.Helper()
	var b strings.Builder
	b.WriteString(baseConfig("[quorum]\nmin_regions = 1\n"))
	for i := range n {
		fmt.Fprintf(&b, "[[target]]\nname = \"t%05d\"\ntype = \"tcp\"\naddress = \"127.0.0.1:1\"\ninterval = \"24h\"\n", i)
	}
	path := filepath.Join(t.TempDir(), "v.toml")
	writeConfig(t, path, b.String())
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{ConfigPath: path, Config: cfg, Version: "test", WatchEvery: -1,
		ClusterTuning: func(c *cluster.Config) { c.EvalEvery, c.HeartbeatEvery = time.Hour, time.Hour }})
	if err != nil {
		t.Fatal(err)
	}
	a.Server().Page = page.New(a, page.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	testenv.Poll(t, 30*time.Second, "the agent to serve", func() bool {
		resp, err := http.Get("http://" + a.HTTPAddr() + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	return a
}

// allocPerGET is the bytes allocated per GET of path, over a few GETs.
func allocPerGET(t *testing.T, a *Agent, path string) (alloc uint64, body int) {
	t.Helper()
	get := func() int {
		resp, err := http.Get("http://" + a.HTTPAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		return len(b)
	}
	get() // warm: pools, template
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const n = 4
	for range n {
		body = get()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / n, body
}

// The status page and the API cost the page they return, not the fleet:
// ten times the targets may not cost ten times the memory per GET. (At
// 50,000 targets one GET of the page was 42 MB and ten concurrent ones
// took 1.2 GB.)
func TestPageAndAPICostTheirPageNotTheFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts agents with 500 and 5,000 targets")
	}
	small, large := quietAgent(t, 500), quietAgent(t, 5000)
	for _, path := range []string{"/", "/api/v1/targets"} {
		sa, sb := allocPerGET(t, small, path)
		la, lb := allocPerGET(t, large, path)
		t.Logf("GET %s: 500 targets %d KB allocated, %d KB body; 5,000 targets %d KB allocated, %d KB body", path, sa>>10, sb>>10, la>>10, lb>>10)
		if la > 2*sa+1<<20 {
			t.Errorf("GET %s allocates %d KB at 5,000 targets, %d KB at 500: it grows with the fleet", path, la>>10, sa>>10)
		}
	}

	// The API pages: counts over the fleet, next_offset to the rest.
	resp, err := http.Get("http://" + large.HTTPAddr() + "/api/v1/targets?limit=100&offset=4950")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Counts     map[string]int `json:"counts"`
		Total      int            `json:"total"`
		NextOffset int            `json:"next_offset"`
		Targets    []struct {
			Name string `json:"name"`
		} `json:"targets"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	if page.Total != 5000 || len(page.Targets) != 50 || page.NextOffset != 0 || page.Targets[0].Name != "t04950" {
		t.Errorf("offset 4950 limit 100: total %d, %d targets from %q, next %d; want 5000, 50 from t04950, none",
			page.Total, len(page.Targets), page.Targets[0].Name, page.NextOffset)
	}
	if sum := page.Counts["unknown"] + page.Counts["up"] + page.Counts["down"] + page.Counts["failing"] + page.Counts["maintenance"]; sum != 5000 {
		t.Errorf("counts %v sum to %d, want 5000", page.Counts, sum)
	}
}
