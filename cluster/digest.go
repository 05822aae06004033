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

// walk calls fn with each entry of the view: its kind (1 observation, 2
// verdict, 3 incident), its index in that kind's slice and its target's
// key (its bucket is key&(n-1) of n). The entry's hash (v.hash) is asked
// only where it is needed: a digest's answer looks at every entry's bucket
// and hashes none.
func (v *tableView) walk(fn func(kind byte, i int, key uint64)) {
	for i, o := range v.obs {
		fn(1, i, targetKey(o.Target))
	}
	for i, r := range v.verdicts {
		fn(2, i, targetKey(r.target))
	}
	for i, in := range v.incidents {
		fn(3, i, targetKey(in.Target))
	}
}

// hash is an entry's hash, the digest's sum term: the one place an entry's
// identity is hashed, on which digests, their answers and key lists agree.
func (v *tableView) hash(kind byte, i int) uint32 {
	switch kind {
	case 1:
		o := v.obs[i]
		return entryHash(1, o.Target, o.AgentID, o.Boot, o.Seq)
	case 2:
		r := v.verdicts[i]
		return entryHash(2, r.target, r.h.leader, r.h.boot, r.h.seq)
	default:
		return bytesHash(v.encoded[i])
	}
}

// picked collects some of a view's entries by kind and index (walk's).
type picked struct {
	obs       []*Observation
	verdicts  []heldRef
	incidents []*Incident
}

func (p *picked) add(v *tableView, kind byte, i int) {
	switch kind {
	case 1:
		p.obs = append(p.obs, v.obs[i])
	case 2:
		p.verdicts = append(p.verdicts, v.verdicts[i])
	case 3:
		p.incidents = append(p.incidents, v.incidents[i])
	}
}

func (p *picked) len() int { return len(p.obs) + len(p.verdicts) + len(p.incidents) }

// buckets sums the view's entry hashes into n buckets (a power of two).
func (v *tableView) buckets(n int) []uint32 {
	out := make([]uint32, n)
	mask := uint64(n - 1)
	v.walk(func(kind byte, i int, key uint64) { out[key&mask] += v.hash(kind, i) })
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
func (v *tableView) differing(ours, theirs []uint32) picked {
	mask := uint64(len(ours) - 1)
	var p picked
	v.walk(func(kind byte, i int, key uint64) {
		if b := key & mask; ours[b] != theirs[b] {
			p.add(v, kind, i)
		}
	})
	return p
}

// keysFor is the key list of the view's entries in the buckets (of n) where
// ours and theirs differ: the buckets, and each entry's hash.
func (v *tableView) keysFor(node string, ours, theirs []uint32) keyList {
	n := len(ours)
	k := keyList{Node: node, Buckets: make([]uint64, (n+63)/64), n: n}
	for b := range ours {
		if ours[b] != theirs[b] {
			k.Buckets[b/64] |= 1 << (b % 64)
		}
	}
	v.walk(func(kind byte, i int, key uint64) {
		if k.has(key) {
			k.Keys = append(k.Keys, v.hash(kind, i))
		}
	})
	return k
}

// lacking returns the view's entries in k's buckets that k does not list:
// what k's sender lacks (or holds another version of).
func (v *tableView) lacking(k keyList) picked {
	listed := slices.Clone(k.Keys) // a peer need not sort
	slices.Sort(listed)
	var p picked
	v.walk(func(kind byte, i int, key uint64) {
		if k.has(key) {
			if _, found := slices.BinarySearch(listed, v.hash(kind, i)); !found {
				p.add(v, kind, i)
			}
		}
	})
	return p
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

// syncLoop answers peers' digests and key lists with the entries they lack.
func (c *Cluster) syncLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case d := <-c.digests:
			c.answerDigest(d)
		case k := <-c.keyLists:
			c.answerKeys(k)
		case r := <-c.resends:
			c.resendTo(r)
		}
	}
}

// directRepairMax is the most entries a digest's answer sends straight
// away. Beyond it, the answer is a key list and the peer sends what we lack
// (answerKeys). A differing bucket holds about entriesPerBucket entries of
// which typically one differs: when leadership moves over thousands of
// targets (a join, a death), sending whole buckets sent each peer about a
// third of the table (39k verdicts at 100k targets), every push/pull, to
// deliver two thousand. Below it, one bucket or two, the round trip a key
// list costs is not worth its bytes.
const directRepairMax = 2 * entriesPerBucket

