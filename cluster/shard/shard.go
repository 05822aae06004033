// Package shard decides which agents probe which targets.
//
// It is rendezvous (highest-random-weight) hashing, done per region: for each
// target and each region that probes it, the `replicas` members of that region
// with the highest Weight(target, member) own the target. Every agent derives
// the same answer from the membership alone, so no coordination is needed, and
// a join or leave moves only the targets it must: a newcomer takes exactly the
// targets for which it now ranks in the top `replicas` of its region, and a
// leaver's targets go to the next-ranked member of its region while every
// other assignment stays put.
//
// The package is pure: no sockets, no clocks, no global state.
package shard

import (
	"cmp"
	"slices"
	"strings"
)

// Member is one live agent.
type Member struct {
	ID     string // stable agent ID, unique in the cluster
	Region string
}

// Target is one probed target as far as assignment is concerned.
type Target struct {
	Name string
	// Regions that probe the target; empty means every region present among
	// the members. Listed regions with no member get no owners.
	Regions []string
}

// Hash constants. The weight is part of the cluster's wire contract: every
// agent must compute the same value, so changing any of these reshuffles the
// whole fleet during a rolling upgrade.
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
	// memberSalt separates the member and target hash domains, so that a
	// target named like an agent (probing the agent itself) does not hash to
	// the same key and get weight fmix64(0) = 0 for that agent.
	memberSalt = 0x9e3779b97f4a7c15
)

// fnv1a64 is FNV-1a over s; written out rather than using hash/fnv so that it
// does not allocate or go through an interface.
func fnv1a64(s string) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return h
}

// fmix64 is murmur3's 64-bit finaliser. FNV-1a alone avalanches poorly (its
// high bits barely depend on the last bytes), which would make the ranking of
// similarly named agents ("agent-1", "agent-2") correlated across targets.
func fmix64(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}

// targetKey and memberKey are the per-target and per-member partial hashes;
// precomputing them makes each (target, member) weight three xor-shifts and
// two multiplications, independent of the names' lengths.
func targetKey(name string) uint64 { return fmix64(fnv1a64(name)) }
func memberKey(id string) uint64   { return fmix64(fnv1a64(id) ^ memberSalt) }

// TargetKey is a target's well-spread 64-bit hash (FNV-1a, then murmur3's
// finaliser): every bit depends on every byte. The cluster's digests key
// their buckets by it.
func TargetKey(name string) uint64 { return targetKey(name) }

// Mix64 is murmur3's 64-bit finaliser, for hashes built elsewhere.
func Mix64(k uint64) uint64 { return fmix64(k) }

func combine(tk, mk uint64) uint64 { return fmix64(tk ^ mk) }

// Weight is the rendezvous weight of memberID for target:
//
//	fmix64( fmix64(fnv1a64(target)) XOR fmix64(fnv1a64(memberID) XOR 0x9e3779b97f4a7c15) )
//
// where fnv1a64 is 64-bit FNV-1a over the string's bytes and fmix64 is
// murmur3's finaliser. Higher weight ranks first; equal weights rank the
// smaller member ID first.
func Weight(target, memberID string) uint64 {
	return combine(targetKey(target), memberKey(memberID))
}

// ranksBefore reports whether (wa, ida) ranks ahead of (wb, idb).
func ranksBefore(wa uint64, ida string, wb uint64, idb string) bool {
	if wa != wb {
		return wa > wb
	}
	return ida < idb
}

// normalize returns the members sorted by ID with duplicate IDs removed. A
// duplicated ID keeps the smallest region so that the result does not depend
// on input order; IDs are meant to be unique, so this only guards against a
// membership view caught mid-update.
func normalize(members []Member) []Member {
	ms := slices.Clone(members)
	slices.SortFunc(ms, func(a, b Member) int {
		return cmp.Or(strings.Compare(a.ID, b.ID), strings.Compare(a.Region, b.Region))
	})
	return slices.CompactFunc(ms, func(a, b Member) bool { return a.ID == b.ID })
}

