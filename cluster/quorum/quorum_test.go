package quorum

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// t0 is an arbitrary local "now"; nothing depends on the real clock.
var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

const (
	interval = 30 * time.Second
	timeout  = 10 * time.Second
	window   = 2*interval + timeout + DefaultSlack
)

// ob is one observation received `ago` before t0.
func ob(region, agent string, seq uint64, failing bool, ago time.Duration) Observation {
	return Observation{
		Region: region, AgentID: agent, Boot: 1, Seq: seq, Failing: failing,
		Received: t0.Add(-ago), Interval: interval, Timeout: timeout,
	}
}

// policy3x2 is three regions with two assignees each, quorum 2.
func policy3x2() Policy {
	return Policy{
		MinRegions: 2,
		Regions:    []string{"ap", "eu", "us"},
		Assignees: map[string][]string{
			"ap": {"ap1", "ap2"},
			"eu": {"eu1", "eu2"},
			"us": {"us1", "us2"},
		},
	}
}

// votes builds fresh observations from both assignees of each region: the
// value is how many of the two say failing.
func votes(failing map[string]int) []Observation {
	var obs []Observation
	for _, r := range []string{"ap", "eu", "us"} {
		n, ok := failing[r]
		if !ok {
			continue
		}
		obs = append(obs, ob(r, r+"1", 1, n >= 1, time.Second), ob(r, r+"2", 1, n >= 2, time.Second))
	}
	return obs
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{Unknown: "unknown", Up: "up", Down: "down", State(9): "State(9)"} {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", int(s), got, want)
		}
	}
	var v Verdict
	if v.State != Unknown {
		t.Error("zero Verdict is not Unknown")
	}
}

func TestEvaluateTable(t *testing.T) {
	for _, tc := range []struct {
		name      string
		failing   map[string]int // region -> failing assignees out of 2; absent: no observation
		state     State
		failingRs []string
		passingRs []string
		stale     []string
		reason    string
	}{
		{"all up", map[string]int{"ap": 0, "eu": 0, "us": 0}, Up, nil, []string{"ap", "eu", "us"}, nil,
			"0/3 regions failing < quorum 2, 3 reporting: up"},
		{"all down", map[string]int{"ap": 2, "eu": 2, "us": 2}, Down, []string{"ap", "eu", "us"}, nil, nil,
			"3/3 regions failing (ap, eu, us) >= quorum 2"},
		{"two of three", map[string]int{"ap": 0, "eu": 2, "us": 2}, Down, []string{"eu", "us"}, []string{"ap"}, nil,
			"2/3 regions failing (eu, us) >= quorum 2"},
		{"one region failing is suppressed", map[string]int{"ap": 0, "eu": 2, "us": 0}, Up, []string{"eu"}, []string{"ap", "us"}, nil,
			"1/3 regions failing (eu) < quorum 2, 3 reporting: up"},
		{"replica tie votes passing", map[string]int{"ap": 1, "eu": 1, "us": 1}, Up, nil, []string{"ap", "eu", "us"}, nil,
			"0/3 regions failing < quorum 2, 3 reporting: up"},
		{"missing region, two failing", map[string]int{"eu": 2, "us": 2}, Down, []string{"eu", "us"}, nil, []string{"ap"},
			"2/3 regions failing (eu, us) >= quorum 2; stale: ap"},
		{"missing region, two up", map[string]int{"eu": 0, "us": 0}, Up, nil, []string{"eu", "us"}, []string{"ap"},
			"0/3 regions failing < quorum 2, 2 reporting: up; stale: ap"},
		{"one region reporting", map[string]int{"eu": 2}, Unknown, []string{"eu"}, nil, []string{"ap", "us"},
			"only 1 region reporting, quorum 2: unknown; stale: ap, us"},
		{"nobody reporting", map[string]int{}, Unknown, nil, nil, []string{"ap", "eu", "us"},
			"only 0 regions reporting, quorum 2: unknown; stale: ap, eu, us"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := Evaluate(votes(tc.failing), policy3x2(), t0)
			if v.State != tc.state || !slices.Equal(v.Failing, tc.failingRs) || !slices.Equal(v.Passing, tc.passingRs) || !slices.Equal(v.Stale, tc.stale) {
				t.Errorf("got %v failing=%v passing=%v stale=%v; want %v failing=%v passing=%v stale=%v",
					v.State, v.Failing, v.Passing, v.Stale, tc.state, tc.failingRs, tc.passingRs, tc.stale)
			}
			if v.Reason() != tc.reason {
				t.Errorf("Reason = %q, want %q", v.Reason(), tc.reason)
			}
			if v.Needed != 2 || v.Reporting != len(v.Failing)+len(v.Passing) {
				t.Errorf("Needed = %d, Reporting = %d", v.Needed, v.Reporting)
			}
		})
	}
}

