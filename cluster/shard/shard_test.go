package shard

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// Fixed seeds: every property test is deterministic, so a failure reproduces.
func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }

func makeTargets(n int) []Target {
	ts := make([]Target, n)
	for i := range ts {
		ts[i] = Target{Name: fmt.Sprintf("target-%05d", i)}
	}
	return ts
}

// makeMembers spreads n members round-robin over regions.
func makeMembers(n int, regions ...string) []Member {
	ms := make([]Member, n)
	for i := range ms {
		ms[i] = Member{ID: fmt.Sprintf("agent-%03d", i), Region: regions[i%len(regions)]}
	}
	return ms
}

func shuffled[T any](r *rand.Rand, s []T) []T {
	s = slices.Clone(s)
	r.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	return s
}

// refFmix64 is murmur3 fmix64, written again here so the test checks the
// documented formula rather than the code against itself.
func refFmix64(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}

func refWeight(target, member string) uint64 {
	ht, hm := fnv.New64a(), fnv.New64a()
	ht.Write([]byte(target))
	hm.Write([]byte(member))
	return refFmix64(refFmix64(ht.Sum64()) ^ refFmix64(hm.Sum64()^0x9e3779b97f4a7c15))
}

func TestWeightMatchesDocumentedFormula(t *testing.T) {
	r := newRand(1)
	for i := range 2000 {
		tn := fmt.Sprintf("t%d-%x", i, r.Uint64())
		mn := fmt.Sprintf("m%d", r.IntN(100))
		if got, want := Weight(tn, mn), refWeight(tn, mn); got != want {
			t.Fatalf("Weight(%q, %q) = %#x, want %#x", tn, mn, got, want)
		}
	}
	// Pinned values: the weight is a cluster-wide contract (agents of
	// different versions must agree), so any change must be deliberate.
	pinned := []struct {
		target, member string
		want           uint64
	}{
		{"", "", 0x24fae0fd64d5ee8d},
		{"checkout-api", "eu-west-1", 0xa847c278df616e42},
		{"resolver", "us-east-2", 0x4bfb11f06b2767bf},
	}
	for _, p := range pinned {
		if got := Weight(p.target, p.member); got != p.want {
			t.Errorf("Weight(%q, %q) = %#x, pinned %#x", p.target, p.member, got, p.want)
		}
	}
}

func TestWeightSeparatesTargetAndMemberDomains(t *testing.T) {
	// A target named like an agent must not get a degenerate weight for it.
	for _, name := range []string{"", "a", "agent-001", "probe.example.com"} {
		if w := Weight(name, name); w == 0 {
			t.Errorf("Weight(%q, %q) = 0", name, name)
		}
	}
	if Weight("a", "b") == Weight("b", "a") {
		t.Error("Weight is symmetric in target and member")
	}
}

// TestWeightBitsBalanced checks the finaliser did its job: across many
// (target, member) pairs with similar names, every output bit is set about
// half of the time. FNV-1a alone fails this on the high bits.
func TestWeightBitsBalanced(t *testing.T) {
	const n = 20000
	var ones [64]int
	for i := range n {
		w := Weight(fmt.Sprintf("target-%d", i/20), fmt.Sprintf("agent-%d", i%20))
		for b := range 64 {
			ones[b] += int(w >> b & 1)
		}
	}
	// 6 sigma of a binomial(n, 1/2).
	tol := 6 * math.Sqrt(n*0.25)
	for b, c := range ones {
		if math.Abs(float64(c)-n/2) > tol {
			t.Errorf("bit %d set %d/%d times", b, c, n)
		}
	}
}

// refAssign is the definition of Assign written the slow, obvious way: rank
// every member for the target and keep the first `replicas` of each region.
func refAssign(ts []Target, ms []Member, replicas int) map[string]map[string][]string {
	present := map[string]bool{}
	for _, m := range ms {
		present[m.Region] = true
	}
	out := map[string]map[string][]string{}
	for _, t := range ts {
		want := map[string]bool{}
		for _, r := range t.Regions {
			want[r] = true
		}
		byRegion := map[string][]string{}
		for _, m := range Rank(t.Name, ms) {
			if len(t.Regions) > 0 && !want[m.Region] {
				continue
			}
			if len(byRegion[m.Region]) < replicas {
				byRegion[m.Region] = append(byRegion[m.Region], m.ID)
			}
		}
		if len(byRegion) > 0 {
			out[t.Name] = byRegion
		}
	}
	return out
}

