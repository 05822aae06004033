package cluster

import (
	"encoding/binary"
	"math/bits"
	"slices"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/vantage-probe/vantage/cluster/shard"
)

// Anti-entropy by digest. memberlist's periodic push/pull used to carry the
// whole table (every fresh observation, verdict and incident) both ways:
// 96-97% of an agent's gossip bytes, growing with targets x regions on
// every agent. Gossip and direct sends already bring almost everything;
// push/pull only has to find what they lost. So a periodic push/pull
// carries a digest instead: the entries hashed into buckets keyed by the
// target. Each side compares the other's digest with its own and sends the
// entries of the buckets that differ straight to the peer, over TCP
// (memberlist's reliable send), as a repair message merged like a full state.
// Both sides do it, so each gets what the other has and it lacks.
//
// A join (and a re-join after a partition) still exchanges the full
// state: a newcomer holds nothing to compare.

// An entry's identity in a digest is what orders it: an observation's
// (target, agent, boot, seq), a verdict's (target, leader, boot, seq), an
// incident's encoding (records of one incident only gain facts, so equal
// records encode alike). Freshness is judged locally: only fresh
// observations count, as only they were ever sent.
const (
	// minDigestBuckets and maxDigestBuckets bound a digest: 256 bytes to
	// 32 KB at 4 bytes a bucket. Within them the count grows with the
	// entries (entriesPerBucket), so that a differing bucket sends a
	// few dozen entries, not a large share of the table.
	minDigestBuckets = 64
	maxDigestBuckets = 8192
	entriesPerBucket = 32

	// pendingDigests bounds the peers' digests waiting to be compared; a
	// push/pull beyond them is skipped (counted), the next one repairs.
	pendingDigests = 4
)

// digest is one agent's summary of its table for a push/pull.
type digest struct {
	Node    string   // the sender's memberlist node name: where its missing entries go
	Buckets []uint32 // a power of two of them; each the sum of its entries' hashes
}

// DigestBuckets is how many 4-byte buckets a push/pull digest of a table
// of entries entries carries (harness/scale's cost model counts with it).
func DigestBuckets(entries int) int { return bucketsFor(entries) }

// bucketsFor is the bucket count for a table of entries entries.
func bucketsFor(entries int) int {
	n := minDigestBuckets
	for n < maxDigestBuckets && n*entriesPerBucket < entries {
		n *= 2
	}
	return n
}

// targetKey spreads target names over buckets: the low bits (the bucket
// index) depend on every byte.
func targetKey(target string) uint64 { return shard.TargetKey(target) }

// entryHash hashes an entry's kind, key strings and version numbers.
func entryHash(kind byte, a, b string, boot, seq uint64) uint32 {
	h := uint64(14695981039346656037) ^ uint64(kind)
	for _, s := range [2]string{a, b} {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= 1099511628211
		}
		h ^= 0xff // separates ("ab", "c") from ("a", "bc")
		h *= 1099511628211
	}
	h = shard.Mix64(h ^ boot)
	h = shard.Mix64(h ^ seq)
	return uint32(h ^ h>>32)
}

func bytesHash(b []byte) uint32 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	h = shard.Mix64(h)
	return uint32(h ^ h>>32)
}

// tableView is the part of the table a push/pull shares: fresh
// observations (none in a targeted fleet), verdicts and incidents, with
// each incident's encoding.
type tableView struct {
	obs       []*Observation
	verdicts  []heldRef
	incidents []*Incident
	encoded   [][]byte // incidents' encodings, by index
}

// heldRef is a verdict as the table holds it, with its target's name: a
// digest hashes its leader and version only, which a held verdict never
// changes (a newer one is a new record), so a view need not copy 100k
// verdicts out (20 MB of garbage per push/pull at 100k targets) to hash
// them. Only the ones sent are made full, under c.mu.
type heldRef struct {
	target string
	h      *heldVerdict
}

// fullVerdicts makes refs' verdicts whole; call under c.mu (a held verdict's
// times change as its leader evaluates it).
func fullVerdicts(refs []heldRef) []*Verdict {
	out := make([]*Verdict, len(refs))
	for i, r := range refs {
		out[i] = r.h.full(r.target)
	}
	return out
}

func (v *tableView) entries() int { return len(v.obs) + len(v.verdicts) + len(v.incidents) }

// viewLocked collects what a push/pull shares. The slices hold the table's
// own pointers: read them under c.mu, or copy.
func (c *Cluster) viewLocked(now time.Time) tableView {
	v := tableView{verdicts: make([]heldRef, 0, len(c.targets))}
	// In a targeted fleet two agents hold different targets' observations:
	// their holders repair them (holders.go), push/pull the rest.
	targeted := c.targetedLocked()
	if !targeted {
		v.obs = make([]*Observation, 0, len(c.targets)*2)
	}
	for name, rec := range c.targets {
		if !targeted {
			for _, o := range rec.obs {
				if c.freshLocked(o, now) {
					v.obs = append(v.obs, o)
				}
			}
		}
		if rec.verdict != nil {
			v.verdicts = append(v.verdicts, heldRef{name, rec.verdict})
		}
	}
	v.incidents = slices.Clone(c.incidents) // mergeIncident sorts c.incidents in place; the view is read unlocked
	v.encoded = make([][]byte, len(c.incidents))
	for i, in := range c.incidents {
		v.encoded[i] = encodeIncident(in)
	}
	return v
}