func TestReplicaMajority(t *testing.T) {
	p := Policy{MinRegions: 1, Regions: []string{"eu"}, Assignees: map[string][]string{"eu": {"a", "b", "c"}}}
	for _, tc := range []struct {
		name string
		obs  []Observation
		want State
	}{
		{"1 of 3 failing", []Observation{ob("eu", "a", 1, true, 0), ob("eu", "b", 1, false, 0), ob("eu", "c", 1, false, 0)}, Up},
		{"2 of 3 failing", []Observation{ob("eu", "a", 1, true, 0), ob("eu", "b", 1, true, 0), ob("eu", "c", 1, false, 0)}, Down},
		{"1 of 2 fresh failing is a tie", []Observation{ob("eu", "a", 1, true, 0), ob("eu", "b", 1, false, 0)}, Up},
		{"majority of the fresh ones", []Observation{ob("eu", "a", 1, true, 0), ob("eu", "b", 1, false, window+time.Second), ob("eu", "c", 1, false, 2*window)}, Down},
		{"single fresh passing", []Observation{ob("eu", "a", 1, false, 0)}, Up},
	} {
		if got := Evaluate(tc.obs, p, t0); got.State != tc.want {
			t.Errorf("%s: %v (%s), want %v", tc.name, got.State, got.Reason(), tc.want)
		}
	}
}

func TestStaleResultsDoNotVote(t *testing.T) {
	p := policy3x2()
	obs := append(votes(map[string]int{"eu": 2, "us": 2}),
		// ap's assignees said failing long ago; only eu and us are fresh.
		ob("ap", "ap1", 1, true, window+time.Nanosecond), ob("ap", "ap2", 1, true, time.Hour))
	v := Evaluate(obs, p, t0)
	if !slices.Equal(v.Stale, []string{"ap"}) || !slices.Equal(v.Failing, []string{"eu", "us"}) {
		t.Errorf("stale=%v failing=%v, want ap stale", v.Stale, v.Failing)
	}
	// Exactly at the edge of the window is still fresh.
	obs = []Observation{ob("ap", "ap1", 1, true, window)}
	if v := Evaluate(obs, p, t0); !slices.Equal(v.Failing, []string{"ap"}) {
		t.Errorf("observation exactly window old: failing=%v stale=%v", v.Failing, v.Stale)
	}
	// Time passing alone turns Down into Unknown once the results age out.
	down := votes(map[string]int{"ap": 2, "eu": 2, "us": 2})
	if v := Evaluate(down, p, t0); v.State != Down {
		t.Fatalf("fresh: %v", v.State)
	}
	if v := Evaluate(down, p, t0.Add(window)); v.State != Unknown || len(v.Stale) != 3 {
		t.Errorf("aged out: %v stale=%v (%s)", v.State, v.Stale, v.Reason())
	}
	// The window scales with the target's interval.
	slow := ob("ap", "ap1", 1, true, 5*time.Minute)
	slow.Interval, slow.Timeout = 10*time.Minute, time.Minute
	if v := Evaluate([]Observation{slow}, p, t0); !slices.Equal(v.Failing, []string{"ap"}) {
		t.Errorf("10m interval, 5m old: stale=%v", v.Stale)
	}
	// A never-received observation (zero Received) is stale, not fresh.
	zero := ob("ap", "ap1", 1, true, 0)
	zero.Received = time.Time{}
	if v := Evaluate([]Observation{zero}, p, t0); !slices.Contains(v.Stale, "ap") {
		t.Errorf("zero Received counted as fresh")
	}
}

func TestCustomFreshFor(t *testing.T) {
	p := policy3x2()
	p.FreshFor = func(Observation) time.Duration { return 5 * time.Second }
	obs := []Observation{ob("ap", "ap1", 1, true, 4*time.Second), ob("eu", "eu1", 1, true, 6*time.Second)}
	v := Evaluate(obs, p, t0)
	if !slices.Equal(v.Failing, []string{"ap"}) || !slices.Equal(v.Stale, []string{"eu", "us"}) {
		t.Errorf("failing=%v stale=%v", v.Failing, v.Stale)
	}
	if got := DefaultFreshFor(ob("ap", "a", 1, false, 0)); got != window {
		t.Errorf("DefaultFreshFor = %v, want %v", got, window)
	}
}