func randomScenario(r *rand.Rand) ([]Target, []Member, int) {
	regions := []string{"ap-south", "eu-west", "us-east", "us-west"}[:1+r.IntN(4)]
	ms := make([]Member, r.IntN(12))
	for i := range ms {
		ms[i] = Member{ID: fmt.Sprintf("n%02d", r.IntN(40)), Region: regions[r.IntN(len(regions))]}
	}
	ms = normalize(ms) // unique IDs; duplicates are tested separately
	ts := make([]Target, r.IntN(60))
	for i := range ts {
		ts[i].Name = fmt.Sprintf("t%03d", i)
		if r.IntN(3) == 0 {
			// Restricted, sometimes to a region with no member at all.
			for range 1 + r.IntN(2) {
				ts[i].Regions = append(ts[i].Regions, []string{"ap-south", "eu-west", "us-east", "us-west", "nowhere"}[r.IntN(5)])
			}
		}
	}
	return ts, ms, r.IntN(4) // replicas 0..3; 0 means 1
}

func TestAssignMatchesReference(t *testing.T) {
	r := newRand(2)
	for iter := range 500 {
		ts, ms, k := randomScenario(r)
		a := Assign(ts, ms, k)
		want := refAssign(ts, ms, max(k, 1))
		for _, tg := range ts {
			got := a.Owners(tg.Name)
			if !reflect.DeepEqual(got, want[tg.Name]) {
				t.Fatalf("iter %d: Owners(%q) = %v, want %v (members %v, replicas %d)", iter, tg.Name, got, want[tg.Name], ms, k)
			}
		}
	}
}

func TestAssignOrderIndependent(t *testing.T) {
	r := newRand(3)
	for iter := range 300 {
		ts, ms, k := randomScenario(r)
		a := Assign(ts, ms, k)
		for range 3 {
			b := Assign(shuffled(r, ts), shuffled(r, ms), k)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("iter %d: assignment depends on input order", iter)
			}
		}
		// Determinism: recomputing gives the same answer.
		if c := Assign(ts, ms, k); !reflect.DeepEqual(a, c) {
			t.Fatalf("iter %d: Assign is not deterministic", iter)
		}
	}
}

func TestAssignDuplicates(t *testing.T) {
	ms := []Member{{"b", "eu"}, {"a", "us"}, {"a", "eu"}, {"b", "eu"}}
	ts := []Target{{Name: "x", Regions: []string{"us"}}, {Name: "x", Regions: []string{"eu"}}, {Name: "y", Regions: []string{"eu"}}}
	a := Assign(ts, ms, 5)
	// Duplicate "a" collapses to its smallest region, eu.
	if got := a.Members(); !reflect.DeepEqual(got, []Member{{"a", "eu"}, {"b", "eu"}}) {
		t.Errorf("Members() = %v", got)
	}
	// Duplicate targets merge their regions: x is in eu (and us, which has
	// no member left).
	if got := a.Targets(); !reflect.DeepEqual(got, []string{"x", "y"}) {
		t.Errorf("Targets() = %v", got)
	}
	if got := a.Regions("x"); !reflect.DeepEqual(got, []string{"eu"}) {
		t.Errorf("Regions(x) = %v", got)
	}
	for i := range 20 {
		b := Assign(shuffled(newRand(uint64(i)), ts), shuffled(newRand(uint64(i+100)), ms), 5)
		if !reflect.DeepEqual(a, b) {
			t.Fatal("duplicates make the assignment order dependent")
		}
	}
	// Merging must not write into the caller's slices.
	if !reflect.DeepEqual(ts[0].Regions, []string{"us"}) || !reflect.DeepEqual(ts[1].Regions, []string{"eu"}) {
		t.Errorf("caller's targets modified: %v", ts)
	}
}