// buckets sums the view's entry hashes into n buckets (a power of two).
func (v *tableView) buckets(n int) []uint32 {
	out := make([]uint32, n)
	mask := uint64(n - 1)
	for _, o := range v.obs {
		out[targetKey(o.Target)&mask] += entryHash(1, o.Target, o.AgentID, o.Boot, o.Seq)
	}
	for _, r := range v.verdicts {
		out[targetKey(r.target)&mask] += entryHash(2, r.target, r.h.leader, r.h.boot, r.h.seq)
	}
	for i, in := range v.incidents {
		out[targetKey(in.Target)&mask] += bytesHash(v.encoded[i])
	}
	return out
}

// fold sums a digest of len(b) buckets down to n (a smaller power of two):
// an entry's bucket at n is its bucket at len(b) with the high bits
// dropped, so two agents whose tables chose different sizes still compare.
func fold(b []uint32, n int) []uint32 {
	if len(b) <= n {
		return b
	}
	out := make([]uint32, n)
	for i, x := range b {
		out[i&(n-1)] += x
	}
	return out
}

// differing returns the view's entries in the buckets (of n) where ours
// and theirs differ.
func (v *tableView) differing(ours, theirs []uint32) (obs []*Observation, verdicts []heldRef, incidents []*Incident) {
	n := len(ours)
	mask := uint64(n - 1)
	diff := func(target string) bool {
		i := targetKey(target) & mask
		return ours[i] != theirs[i]
	}
	for _, o := range v.obs {
		if diff(o.Target) {
			obs = append(obs, o)
		}
	}
	for _, r := range v.verdicts {
		if diff(r.target) {
			verdicts = append(verdicts, r)
		}
	}
	for _, in := range v.incidents {
		if diff(in.Target) {
			incidents = append(incidents, in)
		}
	}
	return obs, verdicts, incidents
}

// localDigest is LocalState for a periodic push/pull.
func (c *Cluster) localDigest(now time.Time) []byte {
	c.mu.Lock()
	v := c.viewLocked(now)
	c.mu.Unlock()
	// Hashing reads only keys and version numbers, which a table entry
	// never changes once stored (a newer observation is a new pointer).
	return encodeDigest(&digest{Node: c.cfg.NodeName, Buckets: v.buckets(bucketsFor(v.entries()))})
}

// queueDigest hands a peer's digest to syncLoop: memberlist's push/pull
// goroutine must not wait for our reply's TCP connection.
func (c *Cluster) queueDigest(d digest) {
	select {
	case c.digests <- d:
	default:
		c.m.inboxDrops.Inc()
	}
}

// syncLoop answers peers' digests with the entries they lack.
func (c *Cluster) syncLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case d := <-c.digests:
			c.answerDigest(d)
		case r := <-c.resends:
			c.resendTo(r)
		}
	}
}

// answerDigest sends the peer the entries of every bucket where its digest
// and ours differ. It sends ours only: the peer, comparing our digest, sends
// us its own.
func (c *Cluster) answerDigest(d digest) {
	now := c.now()
	c.mu.Lock()
	v := c.viewLocked(now)
	var node *memberlist.Node
	if m := c.members[d.Node]; m != nil && !m.Self {
		node = &memberlist.Node{Name: d.Node, Addr: m.ip, Port: m.port}
	}
	c.mu.Unlock()
	// Hashed outside the lock, as in localDigest.
	ours := v.buckets(max(len(d.Buckets), bucketsFor(v.entries())))
	n := min(len(ours), len(d.Buckets))
	ours, theirs := fold(ours, n), fold(d.Buckets, n)
	obs, verdicts, incidents := v.differing(ours, theirs)
	sent := len(obs) + len(verdicts) + len(incidents)
	if sent == 0 {
		// Nothing differs: we hold what the peer holds.
		c.synced.Store(true)
		return
	}
	c.m.digestEntries.Add(len(obs))
	c.m.repairedV.Add(len(verdicts))
	c.m.repairedI.Add(len(incidents))
	if node == nil {
		return
	}
	c.mu.Lock() // encoding reads fields that receive and heartbeat update
	msg := encodeStateAs(msgRepair, obs, incidents, fullVerdicts(verdicts), now)
	c.mu.Unlock()
	if err := c.ml.SendReliable(node, msg); err != nil {
		c.m.sendErrors.Inc()
	}
}

// encodeDigest writes a digest: the node name, log2 of the bucket count,
// then the buckets as 4 bytes each.
func encodeDigest(d *digest) []byte {
	e := encoder{b: make([]byte, 0, 8+len(d.Node)+4*len(d.Buckets))}
	e.byte(msgDigest)
	e.byte(wireVersion)
	e.str(d.Node)
	e.buckets(d.Buckets)
	return e.b
}

func decodeDigest(b []byte) (digest, error) {
	dec := decoder{b: b}
	dec.header(msgDigest)
	var d digest
	d.Node = dec.str()
	d.Buckets = dec.buckets(maxDigestBuckets)
	return d, dec.err
}

// buckets writes a power-of-two count of bucket sums: log2 of the count,
// then 4 bytes each (a digest's, a resend request's).
func (e *encoder) buckets(bs []uint32) {
	e.byte(byte(bits.TrailingZeros(uint(len(bs)))))
	for _, x := range bs {
		e.b = binary.BigEndian.AppendUint32(e.b, x)
	}
}

// buckets reads what encoder.buckets wrote, at most limit of them, as the
// rest of the message.
func (d *decoder) buckets(limit int) []uint32 {
	shift := d.byte()
	if d.err != nil {
		return nil
	}
	if 1<<min(shift, 31) > limit {
		d.err = errTooLarge
		return nil
	}
	n := 1 << shift
	if len(d.b) != 4*n {
		d.err = errShort
		return nil
	}
	out := make([]uint32, n)
	for i := range out {
		out[i] = binary.BigEndian.Uint32(d.b[4*i:])
	}
	return out
}