func TestIsolatedRegionsDoNotVote(t *testing.T) {
	p := policy3x2()
	p.Isolated = map[string]bool{"eu": true, "elsewhere": true}
	// eu sees everything failing because it is cut off; ap and us see up.
	v := Evaluate(votes(map[string]int{"ap": 0, "eu": 2, "us": 0}), p, t0)
	if v.State != Up || len(v.Failing) != 0 || !slices.Equal(v.Isolated, []string{"eu"}) || len(v.Stale) != 0 {
		t.Errorf("%v failing=%v isolated=%v stale=%v", v.State, v.Failing, v.Isolated, v.Stale)
	}
	if !strings.HasSuffix(v.Reason(), "; isolated: eu") {
		t.Errorf("Reason = %q does not name the isolated region", v.Reason())
	}
	// Isolation does not lower the quorum: with eu isolated, ap alone failing
	// is still one region short of 2.
	v = Evaluate(votes(map[string]int{"ap": 2, "eu": 2, "us": 0}), p, t0)
	if v.State != Up || v.Needed != 2 {
		t.Errorf("ap failing, eu isolated: %v needed %d", v.State, v.Needed)
	}
	p.Isolated["us"] = true
	if v := Evaluate(votes(map[string]int{"ap": 2, "eu": 2, "us": 2}), p, t0); v.State != Unknown {
		t.Errorf("two of three regions isolated: %v (%s), want unknown", v.State, v.Reason())
	}
}

func TestNonAssigneesDoNotVote(t *testing.T) {
	p := policy3x2()
	// After a reassignment in eu, eu1 and eu2 handed the target to eu3 and
	// eu4; their last (failing) words must not count.
	p.Assignees["eu"] = []string{"eu3", "eu4"}
	obs := votes(map[string]int{"ap": 0, "eu": 2, "us": 2})
	v := Evaluate(obs, p, t0)
	if v.State != Up || !slices.Equal(v.Stale, []string{"eu"}) {
		t.Errorf("old owners voted: %v failing=%v stale=%v", v.State, v.Failing, v.Stale)
	}
	// Once the new owner reports, eu votes again.
	obs = append(obs, ob("eu", "eu3", 1, true, 0))
	if v := Evaluate(obs, p, t0); v.State != Down || !slices.Equal(v.Failing, []string{"eu", "us"}) {
		t.Errorf("new owner: %v failing=%v", v.State, v.Failing)
	}
	// An observation that claims another region than the one its agent is
	// assigned in does not vote there.
	p = Policy{MinRegions: 1, Regions: []string{"eu", "us"}, Assignees: map[string][]string{"eu": {"x"}, "us": {"y"}}}
	if v := Evaluate([]Observation{ob("us", "x", 1, true, 0)}, p, t0); v.State != Unknown || len(v.Failing) != 0 {
		t.Errorf("cross-region observation voted: %v failing=%v", v.State, v.Failing)
	}
	// An assignee listed twice votes once.
	p = Policy{MinRegions: 1, Regions: []string{"eu"}, Assignees: map[string][]string{"eu": {"a", "a", "b"}}}
	obs = []Observation{ob("eu", "a", 1, true, 0), ob("eu", "b", 1, false, 0)}
	if v := Evaluate(obs, p, t0); v.State != Up {
		t.Errorf("duplicate assignee counted twice: %v", v.State)
	}
}

func TestReordering(t *testing.T) {
	p := Policy{MinRegions: 1, Regions: []string{"eu"}, Assignees: map[string][]string{"eu": {"a"}}}
	// seq 5 (recovered) arrived first, then the delayed seq 4 (failing).
	newFirst := []Observation{ob("eu", "a", 5, false, 2*time.Second), ob("eu", "a", 4, true, time.Second)}
	if v := Evaluate(newFirst, p, t0); v.State != Up {
		t.Errorf("older Seq arriving later overrode the newer one: %v", v.State)
	}
	if got := Latest(newFirst)["a"]; got.Seq != 5 {
		t.Errorf("Latest picked seq %d, want 5", got.Seq)
	}
	// The agent restarted: Boot 2 Seq 1 wins over Boot 1 Seq 900, whatever
	// the arrival order.
	old := ob("eu", "a", 900, false, time.Second)
	fresh := ob("eu", "a", 1, true, 2*time.Second)
	fresh.Boot = 2
	for _, obs := range [][]Observation{{old, fresh}, {fresh, old}} {
		if got := Latest(obs)["a"]; got.Boot != 2 || got.Seq != 1 {
			t.Errorf("Latest = boot %d seq %d, want the new boot", got.Boot, got.Seq)
		}
		if v := Evaluate(obs, p, t0); v.State != Down {
			t.Errorf("new boot did not win: %v", v.State)
		}
	}
}

