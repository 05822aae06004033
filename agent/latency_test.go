package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/internal/mono"
	"github.com/vantage-probe/vantage/probe/probetest"
)

// apiTarget is what this test reads of /api/v1/targets.
type apiTarget struct {
	Name    string `json:"name"`
	Results []struct {
		Region  string `json:"region"`
		Agent   string `json:"agent"`
		Latency int64  `json:"latency_ns"`
	} `json:"results"`
	History []struct {
		Latency int64 `json:"latency_ns"`
	} `json:"history"`
	Local *struct{} `json:"local"`
}

func apiTargets(t *testing.T, a *Agent) []apiTarget {
	t.Helper()
	resp, err := http.Get("http://" + a.HTTPAddr() + "/api/v1/targets")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Targets []apiTarget `json:"targets"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Targets
}

// TestEveryAgentShowsEveryProbeTypesLatency runs two agents in eu-west
// (each target probed by one of them) and one in us-east against a real
// TCP listener, DNS server and TLS server on loopback, where a connect, a
// query or a handshake takes well under a millisecond. Every agent's API
// must show every region's latency of every target above zero (gossip
// carried milliseconds, so a sub-millisecond latency arrived as 0), and a
// history with latencies, also for the targets it does not probe itself:
// its region's prober's results, refreshed while they do not change.
func TestEveryAgentShowsEveryProbeTypesLatency(t *testing.T) {
	tcp, err := probetest.StartTCP(probetest.TCPEcho, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tcp.Close() })
	zone, err := probetest.NewZone("www.example.test. 300 IN A 192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	dnsSrv, err := probetest.StartDNS(zone)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dnsSrv.Close() })
	ca, err := probetest.NewCA("latency CA")
	if err != nil {
		t.Fatal(err)
	}
	caFile, err := ca.WriteCAFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Leaf(probetest.Days(30), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	tlsSrv, err := probetest.StartTLS(cert)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tlsSrv.Close() })
	targets := fmt.Sprintf(`
[[target]]
name = "db"
type = "tcp"
address = %q
timeout = "900ms"
[[target]]
name = "resolver"
type = "dns"
timeout = "900ms"
[target.dns]
server = %q
query = "www.example.test."
[[target]]
name = "cert"
type = "tls"
address = %q
timeout = "900ms"
[target.tls]
ca_file = %q
`, tcp.Addr, dnsSrv.Addr(), tlsSrv.Addr, caFile)
	fleet := testFleet(t, []string{"eu-west", "eu-west", "us-east"}, targets, "")

	// Without a change of state, an agent that does not probe a target
	// hears of its latency only through push/pull (every 5s here): three
	// points in its history take a few rounds.
	const minHeard = 3
	var problem string
	ok := mono.Poll(context.Background(), 60*time.Second, 50*time.Millisecond, func() bool {
		problem = ""
		heard := 0
		for _, a := range fleet {
			for _, tg := range apiTargets(t, a) {
				where := fmt.Sprintf("agent %s, target %s", a.Self().Node, tg.Name)
				if len(tg.Results) != 2 {
					problem = fmt.Sprintf("%s: results of %d regions, want 2", where, len(tg.Results))
					return false
				}
				for _, r := range tg.Results {
					if r.Agent == "" || r.Latency <= 0 {
						problem = fmt.Sprintf("%s: %s's latency %d ns (agent %q)", where, r.Region, r.Latency, r.Agent)
						return false
					}
				}
				want := 1
				if tg.Local == nil {
					want = minHeard
					heard++
				}
				if len(tg.History) < want {
					problem = fmt.Sprintf("%s: %d points of history, want %d (probed here: %v)", where, len(tg.History), want, tg.Local != nil)
					return false
				}
				for _, p := range tg.History {
					if p.Latency <= 0 {
						problem = fmt.Sprintf("%s: a point of history with latency %d ns", where, p.Latency)
						return false
					}
				}
			}
		}
		// Each target has one prober in eu-west: the other eu-west agent
		// draws its history from what it hears.
		if heard != 3 {
			problem = fmt.Sprintf("%d targets not probed by one of the eu-west agents, want 3", heard)
			return false
		}
		return true
	})
	if !ok {
		t.Fatalf("after 60s, not every agent shows every region's latency and a history of every target: %s", problem)
	}
}
