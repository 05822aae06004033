package composetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/internal/mono"
)

// The demo fleet, as deploy/compose/docker-compose.yml defines it.
const (
	backboneSubnet = "10.213.0.0/24"
	cutRegion      = "ap-south"
	wantTargets    = 9 // config/targets.toml: three on the farm, one per agent
)

func fleetAgents() []string {
	return []string{"eu-west-1", "eu-west-2", "us-east-1", "us-east-2", "ap-south-1", "ap-south-2"}
}

// The JSON API as SPEC.md and exporter/server.go define it; decoded into
// local types so the test checks the wire contract, not Go structs.
type member struct {
	Name     string `json:"name"`
	Region   string `json:"region"`
	Addr     string `json:"addr"`
	State    string `json:"state"`
	Isolated bool   `json:"isolated"`
}

type incident struct {
	ID         string    `json:"id"`
	Target     string    `json:"target"`
	StartedAt  time.Time `json:"started_at"`
	DetectedAt time.Time `json:"detected_at"`
	ResolvedAt time.Time `json:"resolved_at"`
	Regions    []string  `json:"regions"`
	Leader     string    `json:"leader"`
}

func (i incident) open() bool { return i.ResolvedAt.IsZero() }

func (i incident) String() string {
	state := "open"
	if !i.open() {
		state = "resolved " + i.ResolvedAt.Format(time.TimeOnly)
	}
	return fmt.Sprintf("%s (leader %s, regions %v, started %s, %s)", i.ID, i.Leader, i.Regions,
		i.StartedAt.Format(time.TimeOnly), state)
}

type target struct {
	Name    string `json:"name"`
	Verdict string `json:"verdict"`
	Reason  string `json:"verdict_reason"`
}

type self struct {
	Node     string `json:"node"`
	Region   string `json:"region"`
	Isolated bool   `json:"isolated"`
}

// hostedIn reports whether a demo target lives on an agent of region: the
// agents' own targets are named after them ("ap-south-1-http").
func hostedIn(target, region string) bool { return strings.HasPrefix(target, region+"-") }

// fleet is one running compose project.
type fleet struct {
	t        *testing.T
	root     string   // repository root
	dir      string   // deploy/compose
	compose  []string // "docker compose" or "docker-compose"
	project  string
	env      []string
	client   *http.Client
	ids      map[string]string // service -> container id
	addrs    map[string]string // agent -> host:port on its region network, reachable from the host
	backbone string            // the backbone network's name
	start    time.Time
}

func TestFleetSurvivesRegionPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a seven-container fleet; not in -short")
	}
	if os.Getenv("VANTAGE_DOCKER_TESTS") != "1" {
		t.Skip("set VANTAGE_DOCKER_TESTS=1 to run (builds the image, runs the compose fleet for two to four minutes)")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reaches containers at their bridge addresses, which only Linux hosts route")
	}
	if out, err := exec.Command("docker", "info").CombinedOutput(); err != nil {
		t.Skipf("docker info: %v: %s", err, firstLine(out))
	}
	f := newFleet(t)
	ctx := t.Context()
	// Strict: a healthy target's verdict may not even turn unknown during
	// the partition (by default it must never be down and must settle on up).
	strict := os.Getenv("VANTAGE_DOCKER_STRICT") == "1"

	f.step("make image", func() { f.mustRun(ctx, f.root, "make", "image") })
	f.checkSubnetFree(ctx)
	t.Cleanup(f.down)
	f.step("compose up", func() { f.composeMust(ctx, "up", "-d") })
	f.discover(ctx)

	f.step("all healthy, six members everywhere", func() {
		f.eventually(ctx, 120*time.Second, "all containers healthy", func() (bool, string) {
			var bad []string
			for svc, id := range f.ids {
				if h := f.health(ctx, id); h != "healthy" {
					bad = append(bad, svc+"="+h)
				}
			}
			sort.Strings(bad)
			return len(bad) == 0, strings.Join(bad, ", ")
		})
		for _, a := range fleetAgents() {
			f.eventually(ctx, 60*time.Second, a+" sees 6 alive members", func() (bool, string) {
				return f.aliveMembers(ctx, a, 6)
			})
		}
	})

	// Agents and the farm start a few hundred milliseconds apart, so the
	// first probes may fail and open short, real incidents. Once the fleet
	// has settled every verdict is up and no agent may still show an
	// incident open: a resolution gossiped to only some agents is repaired
	// by the next push/pull (20 s), so this waits up to several of those.
	f.step("baseline: every target up, no open incident anywhere", func() {
		f.eventually(ctx, 90*time.Second, "eu-west-1: all targets up", func() (bool, string) {
			ts, err := f.targets(ctx, "eu-west-1")
			if err != nil {
				return false, err.Error()
			}
			if len(ts) != wantTargets {
				return false, fmt.Sprintf("%d targets, want %d", len(ts), wantTargets)
			}
			for _, tg := range ts {
				if tg.Verdict != "up" {
					return false, fmt.Sprintf("%s is %s: %s", tg.Name, tg.Verdict, tg.Reason)
				}
			}
			return true, ""
		})
		t0 := time.Now()
		f.eventually(ctx, 90*time.Second, "no agent shows an open incident on a healthy fleet", func() (bool, string) {
			var open []string
			for _, a := range fleetAgents() {
				ins, err := f.openIncidents(ctx, a, nil)
				if err != nil {
					return false, err.Error()
				}
				if len(ins) > 0 {
					open = append(open, a+": "+join(ins))
				}
			}
			return len(open) == 0, strings.Join(open, "\n")
		})
		t.Logf("every agent free of open incidents %v after eu-west-1 saw all targets up", time.Since(t0).Round(100*time.Millisecond))
	})

	// Cut ap-south off the backbone. It keeps its own network (and so the
	// farm) but reaches no other region: eu-west and us-east rightly see its
	// agents' targets down (they cannot reach them); nothing else may fail.
	cut := f.regionAgents(cutRegion)
	var cutTargets []string // targets on the cut agents: the others cannot reach them
	ts, err := f.targets(ctx, "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range ts {
		if hostedIn(tg.Name, cutRegion) {
			cutTargets = append(cutTargets, tg.Name)
		}
	}
	if len(cutTargets) == 0 {
		t.Fatalf("no target hosted in %s among %v", cutRegion, ts)
	}
	backboneIPs := map[string]string{}
	var cutAt time.Time
	f.step("cut "+cutRegion+" off the backbone", func() {
		for _, a := range cut {
			backboneIPs[a] = f.networkIP(ctx, f.ids[a], f.backbone)
		}
		cutAt = time.Now()
		for _, a := range cut {
			f.mustRun(ctx, f.dir, "docker", "network", "disconnect", f.backbone, f.ids[a])
		}
	})

	f.step("partitioned: no false incident, "+cutRegion+" isolated", func() {
		isolated := map[string]time.Duration{} // agent -> when, since the cut
		sawDown := map[string]time.Duration{}  // target -> when, since the cut
		unknown := map[string]int{}
		lastOK := map[string]time.Time{} // agent -> its API's last answer
		for _, a := range fleetAgents() {
			lastOK[a] = cutAt
		}
		polls := 0
		up := func(name string) bool { return !hostedIn(name, cutRegion) }
		// Poll for at least 30 s, until the fleet has called the cut agents'
		// targets down and until every cut agent has called itself isolated.
		// An agent that sees no other region alive is isolated, but a cut-off
		// memberlist is slow to declare the others dead (its own health
		// score stretches its timeouts, up to 8x), so past 120 s one isolated
		// agent is enough: the others must still raise no incident.
		const patience = 120 * time.Second
		for time.Since(cutAt) < 30*time.Second || len(sawDown) < len(cutTargets) ||
			(len(isolated) < len(cut) && time.Since(cutAt) < patience) {
			if time.Since(cutAt) > patience+60*time.Second {
				t.Fatalf("after %v of partition: targets seen down %v (want all of %v), isolated %v",
					time.Since(cutAt).Round(time.Second), sawDown, cutTargets, isolated)
			}
			polls++
			// An API call may time out on a loaded machine: skip the poll
			// for that agent, fail only when it stays silent.
			answered := func(a string, err error) bool {
				if err == nil {
					lastOK[a] = time.Now()
					return true
				}
				if time.Since(lastOK[a]) > 30*time.Second {
					t.Fatalf("%s: no answer for 30 s: %v", a, err)
				}
				return false
			}
			for _, a := range []string{"eu-west-1", "us-east-1"} {
				ins, err := f.incidents(ctx, a)
				if !answered(a, err) {
					continue
				}
				for _, in := range ins {
					if in.open() && up(in.Target) {
						t.Errorf("%s: false incident for a target that is up: %s", a, in)
					}
				}
			}
			if ts, err := f.targets(ctx, "eu-west-1"); answered("eu-west-1", err) {
				for _, tg := range ts {
					switch {
					case hostedIn(tg.Name, cutRegion) && tg.Verdict == "down":
						if _, ok := sawDown[tg.Name]; !ok {
							sawDown[tg.Name] = time.Since(cutAt).Round(100 * time.Millisecond)
						}
					case up(tg.Name) && tg.Verdict == "down":
						t.Errorf("eu-west-1: %s is down but only %s is cut off: %s", tg.Name, cutRegion, tg.Reason)
					case up(tg.Name) && tg.Verdict != "up":
						unknown[tg.Name]++
						if strict {
							t.Errorf("eu-west-1: %s is %s (not up) while only %s is cut off: %s", tg.Name, tg.Verdict, cutRegion, tg.Reason)
						}
					}
				}
			}
			for _, a := range cut {
				if _, ok := isolated[a]; !ok {
					if st, err := f.status(ctx, a); answered(a, err) && st.Isolated {
						isolated[a] = time.Since(cutAt).Round(100 * time.Millisecond)
					}
				}
				ins, err := f.incidents(ctx, a)
				if !answered(a, err) {
					continue
				}
				for _, in := range ins {
					// The fleet's incidents on the cut agents' own targets may
					// reach one of them (the cut is two commands, not one);
					// none may come from the cut region itself.
					if in.StartedAt.After(cutAt) && strings.HasPrefix(in.Leader, cutRegion+"-") {
						t.Errorf("%s: the cut-off region raised an incident: %s", a, in)
					}
					if in.open() && up(in.Target) {
						t.Errorf("%s: false incident for a target that is up: %s", a, in)
					}
				}
			}
			if t.Failed() {
				t.FailNow()
			}
			_ = mono.Sleep(ctx, time.Second)
		}
		if len(isolated) == 0 {
			t.Fatalf("no agent of %v called itself isolated within %v", cut, patience)
		}
		t.Logf("partition: %d polls over %v; isolated after %v; down (true incidents) after %v; up targets seen unknown (never down) %v",
			polls, time.Since(cutAt).Round(time.Second), isolated, sawDown, unknown)
		// A verdict may be unknown while leadership moves off the dead
		// agents; it must settle on up.
		f.eventually(ctx, 30*time.Second, "eu-west-1: targets outside "+cutRegion+" up", func() (bool, string) {
			ts, err := f.targets(ctx, "eu-west-1")
			if err != nil {
				return false, err.Error()
			}
			for _, tg := range ts {
				if !hostedIn(tg.Name, cutRegion) && tg.Verdict != "up" {
					return false, fmt.Sprintf("%s is %s: %s", tg.Name, tg.Verdict, tg.Reason)
				}
			}
			return true, ""
		})
	})

	// Reconnect with the same backbone address (each agent advertises it)
	// and the service name (the other agents probe it by that name).
	var healAt time.Time
	f.step("reconnect "+cutRegion, func() {
		healAt = time.Now()
		for _, a := range cut {
			f.mustRun(ctx, f.dir, "docker", "network", "connect", "--ip", backboneIPs[a], "--alias", a, f.backbone, f.ids[a])
		}
	})
	f.step(cutRegion+" rejoins", func() {
		for _, a := range []string{"eu-west-1", cut[0]} {
			f.eventually(ctx, 60*time.Second, a+" sees 6 alive members after the heal", func() (bool, string) {
				return f.aliveMembers(ctx, a, 6)
			})
		}
		t.Logf("6 alive members %v after reconnecting", time.Since(healAt).Round(100*time.Millisecond))
		for _, a := range cut {
			f.eventually(ctx, 60*time.Second, a+" no longer isolated", func() (bool, string) {
				st, err := f.status(ctx, a)
				if err != nil {
					return false, err.Error()
				}
				return !st.Isolated, "isolated"
			})
		}
		f.eventually(ctx, 60*time.Second, "eu-west-1: all targets up, incidents resolved", func() (bool, string) {
			ts, err := f.targets(ctx, "eu-west-1")
			if err != nil {
				return false, err.Error()
			}
			for _, tg := range ts {
				if tg.Verdict != "up" {
					return false, fmt.Sprintf("%s is %s: %s", tg.Name, tg.Verdict, tg.Reason)
				}
			}
			open, err := f.openIncidents(ctx, "eu-west-1", nil)
			if err != nil {
				return false, err.Error()
			}
			if len(open) > 0 {
				return false, "still open: " + join(open)
			}
			return true, ""
		})
	})
}