// Rank returns every member (of every region) ordered for target, best first.
// The caller uses it to pick the next-ranked agent when an assignee is
// suspect. Duplicate IDs are collapsed as in Assign.
func Rank(target string, members []Member) []Member {
	ms := normalize(members)
	tk := targetKey(target)
	ws := make([]uint64, len(ms))
	for i, m := range ms {
		ws[i] = combine(tk, memberKey(m.ID))
	}
	idx := make([]int, len(ms))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		if ranksBefore(ws[a], ms[a].ID, ws[b], ms[b].ID) {
			return -1
		}
		if ranksBefore(ws[b], ms[b].ID, ws[a], ms[a].ID) {
			return 1
		}
		return 0
	})
	out := make([]Member, len(ms))
	for i, j := range idx {
		out[i] = ms[j]
	}
	return out
}

// Top returns the first k members of Rank(target, members), best first,
// without sorting them all: a target's leader and its next-ranked
// successors. Members must not repeat an ID (Rank collapses duplicates;
// Top keeps the first). Many targets over the same members: Ranking.Top.
func Top(target string, members []Member, k int) []Member {
	r := NewRanking(members)
	return r.Top(target, k)
}

// Leader returns the one member, over all regions, that exports target's
// verdict: the highest weight overall (the first of Rank). Every agent that
// sees the same live members picks the same leader; "" when there are none.
// It does not look at the target's regions, so a target probed only in one
// region may be led from another: the leader reads gossip, it does not probe.
func Leader(target string, members []Member) string {
	tk := targetKey(target)
	var best string
	var bestW uint64
	for i, m := range members {
		w := combine(tk, memberKey(m.ID))
		if i == 0 || ranksBefore(w, m.ID, bestW, best) {
			best, bestW = m.ID, w
		}
	}
	return best
}

// Ranking is a set of members with their partial hashes computed once:
// the leader of many targets over the same members costs one weight per
// (target, member) instead of hashing each member's ID again.
type Ranking struct {
	members []Member
	keys    []uint64
}

// NewRanking keys members (kept as given: callers must not change them).
func NewRanking(members []Member) Ranking {
	keys := make([]uint64, len(members))
	for i, m := range members {
		keys[i] = memberKey(m.ID)
	}
	return Ranking{members: members, keys: keys}
}

// Members are the ranked members.
func (r *Ranking) Members() []Member { return r.members }

// Leader is Leader(target, r.Members()).
func (r *Ranking) Leader(target string) string {
	tk := targetKey(target)
	var best string
	var bestW uint64
	for i, m := range r.members {
		w := combine(tk, r.keys[i])
		if i == 0 || ranksBefore(w, m.ID, bestW, best) {
			best, bestW = m.ID, w
		}
	}
	return best
}

// Top is Top(target, r.Members(), k): looked up for every observation
// sent and every target held, so the members' keys are not hashed again.
func (r *Ranking) Top(target string, k int) []Member {
	if k <= 0 {
		return nil
	}
	tk := targetKey(target)
	out := make([]Member, 0, min(k, len(r.members)))
	ws := make([]uint64, 0, cap(out))
	for j, m := range r.members {
		w := combine(tk, r.keys[j])
		if len(out) == k && !ranksBefore(w, m.ID, ws[k-1], out[k-1].ID) {
			continue
		}
		if slices.ContainsFunc(out, func(o Member) bool { return o.ID == m.ID }) {
			continue
		}
		i := len(out)
		for i > 0 && ranksBefore(w, m.ID, ws[i-1], out[i-1].ID) {
			i--
		}
		if len(out) < k {
			out, ws = append(out, Member{}), append(ws, 0)
		}
		copy(out[i+1:], out[i:len(out)-1])
		copy(ws[i+1:], ws[i:len(ws)-1])
		out[i], ws[i] = m, w
	}
	return out
}

// Leads reports whether Leader(target) is id. It stops at the first member
// that outranks id, which for all but one in N targets is one of the
// first few: an agent marking the targets it leads ranks about two
// members a target, not N.
func (r *Ranking) Leads(target, id string) bool {
	tk := targetKey(target)
	w := combine(tk, memberKey(id))
	present := false
	for i, m := range r.members {
		if m.ID == id {
			present = true
			continue
		}
		if ranksBefore(combine(tk, r.keys[i]), m.ID, w, id) {
			return false
		}
	}
	return present
}
