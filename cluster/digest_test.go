package cluster

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/internal/testenv"
)

func digestView(n int, seq uint64) tableView {
	var v tableView
	for i := range n {
		v.obs = append(v.obs, &Observation{Target: fmt.Sprintf("t%05d", i), AgentID: "eu-1", Boot: 1, Seq: seq})
		v.verdicts = append(v.verdicts, heldRef{fmt.Sprintf("t%05d", i), &heldVerdict{leader: "us-1", boot: 2, seq: seq, lists: noLists}})
	}
	return v
}

// Two agents whose tables chose different bucket counts still compare: a
// digest folded down equals the digest computed at the smaller count.
func TestDigestFoldsToASmallerCount(t *testing.T) {
	v := digestView(3000, 7)
	big, small := v.buckets(1024), v.buckets(64)
	if !slices.Equal(fold(big, 64), small) {
		t.Fatal("a 1024-bucket digest folded to 64 differs from the 64-bucket digest")
	}
	if got := bucketsFor(v.entries()); got != 256 {
		t.Fatalf("bucketsFor(%d) = %d, want 256", v.entries(), got)
	}
	if bucketsFor(0) != minDigestBuckets || bucketsFor(1<<30) != maxDigestBuckets {
		t.Fatal("bucketsFor ignores its bounds")
	}
}

// One newer observation makes one bucket differ, and only that bucket's
// entries (the newer one among them) are sent.
func TestDigestSendsOnlyTheDifferingBucket(t *testing.T) {
	ours, theirs := digestView(3000, 7), digestView(3000, 7)
	ours.obs[1234] = &Observation{Target: "t01234", AgentID: "eu-1", Boot: 1, Seq: 8}
	n := bucketsFor(ours.entries())
	a, b := ours.buckets(n), theirs.buckets(n)
	diff := 0
	for i := range a {
		if a[i] != b[i] {
			diff++
		}
	}
	if diff != 1 {
		t.Fatalf("%d buckets differ, want 1", diff)
	}
	p := ours.differing(a, b)
	if !slices.ContainsFunc(p.obs, func(o *Observation) bool { return o.Target == "t01234" && o.Seq == 8 }) {
		t.Fatal("the newer observation is not among those sent")
	}
	if sent := p.len(); sent > 4*ours.entries()/n {
		t.Fatalf("%d entries sent for one differing bucket of %d (about %d entries each)", sent, n, ours.entries()/n)
	}
	if p := ours.differing(a, a); p.len() != 0 {
		t.Fatal("equal digests sent entries")
	}
}

// quietPair starts two agents, one per region, on targets, with digests on
// and nothing going stale, probes one round and waits until both hold
// every observation and verdict and no repair has been sent for two
// push/pulls: from then on their tables differ only as a test makes them.
func quietPair(t *testing.T, n int) (a, b *node, targets []TargetSpec) {
	t.Helper()
	targets = make([]TargetSpec, n)
	for i := range targets {
		// A long interval: nothing goes stale during the test, so the two
		// tables, once equal, stay equal but for the lost results.
		targets[i] = TargetSpec{Name: fmt.Sprintf("t%03d", i), Interval: time.Minute, Timeout: 5 * time.Second, MinRegions: 2}
	}
	// Digests from two agents on (by default only large fleets send them).
	nodes := startFleet(t, []string{"eu", "us"}, 1, targets, func(c *Config) { c.DigestFrom = 2 })
	testenv.Poll(t, 20*time.Second, "convergence", func() bool { return converged(nodes, targets) })
	// One probe round, with the targets' interval: probeAll's scripted
	// observations say 1 s, and an owner's own observation goes stale
	// (out of its digest) when nothing probes again.
	for _, n := range nodes {
		for _, name := range n.local.mine() {
			n.c.Report(Observation{Target: name, OK: true, Interval: time.Minute, Timeout: 5 * time.Second})
		}
	}
	same := func() bool {
		now := time.Now()
		ca, cb := nodes[0].c, nodes[1].c
		ca.mu.Lock()
		va := ca.viewLocked(now)
		ca.mu.Unlock()
		cb.mu.Lock()
		vb := cb.viewLocked(now)
		cb.mu.Unlock()
		return va.entries() == 3*len(targets) && slices.Equal(va.buckets(64), vb.buckets(64))
	}
	// Equal, and quiet: no repair sent for two push/pulls (1 s each), so
	// none answering the start-up's differences is still on its way.
	repairs := func() uint64 { return nodes[0].c.m.repairs() + nodes[1].c.m.repairs() }
	last, quietSince := repairs(), time.Now()
	testenv.Poll(t, 20*time.Second, "both agents holding every observation and verdict", func() bool {
		if n := repairs(); n != last || !same() {
			last, quietSince = n, time.Now()
		}
		return time.Since(quietSince) > 2*time.Second
	})
	return nodes[0], nodes[1], targets
}

// loseResults stores a new result of each of the first count targets a
// probes, as Report stores a change, and does not send it: as if every
// packet carrying it were lost. It returns the targets and their seqs.
func loseResults(t *testing.T, a *node, count int) map[string]uint64 {
	t.Helper()
	mine := a.local.mine()
	if len(mine) < count {
		t.Fatalf("a probes %d targets, the test loses %d", len(mine), count)
	}
	lost := make(map[string]uint64, count)
	c := a.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, target := range mine[:count] {
		o := *c.obsLocked(target).get(c.cfg.AgentID)
		o.Seq, o.Reason = c.seq.Add(1), "lost"
		c.storeLocked(c.targets[target], &o)
		c.agentSeq[o.AgentID] = [2]uint64{o.Boot, o.Seq}
		lost[target] = o.Seq
	}
	return lost
}

