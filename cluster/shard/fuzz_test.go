package shard

import (
	"reflect"
	"slices"
	"strconv"
	"testing"
)

// scenario decodes fuzz bytes into targets and members. Names come from a
// small alphabet so that duplicate target names, duplicate member IDs and
// regions without members all happen often; "r4" never has a member.
//
//	b[0]         replicas (0-3; 0 means 1)
//	b[1]         member count (0-15), then one byte per member:
//	             high nibble the ID (m0-m15), low 2 bits the region (r0-r3)
//	then         one byte per target: the name (t0-t31) and a second byte
//	             whose low 5 bits pick regions r0-r4 (0: every region)
func scenario(b []byte) (ts []Target, ms []Member, replicas int) {
	next := func() (byte, bool) {
		if len(b) == 0 {
			return 0, false
		}
		v := b[0]
		b = b[1:]
		return v, true
	}
	r, _ := next()
	replicas = int(r % 4)
	n, _ := next()
	for range n % 16 {
		v, ok := next()
		if !ok {
			break
		}
		ms = append(ms, Member{ID: "m" + strconv.Itoa(int(v>>4)), Region: "r" + strconv.Itoa(int(v&3))})
	}
	for {
		name, ok := next()
		if !ok {
			break
		}
		mask, _ := next()
		t := Target{Name: "t" + strconv.Itoa(int(name%32))}
		for i := range 5 {
			if mask&(1<<i) != 0 {
				t.Regions = append(t.Regions, "r"+strconv.Itoa(i))
			}
		}
		ts = append(ts, t)
	}
	return ts, ms, replicas
}

// rotate is a deterministic reordering (Reverse then rotate by k), so that
// a failing input reproduces without a random source.
func rotate[T any](s []T, k int) []T {
	s = slices.Clone(s)
	slices.Reverse(s)
	if len(s) > 0 {
		k %= len(s)
		s = append(s[k:], s[:k]...)
	}
	return s
}

// wanted is, per merged target name, the regions it asks for; nil means all.
func wanted(ts []Target) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	all := map[string]bool{}
	for _, t := range ts {
		if len(t.Regions) == 0 {
			all[t.Name] = true
		}
		if out[t.Name] == nil {
			out[t.Name] = map[string]bool{}
		}
		for _, r := range t.Regions {
			out[t.Name][r] = true
		}
	}
	for name := range all {
		out[name] = nil
	}
	return out
}