func TestAssignDuplicateTargetMerging(t *testing.T) {
	ms := []Member{{"a", "eu"}, {"b", "us"}, {"c", "ap"}}
	// Spare capacity in the caller's slice: merging must not write into it.
	spare := make([]string, 1, 4)
	spare[0] = "eu"
	ts := []Target{{Name: "x"}, {Name: "x", Regions: spare}, {Name: "x", Regions: []string{"us"}}}
	for i := range 6 {
		in := shuffled(newRand(uint64(i)), ts)
		a := Assign(in, ms, 1)
		// One duplicate without regions means every region.
		if got := a.Regions("x"); !slices.Equal(got, []string{"ap", "eu", "us"}) {
			t.Errorf("order %v: Regions(x) = %v, want all", in, got)
		}
	}
	ts = []Target{{Name: "y", Regions: spare}, {Name: "y", Regions: []string{"us"}}}
	a := Assign(ts, ms, 1)
	if got := a.Regions("y"); !slices.Equal(got, []string{"eu", "us"}) {
		t.Errorf("Regions(y) = %v, want eu, us", got)
	}
	if got := spare[:cap(spare)]; got[1] != "" {
		t.Errorf("merge wrote into the caller's spare capacity: %q", got)
	}
}

// TestOfferTies drives the ranked buffer with equal weights, which real
// hashes produce only with probability 2^-64: members arrive in ID order and
// the earlier (smaller ID) must win every tie.
func TestOfferTies(t *testing.T) {
	type in struct {
		mi int32
		w  uint64
	}
	for _, tc := range []struct {
		k    int
		ins  []in
		want []int32
	}{
		{1, []in{{0, 5}, {1, 5}, {2, 5}}, []int32{0}},
		{2, []in{{0, 5}, {1, 5}, {2, 5}}, []int32{0, 1}},
		{2, []in{{0, 3}, {1, 5}, {2, 5}}, []int32{1, 2}},
		{2, []in{{0, 5}, {1, 3}, {2, 5}}, []int32{0, 2}},
		{3, []in{{0, 1}, {1, 9}, {2, 5}, {3, 9}, {4, 5}}, []int32{1, 3, 2}},
		{3, []in{{0, 1}, {1, 2}}, []int32{1, 0}},
	} {
		var top []int32
		var topW []uint64
		for _, x := range tc.ins {
			top, topW = offer(top, topW, tc.k, x.mi, x.w)
		}
		if !slices.Equal(top, tc.want) {
			t.Errorf("k=%d %v: top %v, want %v", tc.k, tc.ins, top, tc.want)
		}
	}
}

func TestAssignOwnerCountsAndRegions(t *testing.T) {
	r := newRand(4)
	for iter := range 300 {
		ts, ms, k := randomScenario(r)
		a := Assign(ts, ms, k)
		perRegion := map[string]int{}
		for _, m := range ms {
			perRegion[m.Region]++
		}
		for _, tg := range ts {
			want := map[string]bool{}
			for _, rg := range tg.Regions {
				want[rg] = true
			}
			var wantRegions []string
			for rg := range perRegion {
				if len(tg.Regions) == 0 || want[rg] {
					wantRegions = append(wantRegions, rg)
				}
			}
			slices.Sort(wantRegions)
			if got := a.Regions(tg.Name); !slices.Equal(got, wantRegions) {
				t.Fatalf("iter %d: Regions(%q) = %v, want %v", iter, tg.Name, got, wantRegions)
			}
			owners := a.Owners(tg.Name)
			for rg, ids := range owners {
				if !slices.Contains(wantRegions, rg) {
					t.Fatalf("iter %d: %q has owners in %q, not one of its regions %v", iter, tg.Name, rg, tg.Regions)
				}
				if want := min(max(k, 1), perRegion[rg]); len(ids) != want {
					t.Fatalf("iter %d: %q has %d owners in %q, want %d", iter, tg.Name, len(ids), rg, want)
				}
				if !slices.Equal(ids, a.OwnersIn(tg.Name, rg)) {
					t.Fatalf("iter %d: OwnersIn disagrees with Owners", iter)
				}
				for _, id := range ids {
					if m := a.Members()[a.member(id)]; m.Region != rg {
						t.Fatalf("iter %d: owner %q of region %q is in %q", iter, id, rg, m.Region)
					}
				}
			}
			if len(owners) != len(wantRegions) {
				t.Fatalf("iter %d: %q owned in %d regions, want %d", iter, tg.Name, len(owners), len(wantRegions))
			}
		}
	}
}