// answerDigest compares a peer's digest with ours. Few differing entries:
// it sends ours in the differing buckets, and the peer, comparing our
// digest, sends us its own. More: it sends the peer our key list of those
// buckets, and the peer sends us only what we lack; the peer's own answer
// to our digest does the same the other way.
func (c *Cluster) answerDigest(d digest) {
	now := c.now()
	c.mu.Lock()
	v := c.viewLocked(now)
	var node *memberlist.Node
	var peerFeatures uint64
	if m := c.members[d.Node]; m != nil && !m.Self {
		node = &memberlist.Node{Name: d.Node, Addr: m.ip, Port: m.port}
		peerFeatures = m.features
	}
	c.mu.Unlock()
	// Hashed outside the lock, as in localDigest.
	ours := v.buckets(max(len(d.Buckets), bucketsFor(v.entries())))
	n := min(len(ours), len(d.Buckets))
	ours, theirs := fold(ours, n), fold(d.Buckets, n)
	p := v.differing(ours, theirs)
	if p.len() == 0 {
		// Nothing differs: we hold what the peer holds.
		c.synced.Store(true)
		return
	}
	if node == nil {
		return
	}
	if p.len() > directRepairMax && peerFeatures&featureKeys != 0 {
		k := v.keysFor(c.cfg.NodeName, ours, theirs)
		c.m.keysSent.Add(len(k.Keys))
		if err := c.ml.SendReliable(node, encodeKeys(&k)); err != nil {
			c.m.sendErrors.Inc()
		}
		return
	}
	c.sendRepair(node, &p, now)
}

// queueKeys hands a peer's key list to syncLoop, as queueDigest a digest.
func (c *Cluster) queueKeys(k keyList) {
	select {
	case c.keyLists <- k:
	default:
		c.m.inboxDrops.Inc()
	}
}

// answerKeys sends a peer the entries of its key list's buckets that it
// does not list: what it lacks.
func (c *Cluster) answerKeys(k keyList) {
	now := c.now()
	c.mu.Lock()
	v := c.viewLocked(now)
	m := c.members[k.Node]
	c.mu.Unlock()
	if m == nil || m.Self {
		return
	}
	p := v.lacking(k)
	if p.len() == 0 {
		return
	}
	c.sendRepair(&memberlist.Node{Name: k.Node, Addr: m.ip, Port: m.port}, &p, now)
}

// sendRepair sends a peer entries of our view, counted by kind.
func (c *Cluster) sendRepair(to *memberlist.Node, p *picked, now time.Time) {
	c.m.digestEntries.Add(len(p.obs))
	c.m.repairedV.Add(len(p.verdicts))
	c.m.repairedI.Add(len(p.incidents))
	c.mu.Lock() // encoding reads fields that receive and heartbeat update
	msg := encodeStateAs(msgRepair, p.obs, p.incidents, fullVerdicts(p.verdicts), now)
	c.mu.Unlock()
	if err := c.ml.SendReliable(to, msg); err != nil {
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

// keyList is a digest's answer when many entries differ: the buckets (of
// n) where the two digests differ, and the hash of each entry its sender
// holds in them. Its receiver sends back its entries in those buckets
// whose hash is not listed. 4 bytes an entry instead of the entry (60-100
// bytes a verdict, more an observation).
type keyList struct {
	Node    string   // the sender's memberlist node name: where the entries go
	Buckets []uint64 // a bit set of n buckets
	Keys    []uint32 // entry hashes (walk's)
	n       int
}

// maxKeys bounds a key list: a table's entries (maxStateObservations and
// the verdicts and incidents) fit.
const maxKeys = 1 << 20

// has reports whether an entry of target key key is in a listed bucket.
func (k *keyList) has(key uint64) bool {
	b := key & uint64(k.n-1)
	return k.Buckets[b/64]&(1<<(b%64)) != 0
}

// encodeKeys writes a key list: the node name, log2 of the bucket count,
// the bucket bit set (8 bytes a word), the count of keys and 4 bytes each.
func encodeKeys(k *keyList) []byte {
	e := encoder{b: make([]byte, 0, 16+len(k.Node)+8*len(k.Buckets)+4*len(k.Keys))}
	e.byte(msgKeys)
	e.byte(wireVersion)
	e.str(k.Node)
	e.byte(byte(bits.TrailingZeros(uint(k.n))))
	for _, w := range k.Buckets {
		e.b = binary.BigEndian.AppendUint64(e.b, w)
	}
	e.uvarint(uint64(len(k.Keys)))
	for _, h := range k.Keys {
		e.b = binary.BigEndian.AppendUint32(e.b, h)
	}
	return e.b
}

func decodeKeys(b []byte) (keyList, error) {
	d := decoder{b: b}
	d.header(msgKeys)
	k := keyList{Node: d.str()}
	shift := d.byte()
	if d.err != nil {
		return k, d.err
	}
	if k.Node == "" {
		return k, errShort
	}
	if shift < 6 || 1<<min(shift, 31) > maxDigestBuckets {
		return k, errTooLarge // a bit set is whole words: at least 64 buckets, as every digest
	}
	k.n = 1 << shift
	words := k.n / 64
	if len(d.b) < 8*words {
		return k, errShort
	}
	k.Buckets = make([]uint64, words)
	for i := range k.Buckets {
		k.Buckets[i] = binary.BigEndian.Uint64(d.b[8*i:])
	}
	d.b = d.b[8*words:]
	count := d.uvarint()
	if d.err != nil {
		return k, d.err
	}
	if count > maxKeys {
		return k, errTooLarge
	}
	if uint64(len(d.b)) != 4*count {
		return k, errShort
	}
	k.Keys = make([]uint32, count)
	for i := range k.Keys {
		k.Keys[i] = binary.BigEndian.Uint32(d.b[4*i:])
	}
	return k, nil
}
