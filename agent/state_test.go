package agent

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/cluster"
	"github.com/vantage-probe/vantage/internal/testenv"
	"github.com/vantage-probe/vantage/probe/probetest"
)

// stateAgent is an agent of a state test, with what stops it.
type stateAgent struct {
	*Agent
	cancel context.CancelFunc
	done   chan error
}

// startStateAgent starts one agent keeping its state in stateDir, joined
// to seed ("" for none).
func startStateAgent(t *testing.T, seed, node, region, stateDir, targets string) *stateAgent {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vantage.toml")
	join := ""
	if seed != "" {
		join = fmt.Sprintf("join = [%q]\n", seed)
	}
	writeConfig(t, path, fmt.Sprintf(`
[agent]
node = %q
region = %q
listen = "127.0.0.1:0"
state_dir = %q
[cluster]
bind = "127.0.0.1:0"
%s
[quorum]
min_regions = 2
[defaults]
interval = "1s"
timeout = "500ms"
%s`, node, region, stateDir, join, targets))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{ConfigPath: path, Config: cfg, Version: "test", WatchEvery: -1, ClusterTuning: fastCluster,
		StateFlushEvery: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sa := &stateAgent{Agent: a, cancel: cancel, done: make(chan error, 1)}
	go func() { sa.done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-sa.done })
	return sa
}

// startStateFleet starts one agent per region, each on its own state
// directory under root, joined to the first.
func startStateFleet(t *testing.T, root string, regions []string, targets string) []*stateAgent {
	t.Helper()
	var out []*stateAgent
	var plain []*Agent
	seed := ""
	for i, r := range regions {
		node := fmt.Sprintf("%s-%d", r, i)
		a := startStateAgent(t, seed, node, r, filepath.Join(root, node), targets)
		if seed == "" {
			seed = a.Cluster().LocalAddr()
		}
		out = append(out, a)
		plain = append(plain, a.Agent)
	}
	waitAlive(t, plain)
	return out
}

// incidentsOf returns the incidents agent a knows of target.
func incidentsOf(a *Agent, target string) []cluster.Incident {
	var out []cluster.Incident
	for _, in := range a.Incidents() {
		if in.Target == target {
			out = append(out, in)
		}
	}
	return out
}

