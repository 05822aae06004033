// Package state keeps what an agent must not lose when it restarts: the
// fleet's incidents, each target's SLO accounting and its recent history
// (the page's sparkline), in one embedded file per agent.
//
// The store is bbolt (go.etcd.io/bbolt), a B+tree in one memory-mapped
// file. It was chosen because a crash cannot corrupt what it committed:
// a write transaction never changes a page in place. It copies every page
// it touches to free space, fsyncs them, and only then writes (and
// fsyncs) a new meta page pointing at the new root; there are two meta
// pages, written alternately, each with a checksum. A process killed or a
// machine that loses power mid-write leaves the previous meta page, and
// so the previous committed tree, intact: on open bbolt takes the newest
// meta page whose checksum holds. So a batch is either wholly there or
// wholly absent, never half written (TestCrashKeepsCommittedBatches kills
// a writer with SIGKILL to hold it to that). It is pure Go, needs no
// server, and takes a file lock, so two agents can never share one
// directory by mistake.
package state

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/vantage-probe/vantage/cluster"
)

// FileName is the store's file in the state directory.
const FileName = "vantage.db"

// BucketWidth is the span of one SLO accounting bucket: a target costs
// about 30 bytes an hour, 25 KB over a 28-day window and its margin.
const BucketWidth = time.Hour

var (
	bIncidents = []byte("incidents") // incident ID -> JSON cluster.Incident
	bTargets   = []byte("targets")   // target name -> JSON TargetMeta
	bSLO       = []byte("slo")       // target \x00 bucket start (8 bytes BE, Unix s) -> Counts
	bHistory   = []byte("history")   // target name -> the agent's encoded history
	bMeta      = []byte("meta")      // "schema" -> 1
	// bResolved indexes resolved incidents by resolution time (8 bytes BE,
	// Unix ms, then the ID), so pruning reads only what it deletes.
	bResolved = []byte("resolved")
)

// ErrLocked is returned by Open and OpenReadOnly when another process (a
// running agent) holds the store.
var ErrLocked = errors.New("the state file is locked by another process (a running agent?)")

// Store is one agent's state file.
type Store struct {
	db   *bolt.DB
	path string
}

// Path is the store's file.
func (s *Store) Path() string { return s.path }

// Open opens (creating it and dir when needed) the store of an agent for
// reading and writing. It waits at most timeout for another process's
// lock, then fails with ErrLocked.
func Open(dir string, timeout time.Duration) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	p := filepath.Join(dir, FileName)
	db, err := bolt.Open(p, 0o600, &bolt.Options{Timeout: timeout, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, openErr(p, err)
	}
	s := &Store{db: db, path: p}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bIncidents, bTargets, bSLO, bHistory, bMeta, bResolved} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bMeta).Put([]byte("schema"), []byte{1})
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("state file %s: %w", p, err)
	}
	return s, nil
}

// OpenReadOnly opens dir's store for reading only (vantage report and
// vantage incident): it shares the lock with other readers and fails with
// ErrLocked after timeout while an agent writes it.
func OpenReadOnly(dir string, timeout time.Duration) (*Store, error) {
	p := filepath.Join(dir, FileName)
	if _, err := os.Stat(p); err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	db, err := bolt.Open(p, 0o600, &bolt.Options{ReadOnly: true, Timeout: timeout})
	if err != nil {
		return nil, openErr(p, err)
	}
	return &Store{db: db, path: p}, nil
}

func openErr(p string, err error) error {
	if errors.Is(err, bolterrors.ErrTimeout) {
		return fmt.Errorf("state file %s: %w; read a running agent with -url instead", p, ErrLocked)
	}
	return fmt.Errorf("state file %s: %w", p, err)
}

// Close closes the file; what was committed stays.
func (s *Store) Close() error { return s.db.Close() }

// TargetMeta is what the store keeps of a target besides its buckets.
type TargetMeta struct {
	// FirstSeen is when the agent first knew the target: the start of its
	// SLO figures.
	FirstSeen time.Time `json:"first_seen"`
	Objective float64   `json:"objective"`
}

// Counts is one bucket of a target's SLO accounting: how long the fleet's
// verdict had it up, down, and unknown (too few regions reporting, no
// verdict yet, or in maintenance) while this agent ran. Time the agent did
// not run is in none of them.
type Counts struct {
	Up, Down, Unknown time.Duration
}

// Add adds o to c.
func (c *Counts) Add(o Counts) { c.Up += o.Up; c.Down += o.Down; c.Unknown += o.Unknown }

// Total is the time accounted.
func (c Counts) Total() time.Duration { return c.Up + c.Down + c.Unknown }

