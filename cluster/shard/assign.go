package shard

import (
	"slices"
	"strings"
)

// Assignment is the result of Assign: for each target, per region, the member
// IDs that probe it, ranked. It is immutable and safe for concurrent use.
//
// It is stored flat (one int32 per owner slot plus one offset per target) so
// that 10k targets cost a few hundred kilobytes, not a map of maps per target.
type Assignment struct {
	members []Member // normalised: sorted by ID, unique
	names   []string // target names, sorted, unique
	// Target i's owners are owners[start[i]:start[i+1]], indices into
	// members, grouped by region in ascending region order and ranked best
	// first within a region.
	start  []int32
	owners []int32
}

// Assign returns, for each target and each of its regions, the `replicas`
// members of that region with the highest Weight(target, member.ID), ties
// broken by the smaller member ID. A region with fewer members gives all of
// them. The answer does not depend on the order of targets or members.
//
// replicas below 1 is treated as 1: a target nobody probes is never what the
// caller means. Duplicate target names are merged (the union of their
// regions; any with no regions means every region), duplicate member IDs are
// collapsed (see Rank).
func Assign(targets []Target, members []Member, replicas int) Assignment {
	replicas = max(replicas, 1)
	ms := normalize(members)

	// Members per region, region names sorted; within a region members stay
	// sorted by ID, so a strict ">" comparison breaks weight ties by ID.
	var regions []string
	for _, m := range ms {
		regions = append(regions, m.Region)
	}
	slices.Sort(regions)
	regions = slices.Compact(regions)
	byRegion := make([][]int32, len(regions))
	for i, m := range ms {
		r, _ := slices.BinarySearch(regions, m.Region)
		byRegion[r] = append(byRegion[r], int32(i))
	}
	mkeys := make([]uint64, len(ms))
	for i, m := range ms {
		mkeys[i] = memberKey(m.ID)
	}

	ts := mergeTargets(targets)
	a := Assignment{
		members: ms,
		names:   make([]string, len(ts)),
		start:   make([]int32, len(ts)+1),
	}
	// Typical size: every target in every region with a full complement.
	a.owners = make([]int32, 0, len(ts)*len(regions)*replicas)

	want := make([]bool, len(regions))  // scratch: regions of the current target
	top := make([]int32, 0, replicas)   // scratch: best members so far in a region
	topW := make([]uint64, 0, replicas) // and their weights
	for ti, t := range ts {
		a.names[ti] = t.Name
		a.start[ti] = int32(len(a.owners))
		tk := targetKey(t.Name)
		for r := range want {
			want[r] = t.all
		}
		for _, name := range t.regions {
			if r, ok := slices.BinarySearch(regions, name); ok {
				want[r] = true
			}
		}
		for r, rm := range byRegion {
			if !want[r] {
				continue
			}
			top, topW = top[:0], topW[:0]
			for _, mi := range rm {
				top, topW = offer(top, topW, replicas, mi, combine(tk, mkeys[mi]))
			}
			a.owners = append(a.owners, top...)
		}
	}
	a.start[len(ts)] = int32(len(a.owners))
	return a
}

// offer inserts member mi with weight w into the ranked buffer (top, topW)
// of at most k entries, best first, and returns the buffer. Members must be
// offered in ascending ID order: an equal weight then ranks after the
// members already there, which is the tie-break by smaller ID. k is 1-3 in
// practice, so a linear shift beats a heap.
func offer(top []int32, topW []uint64, k int, mi int32, w uint64) ([]int32, []uint64) {
	if len(top) == k && w <= topW[k-1] {
		return top, topW
	}
	if len(top) < k {
		top, topW = append(top, 0), append(topW, 0)
	}
	j := len(top) - 1
	for j > 0 && w > topW[j-1] {
		top[j], topW[j] = top[j-1], topW[j-1]
		j--
	}
	top[j], topW[j] = mi, w
	return top, topW
}

// target is a Target after merging duplicates.
type target struct {
	Name    string
	all     bool     // every region
	regions []string // when !all
}