func TestIsOwnerAndOwnedByAgree(t *testing.T) {
	r := newRand(5)
	for range 100 {
		ts, ms, k := randomScenario(r)
		a := Assign(ts, ms, k)
		for _, m := range ms {
			owned := a.OwnedBy(m.ID)
			if !slices.IsSorted(owned) {
				t.Fatalf("OwnedBy(%q) not sorted: %v", m.ID, owned)
			}
			for _, tg := range ts {
				is := a.IsOwner(tg.Name, m.ID)
				if _, in := slices.BinarySearch(owned, tg.Name); is != in {
					t.Fatalf("IsOwner(%q, %q) = %v but OwnedBy lists it: %v", tg.Name, m.ID, is, in)
				}
				if in := slices.Contains(a.Owners(tg.Name)[m.Region], m.ID); is != in {
					t.Fatalf("IsOwner(%q, %q) = %v but Owners: %v", tg.Name, m.ID, is, in)
				}
			}
		}
	}
}

func TestAssignEdgeCases(t *testing.T) {
	a := Assign(nil, nil, 1)
	if a.IsOwner("x", "a") || a.OwnedBy("a") != nil || a.Owners("x") != nil || a.Regions("x") != nil {
		t.Error("empty assignment answers as if it owned something")
	}
	a = Assign(makeTargets(3), nil, 2)
	if got := a.Owners("target-00000"); got != nil {
		t.Errorf("no members: Owners = %v", got)
	}
	a = Assign(nil, makeMembers(3, "eu"), 2)
	if got := a.OwnedBy("agent-000"); got != nil {
		t.Errorf("no targets: OwnedBy = %v", got)
	}
	a = Assign(makeTargets(10), makeMembers(3, "eu"), 0)
	for _, tg := range a.Targets() {
		if got := len(a.OwnersIn(tg, "eu")); got != 1 {
			t.Errorf("replicas 0: %q has %d owners, want 1", tg, got)
		}
	}
	if a.IsOwner("target-00000", "stranger") || a.IsOwner("unknown", "agent-000") {
		t.Error("IsOwner true for an unknown member or target")
	}
	if Leader("x", nil) != "" || len(Rank("x", nil)) != 0 {
		t.Error("Leader or Rank of no members is not empty")
	}
}

// spread returns the targets per member's mean, min, max and the largest
// deviation from the mean in percent.
func spread(a Assignment) (mean float64, lo, hi int, pct float64) {
	counts := map[string]int{}
	for _, m := range a.Members() {
		counts[m.ID] = len(a.OwnedBy(m.ID))
	}
	lo = math.MaxInt
	total := 0
	for _, c := range counts {
		total += c
		lo, hi = min(lo, c), max(hi, c)
	}
	mean = float64(total) / float64(len(counts))
	pct = 100 * max(mean-float64(lo), float64(hi)-mean) / mean
	return
}

// TestBalance: with 10k targets each agent gets close to T/N. Rendezvous
// hashing without virtual nodes is a multinomial draw, so the honest bound
// is statistical: every agent within 5 standard deviations of the mean (the
// hash is fixed, so this is not flaky: it is one deterministic outcome).
func TestBalance(t *testing.T) {
	const T = 10000
	ts := makeTargets(T)
	for _, n := range []int{3, 10, 50} {
		for _, k := range []int{1, 2} {
			if k > n {
				continue
			}
			a := Assign(ts, makeMembers(n, "eu"), k)
			mean, lo, hi, pct := spread(a)
			p := float64(k) / float64(n)
			sigma := math.Sqrt(T * p * (1 - p))
			t.Logf("agents=%2d replicas=%d: mean %.0f, min %d, max %d, max deviation %.1f%% (1 sigma = %.1f%%)", n, k, mean, lo, hi, pct, 100*sigma/mean)
			if mean != float64(T*k)/float64(n) {
				t.Errorf("agents=%d replicas=%d: mean %.1f, want %d", n, k, mean, T*k/n)
			}
			if dev := max(mean-float64(lo), float64(hi)-mean); dev > 5*sigma {
				t.Errorf("agents=%d replicas=%d: deviation %.0f targets > 5 sigma (%.0f)", n, k, dev, 5*sigma)
			}
		}
	}
}