func newFleet(t *testing.T) *fleet {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root: %v", err)
	}
	f := &fleet{
		t:       t,
		root:    root,
		dir:     filepath.Join(root, "deploy", "compose"),
		project: "vantagetest" + strconv.FormatInt(time.Now().UnixNano()%1e9, 10),
		// The published status-page port: any free one, so a fleet or an
		// agent already on 9115 does not stop the test.
		env: append(os.Environ(), "VANTAGE_HTTP_PORT=127.0.0.1:"),
		// Generous: the machine may be busy with other builds and tests.
		client: &http.Client{Timeout: 10 * time.Second},
		start:  time.Now(),
	}
	switch {
	case exec.Command("docker", "compose", "version").Run() == nil:
		f.compose = []string{"docker", "compose"}
	case exec.Command("docker-compose", "version").Run() == nil:
		f.compose = []string{"docker-compose"}
	default:
		t.Skip("neither `docker compose` nor docker-compose is installed")
	}
	t.Logf("project %s with %s", f.project, strings.Join(f.compose, " "))
	return f
}

// step runs one phase and logs how long it took.
func (f *fleet) step(name string, fn func()) {
	f.t.Helper()
	t0 := time.Now()
	fn()
	f.t.Logf("%-45s %6.1fs (at %5.1fs)", name, time.Since(t0).Seconds(), time.Since(f.start).Seconds())
}