// Sample is an addition to one bucket of one target.
type Sample struct {
	Target string
	Bucket time.Time // the bucket's start, a multiple of BucketWidth
	Counts
}

// Batch is what one flush writes, in one transaction.
type Batch struct {
	Incidents []cluster.Incident    // added or changed
	Dropped   []string              // incident IDs to delete (a duplicate the fleet gave up)
	Targets   map[string]TargetMeta // set
	SLO       []Sample              // added to what the buckets hold
	History   map[string][]byte     // set
}

// Empty reports whether b writes nothing.
func (b *Batch) Empty() bool {
	return len(b.Incidents) == 0 && len(b.Dropped) == 0 && len(b.Targets) == 0 && len(b.SLO) == 0 && len(b.History) == 0
}

// Write commits b in one transaction: all of it or none.
func (s *Store) Write(b *Batch) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		ib := tx.Bucket(bIncidents)
		for i := range b.Incidents {
			v, err := json.Marshal(&b.Incidents[i])
			if err != nil {
				return err
			}
			if err := ib.Put([]byte(b.Incidents[i].ID), v); err != nil {
				return err
			}
			if in := &b.Incidents[i]; !in.Open() {
				rb := tx.Bucket(bResolved)
				rb.FillPercent = 0.9 // keys arrive mostly in order: split pages nearly full
				if err := rb.Put(resolvedKey(in.ResolvedAt, in.ID), nil); err != nil {
					return err
				}
			}
		}
		for _, id := range b.Dropped {
			if err := ib.Delete([]byte(id)); err != nil {
				return err
			}
		}
		tb := tx.Bucket(bTargets)
		for name, m := range b.Targets {
			v, err := json.Marshal(m)
			if err != nil {
				return err
			}
			if err := tb.Put([]byte(name), v); err != nil {
				return err
			}
		}
		sb := tx.Bucket(bSLO)
		for _, smp := range b.SLO {
			k := sloKey(smp.Target, smp.Bucket)
			c := decodeCounts(sb.Get(k))
			c.Add(smp.Counts)
			if err := sb.Put(k, encodeCounts(c)); err != nil {
				return err
			}
		}
		hb := tx.Bucket(bHistory)
		for name, h := range b.History {
			if err := hb.Put([]byte(name), h); err != nil {
				return err
			}
		}
		return nil
	})
}

func resolvedKey(at time.Time, id string) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(id)), uint64(max(at.UnixMilli(), 0)))
	return append(k, id...)
}

// BucketOf is the start of the bucket holding t.
func BucketOf(t time.Time) time.Time { return t.Truncate(BucketWidth) }

func sloKey(target string, bucket time.Time) []byte {
	k := make([]byte, 0, len(target)+9)
	k = append(k, target...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, uint64(bucket.Unix()))
}

func splitSLOKey(k []byte) (string, time.Time, bool) {
	if len(k) < 9 || k[len(k)-9] != 0 {
		return "", time.Time{}, false
	}
	return string(k[:len(k)-9]), time.Unix(int64(binary.BigEndian.Uint64(k[len(k)-8:])), 0).UTC(), true
}

// encodeCounts: three milliseconds counts, 4 bytes each (a bucket holds
// at most an hour).
func encodeCounts(c Counts) []byte {
	b := make([]byte, 0, 12)
	for _, d := range []time.Duration{c.Up, c.Down, c.Unknown} {
		b = binary.BigEndian.AppendUint32(b, uint32(min(max(d.Milliseconds(), 0), 1<<32-1)))
	}
	return b
}

func decodeCounts(b []byte) Counts {
	if len(b) < 12 {
		return Counts{}
	}
	ms := func(i int) time.Duration { return time.Duration(binary.BigEndian.Uint32(b[i:])) * time.Millisecond }
	return Counts{Up: ms(0), Down: ms(4), Unknown: ms(8)}
}

// Snapshot is what an agent restores at start.
type Snapshot struct {
	Incidents []cluster.Incident // oldest first
	Targets   map[string]TargetMeta
	History   map[string][]byte
}

// Load reads what an agent restores: every incident, each target's first
// sighting and objective, and its history.
func (s *Store) Load() (*Snapshot, error) {
	snap := &Snapshot{Targets: map[string]TargetMeta{}, History: map[string][]byte{}}
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		if snap.Incidents, err = incidentsTx(tx, time.Time{}, time.Time{}); err != nil {
			return err
		}
		if err := tx.Bucket(bTargets).ForEach(func(k, v []byte) error {
			var m TargetMeta
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("target %q: %w", k, err)
			}
			snap.Targets[string(k)] = m
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bHistory).ForEach(func(k, v []byte) error {
			snap.History[string(k)] = slices.Clone(v)
			return nil
		})
	})
	return snap, err
}

