package scale

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/vantage-probe/vantage/cluster"
)

// The default run is small and uses the demo's fast timings: it checks the
// harness and the properties (a dead agent's targets are taken over, a join
// moves only the newcomer's share, traffic is counted, a fleet converges
// with one owner per target and region). The figures for the README come
// from the VANTAGE_SCALE=1 tests in report_test.go.

func TestDiffSorted(t *testing.T) {
	for _, c := range []struct {
		a, b         []string
		gained, lost int
	}{
		{nil, nil, 0, 0},
		{nil, []string{"a", "b"}, 2, 0},
		{[]string{"a", "b"}, nil, 0, 2},
		{[]string{"a", "c", "e"}, []string{"b", "c", "d", "e", "f"}, 3, 1},
		{[]string{"a", "b"}, []string{"a", "b"}, 0, 0},
	} {
		g, l := diffSorted(c.a, c.b)
		if g != c.gained || l != c.lost {
			t.Errorf("diffSorted(%v, %v) = %d, %d; want %d, %d", c.a, c.b, g, l, c.gained, c.lost)
		}
	}
}

func newNetTransport(t *testing.T) *countingTransport {
	t.Helper()
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{"127.0.0.1"}, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	ct := newCountingTransport(nt)
	t.Cleanup(func() { _ = ct.Shutdown() })
	return ct
}