// moved counts the targets whose owner list in region changed.
func moved(before, after Assignment, region string) (n int, changed []string) {
	for _, tg := range before.Targets() {
		if !slices.Equal(before.OwnersIn(tg, region), after.OwnersIn(tg, region)) {
			n++
			changed = append(changed, tg)
		}
	}
	return n, changed
}

// withinSigma reports whether got is within s standard deviations of a
// binomial(n, p)'s mean.
func withinSigma(got, n int, p, s float64) bool {
	return math.Abs(float64(got)-float64(n)*p) <= s*math.Sqrt(float64(n)*p*(1-p))+1
}

func TestJoinMovesOnlyTargetsTheNewcomerTakes(t *testing.T) {
	ts := makeTargets(5000)
	for _, k := range []int{1, 2, 3} {
		ms := makeMembers(8, "eu", "us")
		before := Assign(ts, ms, k)
		newcomer := Member{ID: "agent-new", Region: "eu"}
		after := Assign(ts, append(slices.Clone(ms), newcomer), k)

		// The other region is untouched.
		if n, _ := moved(before, after, "us"); n != 0 {
			t.Errorf("replicas=%d: a join in eu moved %d targets in us", k, n)
		}
		n, changed := moved(before, after, "eu")
		for _, tg := range changed {
			old, now := before.OwnersIn(tg, "eu"), after.OwnersIn(tg, "eu")
			if !slices.Contains(now, "agent-new") {
				t.Fatalf("replicas=%d: %q moved (%v -> %v) without the newcomer", k, tg, old, now)
			}
			// Exactly one old owner is displaced (the lowest ranked), the
			// others keep probing.
			kept := slices.DeleteFunc(slices.Clone(now), func(id string) bool { return id == "agent-new" })
			if len(old) == k && !slices.Equal(kept, old[:k-1]) {
				t.Fatalf("replicas=%d: %q: %v -> %v displaced more than the last owner", k, tg, old, now)
			}
		}
		// The newcomer takes about k/N of the region's targets (N = 5 in eu).
		if !withinSigma(n, len(ts), float64(min(k, 5))/5, 5) {
			t.Errorf("replicas=%d: join moved %d of %d targets, want about %d", k, n, len(ts), len(ts)*min(k, 5)/5)
		}
		if got := len(after.OwnedBy("agent-new")); got != n {
			t.Errorf("replicas=%d: newcomer owns %d targets but %d moved", k, got, n)
		}
	}
}

func TestLeaveMovesOnlyTheLeaversTargets(t *testing.T) {
	ts := makeTargets(5000)
	for _, k := range []int{1, 2, 3} {
		ms := makeMembers(10, "eu", "us")
		before := Assign(ts, ms, k)
		leaver := ms[4] // agent-004, in eu
		after := Assign(ts, slices.Delete(slices.Clone(ms), 4, 5), k)

		if n, _ := moved(before, after, "us"); n != 0 {
			t.Errorf("replicas=%d: a leave in eu moved %d targets in us", k, n)
		}
		n, changed := moved(before, after, "eu")
		owned := before.OwnedBy(leaver.ID)
		if !slices.Equal(changed, owned) {
			t.Errorf("replicas=%d: %d targets moved, the leaver owned %d; moved must be exactly the leaver's", k, n, len(owned))
		}
		for _, tg := range changed {
			old, now := before.OwnersIn(tg, "eu"), after.OwnersIn(tg, "eu")
			rest := slices.DeleteFunc(slices.Clone(old), func(id string) bool { return id == leaver.ID })
			// The survivors keep their rank; the next-ranked member joins at the end.
			if !slices.Equal(now[:len(rest)], rest) || len(now) != len(old) {
				t.Fatalf("replicas=%d: %q: %v -> %v reshuffled the survivors", k, tg, old, now)
			}
		}
	}
}