// TestSenderClockSkew: an agent whose clock is an hour off produces the same
// verdict. Nothing of the sender's clock is compared with ours: ordering is
// by (Boot, Seq), freshness by our receipt time. Shifting the boot ids (as a
// skewed clock would) or the local clock itself changes nothing.
func TestSenderClockSkew(t *testing.T) {
	p := policy3x2()
	obs := votes(map[string]int{"ap": 0, "eu": 2, "us": 2})
	want := Evaluate(obs, p, t0)

	skewed := slices.Clone(obs)
	for i := range skewed {
		if skewed[i].Region == "eu" {
			skewed[i].Boot += uint64(time.Hour) // boot id from a clock an hour ahead
		}
	}
	if got := Evaluate(skewed, p, t0); !reflect.DeepEqual(got, want) {
		t.Errorf("sender skew changed the verdict: %+v, want %+v", got, want)
	}
	// Receipt order disagreeing with sequence order by an hour (a message
	// relayed late) does not change which observation is latest.
	a, b := ob("eu", "eu1", 7, true, time.Hour), ob("eu", "eu1", 6, false, 0)
	if got := Latest([]Observation{b, a})["eu1"]; got.Seq != 7 {
		t.Errorf("Latest ordered by receipt time: seq %d", got.Seq)
	}
	// Moving our own clock and every receipt by the same hour is invisible.
	shifted := slices.Clone(obs)
	for i := range shifted {
		shifted[i].Received = shifted[i].Received.Add(time.Hour)
	}
	if got := Evaluate(shifted, p, t0.Add(time.Hour)); !reflect.DeepEqual(got, want) {
		t.Errorf("shifting the local clock changed the verdict")
	}
}

func TestLatestDuplicates(t *testing.T) {
	first := ob("eu", "a", 3, false, time.Minute)
	relayed := ob("eu", "a", 3, false, time.Second)
	for _, obs := range [][]Observation{{first, relayed}, {relayed, first}} {
		// A relay of the same message must not refresh a silent agent.
		if got := Latest(obs)["a"]; !got.Received.Equal(first.Received) {
			t.Errorf("duplicate kept receipt %v, want the earliest %v", got.Received, first.Received)
		}
	}
	x, y := ob("eu", "a", 3, false, 0), ob("eu", "a", 3, true, 0)
	if !Latest([]Observation{x, y})["a"].Failing || !Latest([]Observation{y, x})["a"].Failing {
		t.Error("full tie depends on input order")
	}
	if got := Latest(nil); len(got) != 0 {
		t.Errorf("Latest(nil) = %v", got)
	}
}

func TestQuorumCapping(t *testing.T) {
	two := Policy{Regions: []string{"eu", "us"}, Assignees: map[string][]string{"eu": {"eu1"}, "us": {"us1"}}}
	bothFailing := []Observation{ob("eu", "eu1", 1, true, 0), ob("us", "us1", 1, true, 0)}
	for _, tc := range []struct{ min, needed int }{{0, 1}, {-3, 1}, {1, 1}, {2, 2}, {3, 2}, {99, 2}} {
		two.MinRegions = tc.min
		v := Evaluate(bothFailing, two, t0)
		if v.Needed != tc.needed || v.State != Down {
			t.Errorf("MinRegions %d: needed %d state %v, want needed %d down", tc.min, v.Needed, v.State, tc.needed)
		}
	}
	// A target probed by a single region can still go down with min_regions 2.
	one := Policy{MinRegions: 2, Regions: []string{"eu"}, Assignees: map[string][]string{"eu": {"eu1"}}}
	if v := Evaluate(bothFailing, one, t0); v.State != Down || v.Reason() != "1/1 regions failing (eu) >= quorum 1" {
		t.Errorf("single-region target: %v %q", v.State, v.Reason())
	}
	// A configured region with no agent at all still counts for the cap.
	three := Policy{MinRegions: 3, Regions: []string{"ap", "eu", "us"}, Assignees: two.Assignees}
	if v := Evaluate(bothFailing, three, t0); v.State != Unknown || v.Needed != 3 || !slices.Equal(v.Stale, []string{"ap"}) {
		t.Errorf("region without agents: %v needed %d stale %v", v.State, v.Needed, v.Stale)
	}
	// No region at all: unknown, and says why.
	if v := Evaluate(nil, Policy{MinRegions: 2}, t0); v.State != Unknown || v.Needed != 1 || v.Reason() != "no region probes the target: unknown" {
		t.Errorf("no regions: %+v", v)
	}
}

