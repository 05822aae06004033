package cluster

import (
	"fmt"
	"reflect"
	"testing"
	"unsafe"

	"github.com/vantage-probe/vantage/cluster/quorum"
)

// TestHeldVerdictRoundTrip: what the fleet table keeps gives back the
// verdict it was given, and says it is the same verdict.
func TestHeldVerdictRoundTrip(t *testing.T) {
	var sets regionSets
	for _, v := range []*Verdict{
		{Target: "a", Leader: "x", Verdict: quorum.Verdict{State: quorum.Up, Passing: []string{"eu", "us"}, Reporting: 2, Needed: 2}},
		{Target: "b", Leader: "y", Maintenance: true, Incident: "inc-1", boot: 7, seq: 9, since: 11, updated: 12,
			Verdict: quorum.Verdict{State: quorum.Down, Failing: []string{"eu", "us"}, Passing: []string{"ap"},
				Stale: []string{"sa"}, Isolated: []string{"af"}, Reporting: 3, Needed: 2}},
		{Target: "c", Leader: "z", Verdict: quorum.Verdict{State: quorum.Unknown}},
	} {
		h := sets.hold(v)
		if got := h.full(v.Target); !reflect.DeepEqual(got, v) {
			t.Errorf("held %+v\ngave back %+v", v, got)
		}
		if !h.sameAs(v) {
			t.Errorf("%s: held verdict not the same as the one it holds", v.Target)
		}
		w := *v
		w.Stale = append([]string{"new"}, w.Stale...)
		if h.sameAs(&w) {
			t.Errorf("%s: a verdict with another stale list is the same", v.Target)
		}
	}
}

// TestRegionSetsShareLists: verdicts with the same lists share one copy,
// whatever slices they came in; lists that differ only in where a name
// sits (failing or passing) or in how names split do not; past the bound a
// verdict keeps its own.
func TestRegionSetsShareLists(t *testing.T) {
	var sets regionSets
	a := sets.hold(&Verdict{Verdict: quorum.Verdict{Passing: []string{"eu", "us"}}})
	b := sets.hold(&Verdict{Verdict: quorum.Verdict{Passing: []string{"eu", "us"}}})
	if a.lists != b.lists {
		t.Error("equal lists not shared")
	}
	c := sets.hold(&Verdict{Verdict: quorum.Verdict{Failing: []string{"eu", "us"}}})
	d := sets.hold(&Verdict{Verdict: quorum.Verdict{Passing: []string{"eu\x00us"}}})
	e := sets.hold(&Verdict{Verdict: quorum.Verdict{Passing: []string{"eus"}}})
	if c.lists == a.lists || d.lists == a.lists || e.lists == a.lists || d.lists == e.lists {
		t.Error("different lists shared")
	}
	for i := range maxRegionSets + 10 {
		sets.hold(&Verdict{Verdict: quorum.Verdict{Failing: []string{fmt.Sprint("r", i)}}})
	}
	if len(sets.sets) > maxRegionSets {
		t.Errorf("%d sets kept, bound %d", len(sets.sets), maxRegionSets)
	}
	over := &Verdict{Verdict: quorum.Verdict{Failing: []string{"never-seen"}}}
	if got := sets.hold(over).full(""); !reflect.DeepEqual(got.Failing, over.Failing) {
		t.Errorf("past the bound: %v, want %v", got.Failing, over.Failing)
	}
}

// TestHeldVerdictIsSmall: every agent keeps one per configured target; a
// field added here costs 100 KB per byte at 100k targets.
func TestHeldVerdictIsSmall(t *testing.T) {
	if s := unsafe.Sizeof(heldVerdict{}); s > 80 {
		t.Errorf("heldVerdict is %d bytes, want at most 80", s)
	}
}