// holdsAll reports whether b holds a's lost results.
func holdsAll(b *node, from string, lost map[string]uint64) bool {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	for target, seq := range lost {
		got := b.c.obsLocked(target).get(from)
		if got == nil || got.Seq != seq {
			return false
		}
	}
	return true
}

// An observation a peer never got (its result message lost) reaches it by
// the next push/pull, which sends the differing bucket, not the table.
func TestPushPullRepairsALostResultWithOneBucket(t *testing.T) {
	a, b, _ := quietPair(t, 300)
	lost := loseResults(t, a, 1)
	sent0 := a.c.m.repairs()
	testenv.Poll(t, 20*time.Second, "the lost result at the peer", func() bool { return holdsAll(b, a.c.cfg.AgentID, lost) })
	// Each push/pull until then sent a's entries of one bucket (of 64):
	// about 14, far from the table's 900.
	if sent := a.c.m.repairs() - sent0; sent == 0 || sent > 150 {
		t.Fatalf("a sent %d entries to repair one result, want a bucket's worth", sent)
	}
}

// Many lost results (a leader's thousands of verdicts after a death, here
// 100 observations) differ in most buckets: the agents exchange key lists
// and send what the other lacks, about twice the lost entries (each side
// sends its own version), not the whole buckets' 600-900 entries each
// push/pull. An agent that predates key lists (its metadata says no
// features) is still repaired, with whole buckets.
func TestPushPullRepairsManyLostResultsByKeyList(t *testing.T) {
	for _, old := range []bool{false, true} {
		t.Run(map[bool]string{false: "key lists", true: "a peer that predates them"}[old], func(t *testing.T) {
			a, b, _ := quietPair(t, 300)
			if old {
				for _, n := range []*node{a, b} {
					n.c.mu.Lock()
					for _, m := range n.c.members {
						m.features = 0
					}
					n.c.mu.Unlock()
				}
			}
			lost := loseResults(t, a, 100)
			sent0 := a.c.m.repairs() + b.c.m.repairs()
			testenv.Poll(t, 20*time.Second, "the lost results at the peer", func() bool { return holdsAll(b, a.c.cfg.AgentID, lost) })
			sent := a.c.m.repairs() + b.c.m.repairs() - sent0
			keys := a.c.m.keysSent.Get() + b.c.m.keysSent.Get()
			t.Logf("%d entries and %d keys sent to repair 100 lost results", sent, keys)
			if old {
				if keys != 0 {
					t.Fatalf("%d keys sent to agents that predate key lists", keys)
				}
				return
			}
			if keys == 0 {
				t.Fatal("no key list sent for 100 differing entries")
			}
			// Each push/pull until the repair may send the differing
			// entries both ways: 200, and a push/pull more in flight.
			if sent > uint64(2*2*len(lost)+directRepairMax) {
				t.Fatalf("%d entries sent to repair %d lost results", sent, len(lost))
			}
		})
	}
}

// When many entries differ, a key list brings back exactly those: the
// peer's versions of the 300 changed observations, not the ~20 entries of
// each of the ~230 buckets they fall in, and nothing the lister holds.
func TestKeyListBringsOnlyWhatDiffers(t *testing.T) {
	ours, theirs := digestView(3000, 7), digestView(3000, 7)
	for i := 0; i < 3000; i += 10 {
		theirs.obs[i] = &Observation{Target: theirs.obs[i].Target, AgentID: "eu-1", Boot: 1, Seq: 8}
	}
	n := bucketsFor(ours.entries())
	a, b := ours.buckets(n), theirs.buckets(n)
	whole := ours.differing(a, b)
	if whole.len() < 10*300 {
		t.Fatalf("whole buckets send %d entries; the test expects the amplification a key list avoids", whole.len())
	}
	k := ours.keysFor("a", a, b)
	got := theirs.lacking(k)
	if got.len() != 300 || len(got.obs) != 300 {
		t.Fatalf("the peer sends %d entries (%d observations) for 300 that differ", got.len(), len(got.obs))
	}
	for _, o := range got.obs {
		if o.Seq != 8 {
			t.Fatalf("sent %s seq %d, which the lister holds", o.Target, o.Seq)
		}
	}
	if p := ours.lacking(k); p.len() != 0 {
		t.Fatalf("the lister's own view lacks %d of its listed entries", p.len())
	}
	// What it saves on the wire: the whole buckets' entries against the
	// key list and the entries that differ.
	k2, err := decodeKeys(encodeKeys(&k))
	if err != nil {
		t.Fatal(err)
	}
	if p := theirs.lacking(k2); p.len() != 300 {
		t.Fatalf("after a round trip the key list brings %d entries", p.len())
	}
	full := len(encodeStateAs(msgRepair, whole.obs, nil, fullVerdicts(whole.verdicts), time.Now()))
	keyed := len(encodeKeys(&k)) + len(encodeStateAs(msgRepair, got.obs, nil, nil, time.Now()))
	t.Logf("whole buckets: %d entries, %d bytes; key list: %d keys, %d bytes with its answer", whole.len(), full, len(k.Keys), keyed)
	if keyed*3 > full {
		t.Fatalf("a key list and its answer take %d bytes against %d for whole buckets", keyed, full)
	}
}