// The counting transport counts what a real transport sends: datagrams,
// and bytes written on streams whichever side dialled.
func TestCountingTransportCountsWhatIsSent(t *testing.T) {
	a, b := newNetTransport(t), newNetTransport(t)
	bAddr := memberlist.Address{Addr: fmt.Sprintf("127.0.0.1:%d", b.NodeAwareTransport.(*memberlist.NetTransport).GetAutoBindPort()), Name: "b"}

	if _, err := a.WriteToAddress(make([]byte, 100), bAddr); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-b.PacketCh():
		if len(p.Buf) != 100 {
			t.Fatalf("b received %d bytes, want 100", len(p.Buf))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the datagram never arrived")
	}

	conn, err := a.DialAddressTimeout(bAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(make([]byte, 50)); err != nil {
		t.Fatal(err)
	}
	var in net.Conn
	select {
	case in = <-b.StreamCh():
	case <-time.After(10 * time.Second):
		t.Fatal("the stream never arrived")
	}
	defer in.Close()
	if _, err := io.ReadFull(in, make([]byte, 50)); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Write(make([]byte, 30)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(conn, make([]byte, 30)); err != nil {
		t.Fatal(err)
	}

	if got := a.traffic(); got != (Traffic{Packets: 1, PacketBytes: 100, Streams: 1, StreamBytes: 50}) {
		t.Errorf("a sent %+v", got)
	}
	if got := b.traffic(); got != (Traffic{Streams: 1, StreamBytes: 30}) {
		t.Errorf("b sent %+v", got)
	}
}

func TestDeadAgentIsDetectedAndItsTargetsReassigned(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, c := range []struct {
		regions   []string
		perRegion int
		mode      Mode
		kills     int
		measure   func(context.Context, Options, Mode, int) (DeathRun, error)
	}{
		{[]string{"eu"}, 3, Kill, 2, MeasureSecondDeath}, // one fleet, the victim replaced
		{[]string{"eu", "us"}, 5, Freeze, 1, MeasureDeath},
	} {
		run, err := c.measure(ctx, Options{Regions: c.regions, PerRegion: c.perRegion, Targets: 300, Timing: Demo()}, c.mode, c.kills)
		if err != nil {
			t.Fatalf("%d agents, %s: %v", len(c.regions)*c.perRegion, c.mode, err)
		}
		if len(run.Samples) != c.kills {
			t.Fatalf("%d samples, want %d", len(run.Samples), c.kills)
		}
		for _, s := range run.Samples {
			t.Logf("%d agents, %s %s: detected %v, by all %v, reassigned %v", run.Agents, c.mode, s.Victim,
				s.Detected.Round(time.Millisecond), s.AllDetected.Round(time.Millisecond), s.Reassigned.Round(time.Millisecond))
			// Nobody takes a target over before someone in its region
			// has declared the owner dead: a suspect keeps its targets.
			if s.Detected <= 0 || s.AllDetected < s.Detected || s.Reassigned < s.Detected {
				t.Errorf("%s: detected %v, by all %v, reassigned %v: want 0 < detected <= by all, detected <= reassigned",
					s.Victim, s.Detected, s.AllDetected, s.Reassigned)
			}
		}
	}
}

func TestJoinLeaveAndCrashMoveOnlyTheirShare(t *testing.T) {
	t.Parallel()
	const targets = 900
	out, err := MeasureMovement(context.Background(), Options{PerRegion: 3, Targets: targets, Timing: Demo()})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 {
		t.Fatalf("%d steps, want 3", len(out))
	}
	for _, s := range out {
		t.Logf("%s of %s (%d -> %d agents): moved %d, pure %d, ideal %.0f, churn %d, elsewhere %d, took %v",
			s.Event, s.Agent, s.Before, s.After, s.Moved, s.Pure, s.Ideal, s.Churn, s.Elsewhere, s.Took.Round(time.Millisecond))
		if s.Moved != s.Pure {
			t.Errorf("%s: %d targets moved on the running cluster, shard.Assign moves %d", s.Event, s.Moved, s.Pure)
		}
		if s.Elsewhere != 0 {
			t.Errorf("%s in one region moved %d targets in other regions", s.Event, s.Elsewhere)
		}
		if s.Churn < s.Moved {
			t.Errorf("%s: churn %d below the %d targets moved: the Assigned accounting is off", s.Event, s.Churn, s.Moved)
		}
		// Rendezvous hashing moves T/N on average; 900 targets keep the
		// spread well inside a factor of two.
		if float64(s.Moved) < s.Ideal/2 || float64(s.Moved) > s.Ideal*2 {
			t.Errorf("%s moved %d targets, ideal %.0f", s.Event, s.Moved, s.Ideal)
		}
	}
}

func TestGossipTrafficIsCountedAndChangesCostMore(t *testing.T) {
	t.Parallel()
	// Small: every state change is sent to every member, and memberlist
	// compresses each packet, which the race detector slows a lot.
	ws, err := MeasureGossip(context.Background(), Options{PerRegion: 2, Targets: 150, Timing: Demo(),
		TargetInterval: 2 * time.Second, TargetTimeout: 500 * time.Millisecond}, time.Second,
		[]GossipPhase{{Name: "idle", Window: 3 * time.Second}, {Name: "changing", Window: 3 * time.Second, ChangeRate: 2}})
	if err != nil {
		t.Fatal(err)
	}
	idle, changing := ws[0], ws[1]
	for _, w := range ws {
		pb, sb, pps := w.PerAgentRate()
		t.Logf("%s: %d changes, per agent %.0f B/s packets + %.0f B/s streams, %.1f packets/s, fresh at leaders %.3f",
			w.Name, w.Changes, pb, sb, pps, w.FreshAtLeaders)
		for i, a := range w.PerAgent {
			if a.Packets == 0 {
				t.Errorf("%s: agent %d sent no packets (probes and heartbeats never stop)", w.Name, i)
			}
		}
	}
	if changing.Changes == 0 {
		t.Fatal("no state changes were played")
	}
	if changing.Total().PacketBytes <= idle.Total().PacketBytes {
		t.Errorf("%d state changes sent %d packet bytes, no more than idle's %d", changing.Changes,
			changing.Total().PacketBytes, idle.Total().PacketBytes)
	}
	if s := idle.Total().Add(changing.Total()).Streams; s == 0 {
		t.Error("no push/pull stream in 6 s with a 5 s push/pull interval")
	}
	// A vote a loaded machine dropped goes stale until anti-entropy
	// brings it: all votes must be fresh at the end of the idle window or
	// soon after, by push/pull.
	for _, w := range ws {
		if w.FreshAllAfter < 0 {
			t.Errorf("%s: %.3f of votes fresh at the leaders, and not all within two push/pull intervals", w.Name, w.FreshAtLeaders)
		} else if w.FreshAllAfter > 0 {
			t.Logf("%s: %.3f of votes fresh at the leaders at the end, all %v later", w.Name, w.FreshAtLeaders, w.FreshAllAfter.Round(time.Millisecond))
		}
	}
}

func TestSmallFleetConvergesWithOneOwnerPerRegion(t *testing.T) {
	t.Parallel()
	// Observations stay fresh for 2 x 1s + 250ms + 2s: the check at 5s
	// needs heartbeats and probing to have kept them so.
	r, err := Simulate(context.Background(), Options{PerRegion: 3, Targets: 150, Timing: Demo(),
		TargetInterval: time.Second, TargetTimeout: 250 * time.Millisecond}, 15*time.Second, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
	if r.OwnershipProblems != 0 {
		t.Errorf("%d (target, region) pairs without exactly one owner after convergence", r.OwnershipProblems)
	}
	if r.ResultsAtLeaders == 0 {
		t.Errorf("leaders did not hold every region's result within %v", r.ResultsLimit)
	}
	switch {
	case r.FreshAtLeaders == 1:
	case r.FreshAllAfter < 0:
		t.Errorf("%.3f of votes fresh at the leaders %v after the first round, and not all within two push/pull intervals", r.FreshAtLeaders, r.FreshCheck)
	default:
		t.Logf("%.3f of votes fresh at the leaders %v after the first round, all %v later", r.FreshAtLeaders, r.FreshCheck, r.FreshAllAfter.Round(time.Millisecond))
	}
	// Every agent of the newcomer's region must recompute before the fleet
	// converges again (the others' shares do not change).
	if perRegion := r.Agents/r.Regions + 1; r.Recomputes < perRegion {
		t.Errorf("%d assignment recomputes for a join, want one per agent of its region (%d) at least", r.Recomputes, perRegion)
	}
}

// A targeted fleet (observations to their holders only, as from
// cluster.Config.TargetedFrom agents on) keeps every leader's votes fresh,
// and recovers from a join and a death: every (target, region) owned again
// and every leader holding every region's fresh vote.
func TestTargetedFleetRecoversFromJoinAndDeath(t *testing.T) {
	t.Parallel()
	demo := Demo()
	targeted := Timing{Name: "demo, targeted", Tune: func(c *cluster.Config) {
		demo.Tune(c)
		c.TargetedFrom, c.Standbys = 2, 1
	}}
	ws, err := MeasureGossip(context.Background(), Options{PerRegion: 2, Targets: 150, Timing: targeted,
		TargetInterval: 2 * time.Second, TargetTimeout: 500 * time.Millisecond}, time.Second,
		[]GossipPhase{{Name: "changing", Window: 3 * time.Second, ChangeRate: 2},
			{Name: "join", Window: time.Second, Event: EventJoin},
			{Name: "kill", Window: time.Second, Event: EventKill}})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		t.Logf("%s: %d changes, fresh at leaders %.3f (all after %v), recovered %v, detected %v",
			w.Name, w.Changes, w.FreshAtLeaders, w.FreshAllAfter, w.Recovered, w.Detected)
		if w.FreshAllAfter < 0 {
			t.Errorf("%s: %.3f of votes fresh at the leaders, and not all within two push/pull intervals", w.Name, w.FreshAtLeaders)
		}
		if w.Event != "" && w.Recovered <= 0 {
			t.Errorf("%s: not recovered within %v", w.Name, recoverLimit)
		}
	}
	if ws[2].Detected <= 0 {
		t.Error("the kill was not seen by every live agent")
	}
}