func (f *fleet) run(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = f.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return out.String(), nil
}

func (f *fleet) mustRun(ctx context.Context, dir, name string, args ...string) string {
	f.t.Helper()
	out, err := f.run(ctx, dir, name, args...)
	if err != nil {
		f.t.Fatalf("%v\n%s", err, out)
	}
	return out
}

func (f *fleet) composeArgs(args ...string) []string {
	return append(append(f.compose[1:], "-p", f.project, "-f", "docker-compose.yml"), args...)
}

func (f *fleet) composeMust(ctx context.Context, args ...string) string {
	f.t.Helper()
	return f.mustRun(ctx, f.dir, f.compose[0], f.composeArgs(args...)...)
}

// down always runs, with its own time limit: the test's context is
// cancelled by the time cleanups run.
func (f *fleet) down() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if f.t.Failed() {
		out, _ := f.run(ctx, f.dir, f.compose[0], f.composeArgs("logs", "--no-color", "--tail=60")...)
		f.t.Logf("fleet logs (last lines of each container):\n%s", out)
	}
	t0 := time.Now()
	if out, err := f.run(ctx, f.dir, f.compose[0], f.composeArgs("down", "-v", "--remove-orphans", "-t", "10")...); err != nil {
		f.t.Errorf("tear down: %v\n%s", err, out)
	}
	f.t.Logf("%-45s %6.1fs", "compose down", time.Since(t0).Seconds())
}

// checkSubnetFree fails early, with the way out, when another fleet (the
// demo, left running) holds the backbone's fixed subnet.
func (f *fleet) checkSubnetFree(ctx context.Context) {
	ids := strings.Fields(f.mustRun(ctx, f.dir, "docker", "network", "ls", "-q"))
	if len(ids) == 0 {
		return
	}
	out := f.mustRun(ctx, f.dir, "docker", append([]string{"network", "inspect", "-f",
		"{{.Name}} {{range .IPAM.Config}}{{.Subnet}} {{end}}"}, ids...)...)
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) > 1 && slices.Contains(fields[1:], backboneSubnet) {
			f.t.Fatalf("network %s already uses the demo fleet's backbone subnet %s; stop that fleet first "+
				"(docker-compose -p PROJECT down)", fields[0], backboneSubnet)
		}
	}
}