// mergeTargets sorts targets by name and merges duplicates, so that the
// assignment does not depend on input order.
func mergeTargets(targets []Target) []target {
	ts := make([]target, 0, len(targets))
	sorted := true // strictly: no duplicate to merge either
	for i, t := range targets {
		ts = append(ts, target{Name: t.Name, all: len(t.Regions) == 0, regions: t.Regions})
		if i > 0 && targets[i-1].Name >= t.Name {
			sorted = false
		}
	}
	if sorted {
		// A caller that passes its targets in order (the cluster, from its
		// last assignment) skips the sort: a third of Assign's time at 20k
		// targets.
		return ts
	}
	slices.SortStableFunc(ts, func(a, b target) int { return strings.Compare(a.Name, b.Name) })
	out := ts[:0]
	for _, t := range ts {
		if n := len(out); n > 0 && out[n-1].Name == t.Name {
			last := &out[n-1]
			last.all = last.all || t.all
			// Copy before appending: t.regions belongs to the caller.
			last.regions = append(slices.Clip(last.regions), t.regions...)
			continue
		}
		out = append(out, t)
	}
	return out
}

// slots returns target's owner slots, or nil when it is not assigned.
func (a Assignment) slots(target string) []int32 {
	i, ok := slices.BinarySearch(a.names, target)
	if !ok {
		return nil
	}
	return a.owners[a.start[i]:a.start[i+1]]
}

// member returns the index of memberID, or -1.
func (a Assignment) member(memberID string) int32 {
	i, ok := slices.BinarySearchFunc(a.members, memberID, func(m Member, id string) int {
		return strings.Compare(m.ID, id)
	})
	if !ok {
		return -1
	}
	return int32(i)
}

// Owners returns target's owners: region -> member IDs, best ranked first.
// It is nil for an unknown target. It allocates; IsOwner does not.
func (a Assignment) Owners(target string) map[string][]string {
	s := a.slots(target)
	if len(s) == 0 {
		return nil
	}
	out := make(map[string][]string)
	for _, mi := range s {
		m := a.members[mi]
		out[m.Region] = append(out[m.Region], m.ID)
	}
	return out
}

// OwnersIn returns target's owners in region, best ranked first.
func (a Assignment) OwnersIn(target, region string) []string {
	var out []string
	for _, mi := range a.slots(target) {
		if m := a.members[mi]; m.Region == region {
			out = append(out, m.ID)
		}
	}
	return out
}

// IsOwner reports whether memberID probes target.
func (a Assignment) IsOwner(target, memberID string) bool {
	mi := a.member(memberID)
	return mi >= 0 && slices.Contains(a.slots(target), mi)
}

// OwnedBy returns the names of the targets memberID probes, sorted.
func (a Assignment) OwnedBy(memberID string) []string {
	mi := a.member(memberID)
	if mi < 0 {
		return nil
	}
	var out []string
	for i, name := range a.names {
		if slices.Contains(a.owners[a.start[i]:a.start[i+1]], mi) {
			out = append(out, name)
		}
	}
	return out
}

// Regions returns the regions that probe target (those with an owner),
// sorted. A region the target lists but that has no member is absent: the
// caller computing a quorum should use the configured regions instead, so that
// a region that lost all its agents still counts as a region without a vote.
func (a Assignment) Regions(target string) []string {
	var out []string
	for _, mi := range a.slots(target) {
		r := a.members[mi].Region
		if n := len(out); n == 0 || out[n-1] != r {
			out = append(out, r) // slots are grouped by region in order
		}
	}
	return out
}

// Targets returns every assigned target's name, sorted. The slice is shared:
// do not modify it.
func (a Assignment) Targets() []string { return a.names }

// Members returns the members the assignment was computed from, sorted by ID
// with duplicates collapsed. The slice is shared: do not modify it.
func (a Assignment) Members() []Member { return a.members }

// Dropped calls fn for each (target, member) that owns the target in a but
// not in next: the former owners of a reassignment. Both assignments are
// walked once, in target order (a map of owners per target, asked of both,
// was a third of a 100-agent fleet's CPU while it assembled).
func (a Assignment) Dropped(next Assignment, fn func(target, id string)) {
	j := 0
	for i, name := range a.names {
		for j < len(next.names) && next.names[j] < name {
			j++
		}
		var kept []int32
		if j < len(next.names) && next.names[j] == name {
			kept = next.owners[next.start[j]:next.start[j+1]]
		}
	owners:
		for _, mi := range a.owners[a.start[i]:a.start[i+1]] {
			id := a.members[mi].ID
			for _, ni := range kept {
				if next.members[ni].ID == id {
					continue owners
				}
			}
			fn(name, id)
		}
	}
}
