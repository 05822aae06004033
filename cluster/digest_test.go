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
	obs, verdicts, incidents := ours.differing(a, b)
	if !slices.ContainsFunc(obs, func(o *Observation) bool { return o.Target == "t01234" && o.Seq == 8 }) {
		t.Fatal("the newer observation is not among those sent")
	}
	if sent := len(obs) + len(verdicts) + len(incidents); sent > 4*ours.entries()/n {
		t.Fatalf("%d entries sent for one differing bucket of %d (about %d entries each)", sent, n, ours.entries()/n)
	}
	if o, v, i := ours.differing(a, a); len(o)+len(v)+len(i) != 0 {
		t.Fatal("equal digests sent entries")
	}
}

// An observation a peer never got (its result message lost) reaches it by
// the next push/pull, which sends the differing bucket, not the table.
func TestPushPullRepairsALostResultWithOneBucket(t *testing.T) {
	targets := make([]TargetSpec, 300)
	for i := range targets {
		// A long interval: nothing goes stale during the test, so the two
		// tables, once equal, stay equal but for the lost result.
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
	a, b := nodes[0].c, nodes[1].c
	same := func() bool {
		now := time.Now()
		a.mu.Lock()
		va := a.viewLocked(now)
		a.mu.Unlock()
		b.mu.Lock()
		vb := b.viewLocked(now)
		b.mu.Unlock()
		return va.entries() == 3*len(targets) && slices.Equal(va.buckets(64), vb.buckets(64))
	}
	// Equal, and quiet: no repair sent for two push/pulls (1 s each), so
	// none answering the start-up's differences is still on its way.
	last, quietSince := a.m.repairs(), time.Now()
	testenv.Poll(t, 20*time.Second, "both agents holding every observation and verdict", func() bool {
		if n := a.m.repairs(); n != last || !same() {
			last, quietSince = n, time.Now()
		}
		return time.Since(quietSince) > 2*time.Second
	})

	// A result a sends and b never receives: stored as Report stores a
	// change, and not sent.
	target := nodes[0].local.mine()[0]
	a.mu.Lock()
	o := *a.obsLocked(target).get(a.cfg.AgentID)
	o.Seq, o.Reason = a.seq.Add(1), "lost"
	a.storeLocked(a.targets[target], &o)
	a.agentSeq[o.AgentID] = [2]uint64{o.Boot, o.Seq}
	a.mu.Unlock()

	sent0 := a.m.repairs()
	testenv.Poll(t, 20*time.Second, "the lost result at the peer", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		got := b.obsLocked(target).get(a.cfg.AgentID)
		return got != nil && got.Seq == o.Seq
	})
	// Each push/pull until then sent a's entries of one bucket (of 64):
	// about 14, far from the table's 900.
	if sent := a.m.repairs() - sent0; sent == 0 || sent > 150 {
		t.Fatalf("a sent %d entries to repair one result, want a bucket's worth", sent)
	}
}