// TestMovementTable reproduces the table of the report: targets moved by one
// join or one leave at 3, 10 and 50 agents, against the ideal T/N.
func TestMovementTable(t *testing.T) {
	const T = 10000
	ts := makeTargets(T)
	t.Logf("%-7s %-6s %-8s %-9s %s", "agents", "event", "moved", "ideal", "ratio")
	for _, n := range []int{3, 10, 50} {
		ms := makeMembers(n, "eu")
		base := Assign(ts, ms, 1)
		join := Assign(ts, append(slices.Clone(ms), Member{ID: "agent-new", Region: "eu"}), 1)
		leave := Assign(ts, ms[1:], 1)
		for _, ev := range []struct {
			name  string
			after Assignment
			n     int // cluster size the ideal refers to
		}{{"join", join, n + 1}, {"leave", leave, n}} {
			got, _ := moved(base, ev.after, "eu")
			ideal := float64(T) / float64(ev.n)
			t.Logf("%-7d %-6s %-8d %-9.0f %.3f", n, ev.name, got, ideal, float64(got)/ideal)
			if !withinSigma(got, T, 1/float64(ev.n), 5) {
				t.Errorf("agents=%d %s moved %d, ideal %.0f", n, ev.name, got, ideal)
			}
		}
	}
}

// TestCoverageDuringChurn plays random joins and leaves over three regions
// and checks, after every event, that every target has min(replicas, members
// in region) owners in each region, that only the event's region moved, and
// that targets unaffected by the event kept their owners.
func TestCoverageDuringChurn(t *testing.T) {
	r := newRand(6)
	regions := []string{"ap", "eu", "us"}
	ts := makeTargets(2000)
	for _, k := range []int{1, 2} {
		live := makeMembers(6, regions...)
		next := 100
		prev := Assign(ts, live, k)
		for step := range 60 {
			var region, who string
			join := len(live) == 0 || r.IntN(2) == 0
			if join {
				m := Member{ID: fmt.Sprintf("agent-%03d", next), Region: regions[r.IntN(3)]}
				next++
				live = append(live, m)
				region, who = m.Region, m.ID
			} else {
				i := r.IntN(len(live))
				region, who = live[i].Region, live[i].ID
				live = slices.Delete(live, i, i+1)
			}
			cur := Assign(ts, live, k)
			perRegion := map[string]int{}
			for _, m := range live {
				perRegion[m.Region]++
			}
			for _, tg := range ts {
				for _, rg := range regions {
					if got, want := len(cur.OwnersIn(tg.Name, rg)), min(k, perRegion[rg]); got != want {
						t.Fatalf("replicas=%d step %d: %q has %d owners in %s, want %d", k, step, tg.Name, got, rg, want)
					}
				}
			}
			for _, rg := range regions {
				_, changed := moved(prev, cur, rg)
				if rg != region && len(changed) > 0 {
					t.Fatalf("replicas=%d step %d: event in %s moved %d targets in %s", k, step, region, len(changed), rg)
				}
				for _, tg := range changed {
					involved := prev.IsOwner(tg, who) || cur.IsOwner(tg, who)
					if !involved {
						t.Fatalf("replicas=%d step %d: %q moved though %s neither owned nor took it", k, step, tg, who)
					}
				}
			}
			prev = cur
		}
	}
}