// Incidents returns the incidents that overlap [from, to) (zero bounds:
// open), oldest first.
func (s *Store) Incidents(from, to time.Time) ([]cluster.Incident, error) {
	var out []cluster.Incident
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = incidentsTx(tx, from, to)
		return err
	})
	return out, err
}

func incidentsTx(tx *bolt.Tx, from, to time.Time) ([]cluster.Incident, error) {
	var out []cluster.Incident
	err := tx.Bucket(bIncidents).ForEach(func(k, v []byte) error {
		var in cluster.Incident
		if err := json.Unmarshal(v, &in); err != nil {
			return fmt.Errorf("incident %q: %w", k, err)
		}
		if !to.IsZero() && !in.StartedAt.Before(to) {
			return nil
		}
		if !from.IsZero() && !in.Open() && in.ResolvedAt.Before(from) {
			return nil
		}
		out = append(out, in)
		return nil
	})
	slices.SortStableFunc(out, func(a, b cluster.Incident) int { return a.StartedAt.Compare(b.StartedAt) })
	return out, err
}

// Incident returns one incident by ID.
func (s *Store) Incident(id string) (cluster.Incident, bool, error) {
	var in cluster.Incident
	found := false
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bIncidents).Get([]byte(id))
		if v == nil {
			return nil
		}
		found = true
		return json.Unmarshal(v, &in)
	})
	return in, found, err
}

// Targets returns every target's meta.
func (s *Store) Targets() (map[string]TargetMeta, error) {
	out := map[string]TargetMeta{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bTargets).ForEach(func(k, v []byte) error {
			var m TargetMeta
			if err := json.Unmarshal(v, &m); err != nil {
				return err
			}
			out[string(k)] = m
			return nil
		})
	})
	return out, err
}

// SLO sums each target's buckets that start in [from, to).
func (s *Store) SLO(from, to time.Time) (map[string]Counts, error) {
	out := map[string]Counts{}
	lo, hi := BucketOf(from), to
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bSLO).ForEach(func(k, v []byte) error {
			name, at, ok := splitSLOKey(k)
			if !ok || at.Before(lo) || !at.Before(hi) {
				return nil
			}
			c := out[name]
			c.Add(decodeCounts(v))
			out[name] = c
			return nil
		})
	})
	return out, err
}

// Prune deletes what ended before cutoff: resolved incidents, SLO buckets,
// and targets (with their history) that have neither a bucket left nor a
// place in the running config (keep). It reads little more than it
// deletes: resolved incidents through their index by resolution time, SLO
// buckets target by target from each one's oldest. It returns how many
// records went.
func (s *Store) Prune(cutoff time.Time, keep func(target string) bool) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		ib, rb := tx.Bucket(bIncidents), tx.Bucket(bResolved)
		limit := uint64(max(cutoff.UnixMilli(), 0))
		var del [][]byte
		c := rb.Cursor()
		for k, _ := c.First(); k != nil && len(k) >= 8 && binary.BigEndian.Uint64(k) < limit; k, _ = c.Next() {
			del = append(del, slices.Clone(k))
		}
		for _, k := range del {
			if ib.Get(k[8:]) != nil {
				n++
			}
			if err := ib.Delete(k[8:]); err != nil {
				return err
			}
			if err := rb.Delete(k); err != nil {
				return err
			}
		}

		// SLO buckets: seek to each target's first bucket, delete the old
		// ones, jump to the next target.
		sb := tx.Bucket(bSLO)
		live := map[string]bool{}
		del = del[:0]
		c = sb.Cursor()
		for k, _ := c.First(); k != nil; {
			name, at, ok := splitSLOKey(k)
			if !ok {
				del = append(del, slices.Clone(k))
				k, _ = c.Next()
				continue
			}
			if at.Add(BucketWidth).Before(cutoff) {
				del = append(del, slices.Clone(k))
				k, _ = c.Next()
				continue
			}
			live[name] = true
			k, _ = c.Seek(append([]byte(name), 1)) // past name\x00<every bucket>
		}
		for _, k := range del {
			if err := sb.Delete(k); err != nil {
				return err
			}
		}
		n += len(del)

		del = del[:0]
		tb := tx.Bucket(bTargets)
		if err := tb.ForEach(func(k, _ []byte) error {
			if name := string(k); !live[name] && (keep == nil || !keep(name)) {
				del = append(del, slices.Clone(k))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range del {
			if err := tb.Delete(k); err != nil {
				return err
			}
			if err := tx.Bucket(bHistory).Delete(k); err != nil {
				return err
			}
		}
		n += len(del)
		return nil
	})
	return n, err
}

// Size is the file's size in bytes.
func (s *Store) Size() int64 {
	var n int64
	_ = s.db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}