// discover finds each service's container, the backbone network and the
// address the host reaches each agent at.
func (f *fleet) discover(ctx context.Context) {
	f.ids = map[string]string{}
	f.addrs = map[string]string{}
	for _, svc := range append(fleetAgents(), "farm") {
		id := strings.TrimSpace(f.composeMust(ctx, "ps", "-q", svc))
		if id == "" {
			f.t.Fatalf("no container for service %s", svc)
		}
		f.ids[svc] = id
	}
	for _, a := range fleetAgents() {
		nets := f.networks(ctx, f.ids[a])
		region := a[:strings.LastIndex(a, "-")]
		for name, ip := range nets {
			switch {
			case strings.HasSuffix(name, "_"+region):
				f.addrs[a] = ip + ":9115"
			case strings.HasSuffix(name, "_backbone"):
				f.backbone = name
			}
		}
		if f.addrs[a] == "" || f.backbone == "" {
			f.t.Fatalf("%s: networks %v: want one ending in _%s and one in _backbone", a, nets, region)
		}
	}
}

func (f *fleet) networks(ctx context.Context, id string) map[string]string {
	out := f.mustRun(ctx, f.dir, "docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", id)
	var nets map[string]struct {
		IPAddress string `json:"IPAddress"`
	}
	if err := json.Unmarshal([]byte(out), &nets); err != nil {
		f.t.Fatalf("docker inspect %s networks: %v: %s", id, err, out)
	}
	m := map[string]string{}
	for name, n := range nets {
		m[name] = n.IPAddress
	}
	return m
}

func (f *fleet) networkIP(ctx context.Context, id, network string) string {
	ip := f.networks(ctx, id)[network]
	if ip == "" {
		f.t.Fatalf("container %s has no address on %s", id, network)
	}
	return ip
}

func (f *fleet) health(ctx context.Context, id string) string {
	out, err := f.run(ctx, f.dir, "docker", "inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{else}}no healthcheck{{end}}", id)
	if err != nil {
		return err.Error()
	}
	return strings.TrimSpace(out)
}

func (f *fleet) regionAgents(region string) []string {
	var out []string
	for _, a := range fleetAgents() {
		if strings.HasPrefix(a, region+"-") {
			out = append(out, a)
		}
	}
	return out
}

func (f *fleet) get(ctx context.Context, agent, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+f.addrs[agent]+path, nil)
	if err != nil {
		return err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", agent, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s", agent, path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("%s %s: decode: %w", agent, path, err)
	}
	return nil
}

func (f *fleet) members(ctx context.Context, agent string) ([]member, error) {
	var body struct {
		Members []member `json:"members"`
	}
	err := f.get(ctx, agent, "/api/v1/members", &body)
	return body.Members, err
}

func (f *fleet) incidents(ctx context.Context, agent string) ([]incident, error) {
	var body struct {
		Incidents []incident `json:"incidents"`
	}
	err := f.get(ctx, agent, "/api/v1/incidents", &body)
	return body.Incidents, err
}

func (f *fleet) targets(ctx context.Context, agent string) ([]target, error) {
	var body struct {
		Targets []target `json:"targets"`
	}
	err := f.get(ctx, agent, "/api/v1/targets", &body)
	return body.Targets, err
}

func (f *fleet) status(ctx context.Context, agent string) (self, error) {
	var s self
	err := f.get(ctx, agent, "/api/v1/status", &s)
	return s, err
}

// openIncidents lists agent's open incidents on targets that match keep
// (nil: all).
func (f *fleet) openIncidents(ctx context.Context, agent string, keep func(string) bool) ([]incident, error) {
	ins, err := f.incidents(ctx, agent)
	if err != nil {
		return nil, err
	}
	var out []incident
	for _, in := range ins {
		if in.open() && (keep == nil || keep(in.Target)) {
			out = append(out, in)
		}
	}
	return out, nil
}

func (f *fleet) aliveMembers(ctx context.Context, agent string, want int) (bool, string) {
	ms, err := f.members(ctx, agent)
	if err != nil {
		return false, err.Error()
	}
	var alive, other []string
	for _, m := range ms {
		if m.State == "alive" {
			alive = append(alive, m.Name)
		} else {
			other = append(other, m.Name+"="+m.State)
		}
	}
	return len(alive) == want, fmt.Sprintf("alive %v, others %v", alive, other)
}

// eventually polls cond until it holds, failing the test with cond's last
// word after timeout.
func (f *fleet) eventually(ctx context.Context, timeout time.Duration, what string, cond func() (bool, string)) {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			f.t.Fatalf("%s: not within %v: %s", what, timeout, detail)
		}
		_ = mono.Sleep(ctx, 500*time.Millisecond)
	}
}

func join(ins []incident) string {
	s := make([]string, len(ins))
	for i, in := range ins {
		s[i] = in.String()
	}
	return strings.Join(s, "; ")
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}