func TestLeaderUniqueAndStable(t *testing.T) {
	r := newRand(7)
	ms := makeMembers(12, "ap", "eu", "us")
	ts := makeTargets(3000)
	leaders := map[string]string{}
	perLeader := map[string]int{}
	for _, tg := range ts {
		l := Leader(tg.Name, ms)
		if rk := Rank(tg.Name, ms); rk[0].ID != l {
			t.Fatalf("Leader(%q) = %q, Rank first %q", tg.Name, l, rk[0].ID)
		}
		for range 3 {
			if got := Leader(tg.Name, shuffled(r, ms)); got != l {
				t.Fatalf("Leader(%q) depends on member order: %q vs %q", tg.Name, got, l)
			}
		}
		leaders[tg.Name] = l
		perLeader[l]++
	}
	// Every member leads about T/N targets: leadership is spread too.
	for _, m := range ms {
		if !withinSigma(perLeader[m.ID], len(ts), 1.0/12, 5) {
			t.Errorf("%s leads %d of %d targets", m.ID, perLeader[m.ID], len(ts))
		}
	}
	// A leave changes only the leaver's leaderships; a join only hands
	// targets to the newcomer.
	left := slices.Delete(slices.Clone(ms), 3, 4)
	joined := append(slices.Clone(ms), Member{ID: "agent-new", Region: "eu"})
	for _, tg := range ts {
		if l := Leader(tg.Name, left); l != leaders[tg.Name] && leaders[tg.Name] != ms[3].ID {
			t.Fatalf("leave of %s moved leadership of %q from %q to %q", ms[3].ID, tg.Name, leaders[tg.Name], l)
		}
		if l := Leader(tg.Name, joined); l != leaders[tg.Name] && l != "agent-new" {
			t.Fatalf("join moved leadership of %q from %q to %q", tg.Name, leaders[tg.Name], l)
		}
	}
}

func TestRankIsTotalAndConsistentWithWeight(t *testing.T) {
	ms := makeMembers(30, "ap", "eu", "us")
	for i := range 200 {
		tg := fmt.Sprintf("t%d", i)
		rk := Rank(tg, ms)
		if len(rk) != len(ms) {
			t.Fatalf("Rank returned %d members, want %d", len(rk), len(ms))
		}
		for j := 1; j < len(rk); j++ {
			if !ranksBefore(Weight(tg, rk[j-1].ID), rk[j-1].ID, Weight(tg, rk[j].ID), rk[j].ID) {
				t.Fatalf("Rank(%q) out of order at %d", tg, j)
			}
		}
	}
	// Ties: equal weights rank the smaller ID first. Real ties are 2^-64
	// events, so check the comparator directly.
	if !ranksBefore(5, "a", 5, "b") || ranksBefore(5, "b", 5, "a") || !ranksBefore(6, "z", 5, "a") {
		t.Error("ranksBefore does not break ties by ID")
	}
}

// TestAssignmentIsCompact guards the flat representation: owners cost one
// int32 each, not a map per target.
func TestAssignmentIsCompact(t *testing.T) {
	a := Assign(makeTargets(10000), makeMembers(50, "ap", "eu", "us"), 2)
	if got, want := len(a.owners), 10000*3*2; got != want {
		t.Errorf("owner slots = %d, want %d", got, want)
	}
	if got := binary.Size(a.owners) + binary.Size(a.start); got > 300_000 {
		t.Errorf("assignment index uses %d bytes", got)
	}
}

func BenchmarkAssign10kTargets50Members(b *testing.B) {
	ts := makeTargets(10000)
	for _, k := range []int{1, 2} {
		ms := makeMembers(50, "ap", "eu", "us")
		b.Run(fmt.Sprintf("3regions/replicas=%d", k), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Assign(ts, ms, k)
			}
		})
	}
	b.Run("1region/replicas=1", func(b *testing.B) {
		ms := makeMembers(50, "eu")
		b.ReportAllocs()
		for b.Loop() {
			Assign(ts, ms, 1)
		}
	})
}

func BenchmarkIsOwner(b *testing.B) {
	ts := makeTargets(10000)
	a := Assign(ts, makeMembers(50, "ap", "eu", "us"), 2)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a.IsOwner(ts[i%len(ts)].Name, "agent-017")
		i++
	}
}

func BenchmarkOwnedBy(b *testing.B) {
	a := Assign(makeTargets(10000), makeMembers(50, "ap", "eu", "us"), 2)
	b.ReportAllocs()
	for b.Loop() {
		a.OwnedBy("agent-017")
	}
}

func BenchmarkWeight(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Weight("checkout-api-healthz", "agent-eu-west-1-7f3c")
	}
}

// BenchmarkTop3Of50: a target's holders among 50 members, the members
// hashed per call (Top) or once (Ranking.Top).
func BenchmarkTop3Of50(b *testing.B) {
	ms := makeMembers(50, "ap", "eu", "us")
	b.Run("Top", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Top("checkout-api", ms, 3)
		}
	})
	b.Run("Ranking.Top", func(b *testing.B) {
		r := NewRanking(ms)
		b.ReportAllocs()
		for b.Loop() {
			r.Top("checkout-api", 3)
		}
	})
}

