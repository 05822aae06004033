package cluster

import (
	"encoding/binary"
	"slices"

	"github.com/vantage-probe/vantage/cluster/quorum"
	"github.com/vantage-probe/vantage/internal/mono"
)

// heldVerdict is a Verdict as the fleet table keeps it: every agent holds
// one per configured target, so at 100,000 targets each byte here is
// 100 KB of every agent's heap. A Verdict is 208 bytes (its target's name,
// four region lists, three ints); this is 80: the name is the table's key,
// the four lists are one pointer to a shared set of them (a handful of
// sets stand for every target's), and the small numbers are bytes.
// Readers get a Verdict back from full; nothing edits a held verdict in
// place but its updated stamp.
type heldVerdict struct {
	leader   string // agent id, a shared copy (decoder.name)
	incident string
	// since is when the state last changed, updated when this agent
	// evaluated or received the verdict: see Verdict.
	since, updated mono.Stamp
	boot, seq      uint64
	lists          *regionLists
	state          uint8 // quorum.State
	needed         uint8 // at most maxRegions
	maint          bool
}

// regionLists are a verdict's four region lists. Shared between verdicts:
// never changed after regionSets made them.
type regionLists struct{ failing, passing, stale, isolated []string }

var noLists = &regionLists{}

// full is the Verdict h holds on target (a name of the table's: no copy).
func (h *heldVerdict) full(target string) *Verdict {
	l := h.lists
	return &Verdict{Target: target, Leader: h.leader, Maintenance: h.maint, Incident: h.incident,
		since: h.since, updated: h.updated, boot: h.boot, seq: h.seq,
		Verdict: quorum.Verdict{State: quorum.State(h.state), Needed: int(h.needed),
			Failing: l.failing, Passing: l.passing, Stale: l.stale, Isolated: l.isolated,
			Reporting: len(l.failing) + len(l.passing)}}
}

func (h *heldVerdict) State() quorum.State { return quorum.State(h.state) }

// sameAs reports whether v says what h says (order and times aside), as
// Verdict.sameAs does: a leader publishes a verdict only when this changes.
func (h *heldVerdict) sameAs(v *Verdict) bool {
	if h == nil || h.leader != v.Leader || h.State() != v.State || h.needed != heldNeeded(v.Needed) ||
		h.maint != v.Maintenance || h.incident != v.Incident {
		return false
	}
	l := h.lists
	return slices.Equal(l.failing, v.Failing) && slices.Equal(l.passing, v.Passing) &&
		slices.Equal(l.stale, v.Stale) && slices.Equal(l.isolated, v.Isolated)
}

// regionSets keeps one copy of each set of region lists the verdicts on
// record hold: a few dozen (every region passing; one failing; ...) stand
// for every target's. Bounded: past maxRegionSets a verdict keeps its own.
type regionSets struct{ sets map[string]*regionLists }

// maxRegionSets bounds the sets kept. Four lists over R regions make at
// most 4^R sets, but a fleet sees few of them at once: all passing, and
// the failures of the day.
const maxRegionSets = 1024

// hold is v as the fleet table keeps it.
func (r *regionSets) hold(v *Verdict) *heldVerdict {
	return &heldVerdict{leader: v.Leader, incident: v.Incident, since: v.since, updated: v.updated,
		boot: v.boot, seq: v.seq, lists: r.lists(v), state: uint8(v.State),
		needed: heldNeeded(v.Needed), maint: v.Maintenance}
}

// heldNeeded is a verdict's quorum in a byte: the wire carries at most
// maxRegions, and a quorum needs no more regions than there are.
func heldNeeded(n int) uint8 { return uint8(max(min(n, maxRegions), 0)) }

// lists returns the kept set of v's lists, keeping one when there is room.
func (r *regionSets) lists(v *Verdict) *regionLists {
	if len(v.Failing)+len(v.Passing)+len(v.Stale)+len(v.Isolated) == 0 {
		return noLists
	}
	// The key spells each list's names with their lengths: names come off
	// the wire too, where no separator is safe to assume.
	key := make([]byte, 0, 64)
	for _, l := range [...][]string{v.Failing, v.Passing, v.Stale, v.Isolated} {
		key = binary.AppendUvarint(key, uint64(len(l)))
		for _, s := range l {
			key = binary.AppendUvarint(key, uint64(len(s)))
			key = append(key, s...)
		}
	}
	if l, ok := r.sets[string(key)]; ok { // no allocation for the lookup
		return l
	}
	l := &regionLists{failing: slices.Clone(v.Failing), passing: slices.Clone(v.Passing),
		stale: slices.Clone(v.Stale), isolated: slices.Clone(v.Isolated)}
	if r.sets == nil {
		r.sets = map[string]*regionLists{}
	}
	if len(r.sets) < maxRegionSets {
		r.sets[string(key)] = l
	}
	return l
}
