package agent

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/agent/state"
)

// TestPersistedAccountingIsOneSamplePerBucket: the SLO accounting kept in
// the targets' records (two buckets each), spilled to the persister's map
// (a third bucket, a target without a record, a removed target's record)
// adds up to what one map keyed by target and bucket held, with one
// sample per target and bucket in each write (the store adds samples in
// whole milliseconds: two would round differently from their sum).
func TestPersistedAccountingIsOneSamplePerBucket(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	p := &persister{meta: map[string]metaRec{}}
	names := []string{"a", "b", "c", "d"}
	recs := map[string]*persisted{}
	for _, n := range names[:3] { // "d" has no record
		recs[n] = newPersisted()
	}
	want := map[sloKey]state.Counts{}
	for step := range 5000 {
		n := names[rng.IntN(len(names))]
		switch r := rng.IntN(100); {
		case r < 2 && recs[n] != nil: // a reload removes n, another brings it back
			p.adopt(orphan{n, recs[n]})
			recs[n] = newPersisted()
		case r < 6: // a bulk write
			seen := map[sloKey]bool{}
			check := func(k sloKey, c state.Counts) {
				if seen[k] {
					t.Fatalf("step %d: two samples of %v in one write", step, k)
				}
				seen[k] = true
				if want[k] != c {
					t.Fatalf("step %d: %v carries %+v, want %+v", step, k, c, want[k])
				}
			}
			for name, rec := range recs {
				for i, c := range rec.counts {
					if c.Total() != 0 {
						check(sloKey{name, rec.bucket[i]}, c)
					}
				}
			}
			for k, c := range p.slo {
				check(k, c)
			}
			if len(seen) != len(want) {
				t.Fatalf("step %d: the write carries %d buckets, want %d", step, len(seen), len(want))
			}
			if rng.IntN(3) > 0 { // it succeeded
				for _, rec := range recs {
					rec.counts = [2]state.Counts{}
				}
				p.slo = nil
				clear(want)
			}
		default:
			bucket := int64(3600 * (step/300 + rng.IntN(2))) // mostly two buckets, at times a third
			c := state.Counts{Up: time.Duration(1 + rng.IntN(5000))}
			p.add(recs[n], n, bucket, c)
			k := sloKey{n, bucket}
			sum := want[k]
			sum.Add(c)
			want[k] = sum
		}
	}
	if len(p.meta) != 0 {
		t.Errorf("meta of records that held none: %v", p.meta)
	}
}

// TestPersistedMetaOutlivesRemoval: what the store holds of a removed
// target's meta is still known when the target comes back with a new
// record, so that an unchanged meta is not written again.
func TestPersistedMetaOutlivesRemoval(t *testing.T) {
	p := &persister{meta: map[string]metaRec{}}
	at := time.Unix(1_700_000_000, 5)
	st := &targetState{pers: newPersisted()}
	states := map[string]*targetState{"x": st}
	if m := p.metaOf(states, "x"); m != noMeta {
		t.Fatalf("a new record holds %+v", m)
	}
	p.setMeta(states, "x", metaRec{wallNS(at), 0.999})
	p.adopt(orphan{"x", st.pers})
	back := map[string]*targetState{"x": {pers: newPersisted()}}
	if m := p.metaOf(back, "x"); m.firstSeen != wallNS(at) || m.objective != 0.999 {
		t.Errorf("after removal and return: %+v", m)
	}
	if m := p.metaOf(map[string]*targetState{}, "x"); m.firstSeen != wallNS(at) {
		t.Errorf("without a state: %+v", m)
	}
	p.setMeta(back, "x", metaRec{wallNS(at), 0.99})
	if _, ok := p.meta["x"]; ok || back["x"].pers.objective != 0.99 {
		t.Errorf("a new meta stays in the map: %v", p.meta)
	}
	if wallNS(time.Time{}) == wallNS(time.Unix(0, 0)) {
		t.Error("the zero time reads as the epoch")
	}
}