func BenchmarkLeader50(b *testing.B) {
	ms := makeMembers(50, "ap", "eu", "us")
	b.ReportAllocs()
	for b.Loop() {
		Leader("checkout-api", ms)
	}
}

func TestTopIsRanksPrefix(t *testing.T) {
	r := newRand(17)
	for i := 0; i < 300; i++ {
		ms := makeMembers(1+r.IntN(40), "eu", "us", "ap")
		ms = shuffled(r, ms)
		target := fmt.Sprintf("t%d", r.IntN(1000))
		rank := Rank(target, ms)
		for _, k := range []int{1, 3, len(ms), len(ms) + 2} {
			got := Top(target, ms, k)
			want := rank[:min(k, len(rank))]
			if !slices.Equal(got, want) {
				t.Fatalf("Top(%s, %d members, %d) = %v, want %v", target, len(ms), k, got, want)
			}
			rk := NewRanking(ms)
			if got := rk.Top(target, k); !slices.Equal(got, want) {
				t.Fatalf("Ranking.Top(%s, %d members, %d) = %v, want %v", target, len(ms), k, got, want)
			}
		}
		if Top(target, ms, 1)[0].ID != Leader(target, ms) {
			t.Fatal("Top's first is not the leader")
		}
	}
	if Top("t", makeMembers(3, "eu"), 0) != nil {
		t.Fatal("Top of 0 is not empty")
	}
}

// TestRankingAgreesWithLeader: a Ranking's Leader and Leads give Leader's
// answers, for members of every rank, absent ones and duplicates.
func TestRankingAgreesWithLeader(t *testing.T) {
	var ms []Member
	for i := range 37 {
		ms = append(ms, Member{ID: fmt.Sprintf("agent-%d", i), Region: fmt.Sprint("r", i%5)})
	}
	ms = append(ms, ms[3]) // a duplicate, as a view caught mid-update may hold
	r := NewRanking(ms)
	for i := range 2000 {
		target := fmt.Sprintf("https://svc-%d.example/health", i)
		want := Leader(target, ms)
		if got := r.Leader(target); got != want {
			t.Fatalf("%s: Ranking.Leader %s, Leader %s", target, got, want)
		}
		for _, id := range []string{want, ms[i%len(ms)].ID, "not-a-member"} {
			if got := r.Leads(target, id); got != (id == want) {
				t.Fatalf("%s: Leads(%s) = %v, leader is %s", target, id, got, want)
			}
		}
	}
	empty := NewRanking(nil)
	if empty.Leader("t") != "" || empty.Leads("t", "a") {
		t.Error("an empty ranking leads")
	}
}

// TestDroppedListsFormerOwners: Dropped names exactly the (target, member)
// pairs owned before and not after, whether members join or leave and
// targets come or go.
func TestDroppedListsFormerOwners(t *testing.T) {
	var ms []Member
	for i := range 12 {
		ms = append(ms, Member{ID: fmt.Sprintf("a%02d", i), Region: fmt.Sprint("r", i%3)})
	}
	var ts []Target
	for i := range 300 {
		ts = append(ts, Target{Name: fmt.Sprintf("t%03d", i)})
	}
	old := Assign(ts[:250], ms[:10], 1)
	next := Assign(ts[50:], append(slices.Clone(ms[1:10]), ms[10:]...), 1)
	want := map[string]bool{}
	for _, tg := range ts[:250] {
		for _, ids := range old.Owners(tg.Name) {
			for _, id := range ids {
				if !next.IsOwner(tg.Name, id) {
					want[tg.Name+"/"+id] = true
				}
			}
		}
	}
	got := map[string]bool{}
	old.Dropped(next, func(target, id string) { got[target+"/"+id] = true })
	if len(want) == 0 || !maps.Equal(got, want) {
		t.Errorf("Dropped gave %d pairs, want %d (differ: %v)", len(got), len(want), !maps.Equal(got, want))
	}
}