// TestFleetRestartKeepsIncidentsAndSLO: a three-region fleet has a
// resolved incident (web) and two open ones (api, db). Every agent is
// killed at once, as a power cut would; db recovers while the fleet is
// down. Started again on the same state directories, every agent has the
// incidents and the SLO figures back; api's incident continues with the
// same ID, db's resolves (the same ID, closed with what is known: when the
// fleet first saw db up again), nothing is opened twice; and when api
// recovers, its one incident resolves.
func TestFleetRestartKeepsIncidentsAndSLO(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three agents twice")
	}
	var fail [3]atomic.Bool // api, db, web
	names := []string{"api", "db", "web"}
	srv, err := probetest.StartHTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i, n := range names {
			if r.URL.Path == "/"+n && fail[i].Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var targets strings.Builder
	for _, n := range names {
		fmt.Fprintf(&targets, "[[target]]\nname = %q\ntype = \"http\"\nurl = \"%s/%s\"\n", n, srv.URL, n)
	}
	root := t.TempDir()
	regions := []string{"eu-west", "us-east", "ap-south"}
	fleet := startStateFleet(t, root, regions, targets.String())

	openOn := func(fleet []*stateAgent, target string) func() bool {
		return func() bool {
			for _, a := range fleet {
				ins := incidentsOf(a.Agent, target)
				if len(ins) == 0 || !ins[0].Open() {
					return false
				}
			}
			return true
		}
	}
	resolvedOn := func(fleet []*stateAgent, target string) func() bool {
		return func() bool {
			for _, a := range fleet {
				ins := incidentsOf(a.Agent, target)
				if len(ins) == 0 || ins[0].Open() {
					return false
				}
			}
			return true
		}
	}
	// web: an incident that resolves before the restart.
	fail[2].Store(true)
	testenv.Poll(t, 30*time.Second, "web's incident on every agent", openOn(fleet, "web"))
	fail[2].Store(false)
	testenv.Poll(t, 30*time.Second, "web's incident resolved on every agent", resolvedOn(fleet, "web"))
	// api and db: open at the crash.
	fail[0].Store(true)
	fail[1].Store(true)
	testenv.Poll(t, 30*time.Second, "api's incident on every agent", openOn(fleet, "api"))
	testenv.Poll(t, 30*time.Second, "db's incident on every agent", openOn(fleet, "db"))

	before := map[string]cluster.Incident{}
	for _, n := range names {
		ins := incidentsOf(fleet[0].Agent, n)
		if len(ins) != 1 {
			t.Fatalf("before the restart %s has %d incidents: %+v", n, len(ins), ins)
		}
		before[n] = ins[0]
	}
	sloBefore := map[string]*cluster.SLOStatus{}
	for _, n := range names {
		st, _ := fleet[0].Cluster().Status(n)
		sloBefore[n] = st.SLO
	}
	// Every agent has written what it knows now.
	written := time.Now()
	testenv.Poll(t, 10*time.Second, "every agent to write its state", func() bool {
		for _, a := range fleet {
			if v := a.Self().State; v == nil || !v.LastWrite.After(written) {
				return false
			}
		}
		return true
	})

	// The power cut: every agent killed at once, no Leave, no last flush.
	for _, a := range fleet {
		a.Kill()
	}
	for _, a := range fleet {
		a.cancel()
		err := <-a.done
		a.done <- nil // for the cleanup
		if err != nil {
			t.Logf("killed agent %s: Run returned %v", a.Config().Agent.Node, err)
		}
	}
	fail[1].Store(false) // db recovers while nobody watches

	fleet = startStateFleet(t, root, regions, targets.String())
	for _, a := range fleet {
		for _, n := range names {
			ins := incidentsOf(a.Agent, n)
			if len(ins) != 1 || ins[0].ID != before[n].ID {
				t.Fatalf("%s after the restart: %s incidents %+v, want the one %s", a.Config().Agent.Node, n, ins, before[n].ID)
			}
		}
		if ins := incidentsOf(a.Agent, "web"); ins[0].Open() || ins[0].ResolvedAt.Sub(before["web"].ResolvedAt).Abs() > time.Millisecond {
			t.Errorf("web's incident after the restart: %+v, want it resolved at %v (gossip carries milliseconds)", ins[0], before["web"].ResolvedAt)
		}
	}
	for _, n := range names {
		st, _ := fleet[0].Cluster().Status(n)
		b, s := sloBefore[n], st.SLO
		if s.Observed < b.Observed || s.Downtime < b.Downtime {
			t.Errorf("%s: SLO after the restart observed %v downtime %v, before %v and %v: the figures did not come back",
				n, s.Observed, s.Downtime, b.Observed, b.Downtime)
		}
	}

	testenv.Poll(t, 30*time.Second, "db's incident resolved on every agent", resolvedOn(fleet, "db"))
	// api stays down: its incident goes on; give the fleet time to have
	// evaluated it (a verdict down again) before api recovers.
	testenv.Poll(t, 30*time.Second, "api down again", func() bool {
		st, _ := fleet[0].Cluster().Status("api")
		return st.Verdict == "down" && st.Open != nil
	})
	fail[0].Store(false)
	testenv.Poll(t, 30*time.Second, "api's incident resolved on every agent", resolvedOn(fleet, "api"))
	for _, a := range fleet {
		for _, n := range names {
			ins := incidentsOf(a.Agent, n)
			if len(ins) != 1 || ins[0].ID != before[n].ID || ins[0].Open() {
				t.Errorf("%s at the end: %s incidents %+v, want the one %s, resolved", a.Config().Agent.Node, n, ins, before[n].ID)
			}
		}
		db := incidentsOf(a.Agent, "db")[0]
		if !db.ResolvedAt.After(written) {
			t.Errorf("db resolved at %v, before the restart (%v): a resolution nobody saw", db.ResolvedAt, written)
		}
	}
}
