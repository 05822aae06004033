package demo

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/internal/testenv"
	"github.com/vantage-probe/vantage/probe"
	"github.com/vantage-probe/vantage/probe/grpcprobe"
	"github.com/vantage-probe/vantage/probe/icmpprobe"
)

var statusPageRe = regexp.MustCompile(`status page: (http://\S+)/ `)

// TestDemoDetectsFirstIncidentWithin30s runs the real demo (farm, six
// agents, fault script) until the fleet narrates the first incident. On
// the way, every region must see the gRPC and ICMP targets up (the ICMP
// one only where the host allows an ICMP socket, and a note otherwise).
func TestDemoDetectsFirstIncidentWithin30s(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a six-agent fleet for ~10s")
	}
	var out testenv.Output
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- Run(ctx, Options{Listen: "127.0.0.1:0", Out: &out}) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("demo: %v", err)
			}
		}
	}
	defer stop()
	_, icmpErr := icmpprobe.Detect(nil, false)

	var page string
	testenv.Poll(t, 30*time.Second, "the status page's address", func() bool {
		m := statusPageRe.FindStringSubmatch(out.String())
		if m != nil {
			page = m[1]
		}
		return m != nil
	})
	want := map[string]bool{"orders": true, "gateway": icmpErr == nil}
	testenv.Poll(t, 20*time.Second, "orders (gRPC) and gateway (ICMP) up from 3 regions", func() bool {
		resp, err := http.Get(page + "/api/v1/targets")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var api struct {
			Targets []struct {
				Name      string `json:"name"`
				Verdict   string `json:"verdict"`
				Reporting int    `json:"regions_reporting"`
			} `json:"targets"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&api); err != nil {
			t.Fatalf("/api/v1/targets: %v", err)
		}
		seen := map[string]bool{}
		for _, tv := range api.Targets {
			seen[tv.Name] = true
			if want[tv.Name] && (tv.Verdict != "up" || tv.Reporting != 3) {
				return false
			}
		}
		for name, present := range want {
			if seen[name] != present {
				t.Fatalf("target %s listed %v, want %v (ICMP: %v)", name, seen[name], present, icmpErr)
			}
		}
		return true
	})
	testenv.Poll(t, 30*time.Second, "the first incident narrated", func() bool {
		return strings.Contains(out.String(), "INCIDENT api is DOWN")
	})
	t.Logf("first incident narrated %v after start", time.Since(start).Round(100*time.Millisecond))
	stop()
	text := out.String()
	for _, want := range []string{"status page: http://", "6 agents in 3 regions", "api starts answering 503",
		"INCIDENT api is DOWN (status_mismatch): "} {
		if !strings.Contains(text, want) {
			t.Errorf("narration lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "suppressed: api") {
		t.Errorf("an all-region outage was narrated as suppressed:\n%s", text)
	}
	if note := "the icmp target gateway is left out"; strings.Contains(text, note) != (icmpErr != nil) {
		t.Errorf("ICMP allowed: %v, but the narration %s %q:\n%s", icmpErr == nil,
			map[bool]string{true: "has", false: "lacks"}[strings.Contains(text, note)], note, text)
	}
}

// TestFarmFaults: the switches of the api's health document and of the
// gRPC service change what the farm answers, as the demo's probes see it.
func TestFarmFaults(t *testing.T) {
	f, err := StartFarm()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dbLatency := func() int {
		resp, err := http.Get(f.API.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc struct {
			Status string `json:"status"`
			Checks struct {
				DB struct {
					LatencyMS int `json:"latency_ms"`
				} `json:"db"`
			} `json:"checks"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || doc.Status != "UP" || resp.StatusCode != http.StatusOK {
			t.Fatalf("api: status %d, %+v, %v: want 200 and the health document", resp.StatusCode, doc, err)
		}
		return doc.Checks.DB.LatencyMS
	}
	if ms := dbLatency(); ms >= 300 {
		t.Errorf("healthy api reports the database at %d ms", ms)
	}
	f.SetAPISlow(true)
	if ms := dbLatency(); ms < 300 {
		t.Errorf("slow api reports the database at %d ms, want over the demo's 300", ms)
	}

	p, err := grpcprobe.New(grpcprobe.Options{Address: f.Orders.Addr, Service: OrdersService})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if r := p.Probe(ctx); !r.OK {
		t.Errorf("orders: %s %s, want serving", r.Reason, r.Message)
	}
	f.SetOrdersServing(false)
	if r := p.Probe(ctx); r.Reason != probe.ReasonNotServing {
		t.Errorf("orders after SetOrdersServing(false): %q %s, want not_serving", r.Reason, r.Message)
	}
}

// TestDemoRestartedOnItsStateKeepsItsIncidents: a demo with -state-dir is a
// fleet whose state survives it. The first demo runs until its first
// incident is on record and stops (every agent at once); a second demo on
// the same directory lists that incident, same ID, before its own fault
// script has had time to make another.
func TestDemoRestartedOnItsStateKeepsItsIncidents(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the six-agent demo twice")
	}
	dir := t.TempDir()
	run := func(until func(page string) bool, what string) {
		t.Helper()
		var out testenv.Output
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Run(ctx, Options{Listen: "127.0.0.1:0", Out: &out, StateDir: dir}) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("demo: %v", err)
			}
		}()
		var page string
		testenv.Poll(t, 30*time.Second, "the status page's address", func() bool {
			m := statusPageRe.FindStringSubmatch(out.String())
			if m != nil {
				page = m[1]
			}
			return m != nil
		})
		testenv.Poll(t, 45*time.Second, what, func() bool { return until(page) })
	}
	incidents := func(page string) []string {
		resp, err := http.Get(page + "/api/v1/incidents")
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		var body struct {
			Incidents []struct {
				ID string `json:"id"`
			} `json:"incidents"`
		}
		if json.NewDecoder(resp.Body).Decode(&body) != nil {
			return nil
		}
		var ids []string
		for _, in := range body.Incidents {
			ids = append(ids, in.ID)
		}
		return ids
	}
	var first []string
	run(func(page string) bool {
		first = incidents(page)
		return len(first) > 0
	}, "the first demo's first incident")
	run(func(page string) bool {
		ids := incidents(page)
		for _, id := range first {
			if !slices.Contains(ids, id) {
				return false
			}
		}
		return true
	}, "the second demo to list the first one's incidents "+strings.Join(first, ", "))
}