func FuzzAssign(f *testing.F) {
	f.Add([]byte{1, 6, 0x00, 0x11, 0x22, 0x31, 0x42, 0x53, 0, 0, 1, 0, 2, 1, 3, 16}, uint8(0))
	f.Add([]byte{2, 4, 0x00, 0x10, 0x20, 0x30, 5, 0, 5, 3, 6, 31}, uint8(3))
	f.Add([]byte{0, 0, 1, 0, 2, 4}, uint8(1))                   // no members at all
	f.Add([]byte{3, 3, 0x00, 0x01, 0x02, 7, 2, 7, 0}, uint8(2)) // one ID in three regions; a target listed twice
	f.Add([]byte{1, 15, 0x00, 0x11, 0x22, 0x33, 0x40, 0x51, 0x62, 0x73, 0x80, 0x91, 0xa2, 0xb3, 0xc0, 0xd1, 0xe2, 9, 16, 10, 1}, uint8(7))
	f.Fuzz(func(t *testing.T, b []byte, k uint8) {
		ts, ms, replicas := scenario(b)
		a := Assign(ts, ms, replicas)

		// Determinism and order independence.
		if again := Assign(ts, ms, replicas); !reflect.DeepEqual(a, again) {
			t.Fatal("Assign is not deterministic")
		}
		if other := Assign(rotate(ts, int(k)), rotate(ms, int(k)+1), replicas); !reflect.DeepEqual(a, other) {
			t.Fatalf("assignment depends on input order (targets %v, members %v)", ts, ms)
		}

		// Coverage: each target gets min(replicas, members in region)
		// owners in each region it asks for, the best ranked by Weight.
		norm := normalize(ms)
		perRegion := map[string][]string{}
		for _, m := range norm {
			perRegion[m.Region] = append(perRegion[m.Region], m.ID)
		}
		want := wanted(ts)
		if len(a.Targets()) != len(want) || !slices.IsSorted(a.Targets()) {
			t.Fatalf("Targets() = %v for %d distinct names", a.Targets(), len(want))
		}
		k1 := max(replicas, 1)
		for name, regions := range want {
			owners := a.Owners(name)
			var withOwners []string
			for r, ids := range perRegion {
				asked := regions == nil || regions[r]
				got := a.OwnersIn(name, r)
				if !asked {
					if len(got) != 0 {
						t.Fatalf("%s: owners %v in region %s it does not ask for", name, got, r)
					}
					continue
				}
				if len(got) != min(k1, len(ids)) {
					t.Fatalf("%s in %s: %d owners %v, want min(%d, %d)", name, r, len(got), got, k1, len(ids))
				}
				if !reflect.DeepEqual(got, owners[r]) {
					t.Fatalf("%s in %s: OwnersIn %v, Owners %v", name, r, got, owners[r])
				}
				withOwners = append(withOwners, r)
				// Rendezvous: every owner outranks every non-owner of
				// its region, and owners come best first.
				for i, o := range got {
					if i > 0 && !ranksBefore(Weight(name, got[i-1]), got[i-1], Weight(name, o), o) {
						t.Fatalf("%s in %s: owners %v not in rank order", name, r, got)
					}
					for _, id := range ids {
						if !slices.Contains(got, id) && ranksBefore(Weight(name, id), id, Weight(name, o), o) {
							t.Fatalf("%s in %s: non-owner %s outranks owner %s", name, r, id, o)
						}
					}
				}
			}
			slices.Sort(withOwners)
			if got := a.Regions(name); !slices.Equal(got, withOwners) {
				t.Fatalf("%s: Regions() = %v, want %v", name, got, withOwners)
			}
			if len(owners) != len(withOwners) {
				t.Fatalf("%s: Owners has regions %v, want %v", name, owners, withOwners)
			}
		}

		// IsOwner and OwnedBy agree with Owners, for members and strangers.
		for _, m := range append(slices.Clone(norm), Member{ID: "stranger"}) {
			owned := a.OwnedBy(m.ID)
			if !slices.IsSorted(owned) {
				t.Fatalf("OwnedBy(%s) = %v, not sorted", m.ID, owned)
			}
			for _, name := range a.Targets() {
				is := a.IsOwner(name, m.ID)
				if is != slices.Contains(owned, name) {
					t.Fatalf("IsOwner(%s, %s) = %v, OwnedBy %v", name, m.ID, is, owned)
				}
				if is != slices.Contains(a.Owners(name)[m.Region], m.ID) {
					t.Fatalf("IsOwner(%s, %s) = %v, Owners %v", name, m.ID, is, a.Owners(name))
				}
			}
		}

		// The leader is the best ranked member overall.
		for name := range want {
			rank := Rank(name, ms)
			leader := Leader(name, ms)
			if len(rank) == 0 && leader != "" || len(rank) > 0 && leader != rank[0].ID {
				t.Fatalf("%s: Leader %q, Rank %v", name, leader, rank)
			}
		}

		// A leave moves only what it must: the leaver's targets get a new
		// owner in its region; no other (target, owner) pair changes.
		if len(norm) == 0 {
			return
		}
		gone := norm[int(k)%len(norm)]
		var rest []Member
		for _, m := range ms {
			if m.ID != gone.ID {
				rest = append(rest, m)
			}
		}
		after := Assign(ts, rest, replicas)
		for name := range want {
			for r, ids := range a.Owners(name) {
				now := after.OwnersIn(name, r)
				for _, id := range ids {
					if id != gone.ID && !slices.Contains(now, id) {
						t.Fatalf("%s in %s: %s lost the target when %s left (%v -> %v)", name, r, id, gone.ID, ids, now)
					}
				}
				if r != gone.Region && !slices.Equal(ids, now) {
					t.Fatalf("%s in %s: owners changed %v -> %v when %s left %s", name, r, ids, now, gone.ID, gone.Region)
				}
			}
		}
	})
}