func TestPolicyRegions(t *testing.T) {
	// Regions empty: taken from the assignees.
	p := policy3x2()
	p.Regions = nil
	want := Evaluate(votes(map[string]int{"ap": 2, "eu": 0, "us": 2}), policy3x2(), t0)
	if got := Evaluate(votes(map[string]int{"ap": 2, "eu": 0, "us": 2}), p, t0); !reflect.DeepEqual(got, want) {
		t.Errorf("regions from assignees: %+v, want %+v", got, want)
	}
	// Unsorted, duplicated regions are normalised without touching the
	// caller's slice.
	p = policy3x2()
	p.Regions = []string{"us", "ap", "eu", "us"}
	if got := Evaluate(votes(map[string]int{"ap": 2, "eu": 0, "us": 2}), p, t0); !reflect.DeepEqual(got, want) {
		t.Errorf("unsorted regions: %+v, want %+v", got, want)
	}
	if !slices.Equal(p.Regions, []string{"us", "ap", "eu", "us"}) {
		t.Errorf("caller's Regions modified: %v", p.Regions)
	}
}

// randomCase builds a random target: 1-5 regions, 1-3 assignees each, some
// former assignees, some stale or missing observations, reordered sequences.
func randomCase(r *rand.Rand) ([]Observation, Policy) {
	all := []string{"ap", "eu", "sa", "us", "za"}
	n := 1 + r.IntN(5)
	p := Policy{MinRegions: r.IntN(5), Regions: all[:n], Assignees: map[string][]string{}, Isolated: map[string]bool{}}
	var obs []Observation
	for _, region := range p.Regions {
		if r.IntN(6) == 0 {
			p.Isolated[region] = true
		}
		k := 1 + r.IntN(3)
		for i := range k + 1 { // the last one is a former assignee
			id := fmt.Sprintf("%s%d", region, i)
			if i < k {
				p.Assignees[region] = append(p.Assignees[region], id)
			}
			for range r.IntN(4) {
				ago := time.Duration(r.IntN(int(2 * window)))
				o := ob(region, id, uint64(r.IntN(5)), r.IntN(2) == 0, ago)
				o.Boot = uint64(1 + r.IntN(2))
				obs = append(obs, o)
			}
		}
	}
	return obs, p
}

func TestEvaluateProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := range 3000 {
		obs, p := randomCase(r)
		v := Evaluate(obs, p, t0)

		// The regions partition into failing, passing, stale and isolated.
		var union []string
		for _, l := range [][]string{v.Failing, v.Passing, v.Stale, v.Isolated} {
			if !slices.IsSorted(l) {
				t.Fatalf("iter %d: unsorted list %v", iter, l)
			}
			union = append(union, l...)
		}
		slices.Sort(union)
		if !slices.Equal(union, p.Regions) {
			t.Fatalf("iter %d: regions %v do not partition %v: %+v", iter, union, p.Regions, v)
		}
		if v.Reporting != len(v.Failing)+len(v.Passing) {
			t.Fatalf("iter %d: Reporting %d", iter, v.Reporting)
		}
		wantState := Unknown
		if len(v.Failing) >= v.Needed {
			wantState = Down
		} else if v.Reporting >= v.Needed {
			wantState = Up
		}
		if v.State != wantState || v.Needed < 1 || v.Needed > max(1, len(p.Regions)) {
			t.Fatalf("iter %d: %+v", iter, v)
		}
		if v.Reason() == "" || !strings.Contains(v.Reason(), v.State.String()) && v.State != Down {
			t.Fatalf("iter %d: Reason %q", iter, v.Reason())
		}

		// Arrival order is irrelevant.
		sh := slices.Clone(obs)
		r.Shuffle(len(sh), func(i, j int) { sh[i], sh[j] = sh[j], sh[i] })
		if got := Evaluate(sh, p, t0); !reflect.DeepEqual(got, v) {
			t.Fatalf("iter %d: verdict depends on observation order", iter)
		}

		// Monotonicity: a region starting to vote failing (all its
		// assignees report failing now) never turns Down into Up or
		// Unknown, nor lowers the failing count; and one starting to vote
		// passing never turns Up into Down.
		region := p.Regions[r.IntN(len(p.Regions))]
		for _, failing := range []bool{true, false} {
			more := slices.Clone(obs)
			for _, id := range p.Assignees[region] {
				o := ob(region, id, 100, failing, 0)
				o.Boot = 9
				more = append(more, o)
			}
			w := Evaluate(more, p, t0)
			if failing && (v.State == Down && w.State != Down || len(w.Failing) < len(v.Failing)) {
				t.Fatalf("iter %d: %s failing turned %v (%v) into %v (%v)", iter, region, v.State, v.Failing, w.State, w.Failing)
			}
			if !failing && (v.State == Up && w.State == Down || len(w.Failing) > len(v.Failing)) {
				t.Fatalf("iter %d: %s passing turned %v into %v", iter, region, v.State, w.State)
			}
		}
	}
}

func TestLatestMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 500 {
		obs, _ := randomCase(r)
		got := Latest(obs)
		for id, o := range got {
			for _, other := range obs {
				if other.AgentID == id && (other.Boot > o.Boot || other.Boot == o.Boot && other.Seq > o.Seq) {
					t.Fatalf("Latest[%s] = (%d,%d) but (%d,%d) exists", id, o.Boot, o.Seq, other.Boot, other.Seq)
				}
			}
			if l, ok := latestOf(obs, id); !ok || *l != o {
				t.Fatalf("latestOf disagrees with Latest for %s", id)
			}
		}
		for _, o := range obs {
			if _, ok := got[o.AgentID]; !ok {
				t.Fatalf("Latest lost agent %s", o.AgentID)
			}
		}
	}
}

func TestIsIsolated(t *testing.T) {
	for _, tc := range []struct {
		myFailing, othersUp, total int
		want                       bool
	}{
		{3, 3, 3, true},      // everything fails here, up elsewhere
		{2, 2, 2, false},     // too few targets to judge
		{0, 0, 0, false},     // nothing probed
		{5, 5, 10, false},    // exactly half is not "more than half"
		{6, 5, 10, true},     // 5/6 = 83% seen up elsewhere
		{10, 8, 10, true},    // exactly 80%
		{10, 7, 10, false},   // 70%: looks like a real shared outage
		{10, 0, 10, false},   // everyone sees it down: not isolation
		{51, 41, 100, true},  // just over half, 80.4%
		{51, 40, 100, false}, // 78.4%
		{1000, 800, 1000, true},
	} {
		if got := IsIsolated(tc.myFailing, tc.othersUp, tc.total); got != tc.want {
			t.Errorf("IsIsolated(%d, %d, %d) = %v, want %v", tc.myFailing, tc.othersUp, tc.total, got, tc.want)
		}
	}
	// Monotone: more targets seen up elsewhere never un-isolates.
	for total := range 30 {
		for f := 0; f <= total; f++ {
			prev := false
			for up := 0; up <= f; up++ {
				got := IsIsolated(f, up, total)
				if prev && !got {
					t.Fatalf("IsIsolated(%d, %d, %d) false after true at %d", f, up, total, up-1)
				}
				prev = got
			}
		}
	}
}

func BenchmarkEvaluate3Regions2Agents(b *testing.B) {
	p := policy3x2()
	obs := votes(map[string]int{"ap": 0, "eu": 2, "us": 1})
	// A second, older observation per agent, as a caller keeping the last
	// two would pass.
	for _, o := range slices.Clone(obs) {
		o.Seq = 0
		obs = append(obs, o)
	}
	b.ReportAllocs()
	for b.Loop() {
		Evaluate(obs, p, t0)
	}
}

func BenchmarkLatest(b *testing.B) {
	obs := votes(map[string]int{"ap": 0, "eu": 2, "us": 1})
	b.ReportAllocs()
	for b.Loop() {
		Latest(obs)
	}
}
