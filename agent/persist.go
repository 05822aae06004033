package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/vantage-probe/vantage/agent/state"
	"github.com/vantage-probe/vantage/cluster"
	"github.com/vantage-probe/vantage/exporter"
)

// Persisting the agent's state (agent/state): the probe path only marks a
// target dirty (an atomic store, no allocation); a goroutine flushes every
// FlushEvery, and once more on a graceful stop, in one transaction: the
// incidents that changed, each target's first sighting and objective, and,
// every bulkFlushes flushes, each target's SLO accounting since it was last
// written and the histories marked dirty.
// A failed write (a full or read-only disk) is logged at most once a
// minute and counted; what it carried is kept and written by the next
// flush that succeeds, and probing and paging never wait for the disk.

// defaultFlushEvery is how often the state is written.
const defaultFlushEvery = 5 * time.Second

// bulkFlushes is how many flushes apart the per-target records are
// written: the SLO accounting (accrued every flush, as a verdict changes
// every few seconds, into hour-long buckets) and the histories. Each is one
// key per target, so at 10,000 targets they are nearly all of a write's
// cost; incidents, a few keys, still go every flush. A crash loses at most
// this much accounting and history (a graceful stop writes it all): a
// minute at the default flush interval.
const bulkFlushes = 12

// pruneEvery is how often records older than the retention are deleted.
const pruneEvery = time.Hour

// errLogEvery rate-limits the log line of failing writes.
const errLogEvery = time.Minute

type persister struct {
	a     *Agent
	store *state.Store
	every time.Duration

	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	running atomic.Bool // start was called: close waits for the loop
	closed  bool        // under mu: the store is closed

	errors    *metrics.Counter
	lastWrite atomic.Int64 // Unix ns of the last successful write; 0: none yet
	failing   atomic.Bool

	// Owned by the flushing goroutine (or the caller of flush after it
	// stopped). mu also guards the fields of every target's persisted
	// record (targetState.pers): what the store holds of each configured
	// target, and its accounting not yet written, are kept there, one
	// record a target, rather than in maps keyed by its name.
	mu      sync.Mutex
	incGen  uint64
	written map[string]uint64 // incident ID -> hash of what the store holds
	// meta is what the store holds of targets without a record: those
	// the snapshot has but the config no longer does, and those a reload
	// removed. Few, usually none.
	meta map[string]metaRec
	// slo is the accounting not yet written that has no place in a
	// record: of targets without one (in the cluster's view but not, or
	// no longer, in the config), of a record's third bucket (when writes
	// failed for over an hour), of removed targets. nil when empty, and
	// dropped (not cleared, which would keep its size) once written.
	slo         map[sloKey]state.Counts
	accrued     time.Time // SLO accounting is done up to here
	bulkWritten time.Time // the last write that carried the SLO accounting and histories
	dropped     []string
	lastErrLog  time.Time
	lastPrune   time.Time
}

type sloKey struct {
	target string
	bucket int64 // Unix s
}

// persisted is what the persister keeps of one configured target between
// flushes (targetState.pers, guarded by p.mu): what the store holds of its
// meta, so that it is written only when it changes, and its SLO accounting
// accrued and not yet written. 80 bytes; the three maps keyed by the
// target's name it replaces cost ~207 B a target.
type persisted struct {
	metaRec
	// Two buckets: a bulk write every minute sees at most two of the
	// hour-long buckets (the one an hour ended in, and the next); a third,
	// when writes fail for longer, goes to p.slo. A slot whose counts total
	// zero is free (an accrual adds at least a nanosecond).
	bucket [2]int64 // Unix s
	counts [2]state.Counts
}

// metaRec is a target's meta as the store holds it.
type metaRec struct {
	firstSeen int64 // wallNS of the first sighting
	objective float64
}

// noMeta is the meta of a target the store holds nothing of: the zero
// values of the maps this replaces (the zero time, objective 0).
var noMeta = metaRec{firstSeen: wallNS(time.Time{})}

func newPersisted() *persisted { return &persisted{metaRec: noMeta} }

// wallNS is t in 8 bytes for comparing instants as time.Time.Equal does:
// Unix nanoseconds, and the zero time (whose UnixNano is undefined) as
// math.MinInt64.
func wallNS(t time.Time) int64 {
	if t.IsZero() {
		return math.MinInt64
	}
	return t.UnixNano()
}

// orphan is the record of a target a reload removed (Agent.orphans).
type orphan struct {
	name string
	rec  *persisted
}

// openState opens the agent's state directory and reads what it kept; the
// agent restores it before anything runs.
func openState(dir string) (*state.Store, *state.Snapshot, error) {
	st, err := state.Open(dir, 2*time.Second)
	if err != nil {
		if errors.Is(err, state.ErrLocked) {
			return nil, nil, fmt.Errorf("agent.state_dir %q: %w: two agents cannot share a state directory", dir, err)
		}
		return nil, nil, fmt.Errorf("agent.state_dir %q: %w", dir, err)
	}
	snap, err := st.Load()
	if err != nil {
		_ = st.Close()
		return nil, nil, fmt.Errorf("agent.state_dir %q: reading the state: %w", dir, err)
	}
	return st, snap, nil
}

func newPersister(a *Agent, st *state.Store, snap *state.Snapshot, every time.Duration) *persister {
	if every <= 0 {
		every = defaultFlushEvery
	}
	p := &persister{
		a: a, store: st, every: every,
		stop: make(chan struct{}), done: make(chan struct{}),
		written:     map[string]uint64{},
		meta:        map[string]metaRec{},
		accrued:     time.Now(),
		bulkWritten: time.Now(),
		lastPrune:   time.Now(),
	}
	for i := range snap.Incidents {
		p.written[snap.Incidents[i].ID] = hashIncident(&snap.Incidents[i])
	}
	a.mu.Lock()
	states := a.states
	a.mu.Unlock()
	for name, m := range snap.Targets {
		p.setMeta(states, name, metaRec{wallNS(m.FirstSeen), m.Objective})
	}
	s := a.reg.Set()
	p.errors = s.NewCounter("vantage_state_write_errors_total")
	s.NewGauge("vantage_state_last_write_timestamp_seconds", func() float64 {
		return float64(p.lastWrite.Load()) / 1e9
	})
	s.NewGauge("vantage_state_size_bytes", func() float64 { return float64(p.store.Size()) })
	return p
}

// start runs the flushing loop.
func (p *persister) start() {
	p.running.Store(true)
	go p.run()
}

func (p *persister) run() {
	defer close(p.done)
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.flush(time.Now(), false)
		}
	}
}

// close stops the loop; final flushes once more first (a graceful stop),
// a crash (Kill) does not. The store is closed either way.
func (p *persister) close(final bool) {
	p.once.Do(func() {
		close(p.stop)
		if p.running.Load() {
			<-p.done
		}
		if final {
			p.flush(time.Now(), true)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		p.closed = true
		if err := p.store.Close(); err != nil {
			p.a.log.Error("closing the state file", "path", p.store.Path(), "err", err)
		}
	})
}

// flush writes what changed since the last flush that succeeded; the SLO
// accounting and histories every bulkFlushes flushes, or now with all.
func (p *persister) flush(now time.Time, all bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	a := p.a
	cl := a.Cluster()
	cfg := a.cfg.Load()
	b := &state.Batch{}
	// The states as this flush sees them, throughout: the map is never
	// written once published. The records of targets removed since the
	// last flush join the targets without one.
	a.mu.Lock()
	states, orphans := a.states, a.orphans
	a.orphans = nil
	a.mu.Unlock()
	for _, o := range orphans {
		p.adopt(o)
	}

	// SLO accounting: the time since the last flush, by the fleet's
	// verdict now (a verdict changes at most every few seconds; the
	// bucket is an hour).
	if cl != nil && now.After(p.accrued) {
		from := p.accrued
		// A stall (a suspended VM) longer than a few flushes is not
		// accounted: nobody watched.
		if now.Sub(from) > 4*p.every {
			from = now.Add(-p.every)
		}
		for _, br := range cl.Briefs() {
			var rec *persisted
			if st := states[br.Name]; st != nil {
				rec = st.pers
			}
			p.accrue(rec, br.Name, br.Category, from, now)
		}
		p.accrued = now
	}
	bulk := all || now.Sub(p.bulkWritten) >= bulkFlushes*p.every
	if bulk {
		for name, st := range states {
			if r := st.pers; r != nil {
				for i, c := range r.counts {
					if c.Total() != 0 {
						b.SLO = append(b.SLO, state.Sample{Target: name, Bucket: time.Unix(r.bucket[i], 0), Counts: c})
					}
				}
			}
		}
		for k, c := range p.slo {
			b.SLO = append(b.SLO, state.Sample{Target: k.target, Bucket: time.Unix(k.bucket, 0), Counts: c})
		}
	}

	if cl != nil {
		if gen := cl.IncidentGen(); gen != p.incGen {
			for _, in := range cl.Incidents() {
				if h := hashIncident(&in); p.written[in.ID] != h {
					b.Incidents = append(b.Incidents, in)
				}
			}
			p.incGen = gen
		}
		p.dropped = append(p.dropped, cl.TakeDropped()...)
		b.Dropped = p.dropped
		for name, at := range cl.FirstSeen() {
			obj := cfg.SLO.Objective
			if t := cfg.Target(name); t != nil && t.SLOObjective > 0 {
				obj = t.SLOObjective
			}
			if m := p.metaOf(states, name); m.firstSeen != wallNS(at) || m.objective != obj {
				if b.Targets == nil {
					b.Targets = map[string]state.TargetMeta{}
				}
				b.Targets[name] = state.TargetMeta{FirstSeen: at, Objective: obj}
			}
		}
	}

	var dirty []*targetState
	if bulk {
		for name, st := range states {
			if st.dirty.Swap(false) {
				dirty = append(dirty, st)
				if b.History == nil {
					b.History = map[string][]byte{}
				}
				st.mu.Lock()
				b.History[name] = st.hist.marshal()
				st.mu.Unlock()
			}
		}
	}

	if b.Empty() {
		return
	}
	if err := p.store.Write(b); err != nil {
		p.errors.Inc()
		p.failing.Store(true)
		for _, st := range dirty {
			st.dirty.Store(true) // again next time
		}
		p.incGen = 0 // compare every incident again next time
		if now.Sub(p.lastErrLog) >= errLogEvery {
			p.lastErrLog = now
			a.log.Error("writing the state failed; probing and alerting go on, the state is kept in memory and written when the disk accepts it again",
				"path", p.store.Path(), "err", err, "failed_writes", p.errors.Get())
		}
		return
	}
	if p.failing.Swap(false) {
		a.log.Info("writing the state works again", "path", p.store.Path())
	}
	p.lastWrite.Store(now.UnixNano())
	if bulk {
		for _, st := range states {
			if r := st.pers; r != nil {
				r.counts = [2]state.Counts{}
			}
		}
		p.slo = nil
		p.bulkWritten = now
	}
	p.dropped = nil
	for i := range b.Incidents {
		p.written[b.Incidents[i].ID] = hashIncident(&b.Incidents[i])
	}
	for name, m := range b.Targets {
		p.setMeta(states, name, metaRec{wallNS(m.FirstSeen), m.Objective})
	}
	if now.Sub(p.lastPrune) >= pruneEvery {
		p.prune(now)
	}
}

func (p *persister) prune(now time.Time) {
	p.lastPrune = now
	cfg := p.a.cfg.Load()
	n, err := p.store.Prune(now.Add(-cfg.Agent.Retention), func(name string) bool { return cfg.Target(name) != nil })
	if err != nil {
		p.errors.Inc()
		p.a.log.Error("pruning the state failed", "path", p.store.Path(), "err", err)
		return
	}
	if n > 0 {
		p.a.log.Info("pruned the state", "records", n, "retention", cfg.Agent.Retention)
	}
}

// accrue adds [from, to) to target's buckets by category: down, up
// (failing below quorum is up), unknown (no verdict, too few regions,
// maintenance). rec is the target's record, nil when it has none.
func (p *persister) accrue(rec *persisted, target string, cat cluster.Category, from, to time.Time) {
	for from.Before(to) {
		b := state.BucketOf(from)
		end := b.Add(state.BucketWidth)
		if to.Before(end) {
			end = to
		}
		var c state.Counts
		switch d := end.Sub(from); cat {
		case cluster.CatDown:
			c.Down = d
		case cluster.CatUp, cluster.CatFailing:
			c.Up = d
		default:
			c.Unknown = d
		}
		p.add(rec, target, b.Unix(), c)
		from = end
	}
}

// add adds c to target's accounting of bucket not yet written: in its
// record, or in p.slo. Each target's bucket has one place, so that a
// write carries one sample of it (the store adds samples in whole
// milliseconds: two would round differently from their sum): p.slo when
// it has the bucket already, else the record's slot of it, else a free
// slot, else p.slo.
func (p *persister) add(rec *persisted, target string, bucket int64, c state.Counts) {
	k := sloKey{target, bucket}
	if _, ok := p.slo[k]; !ok && rec != nil {
		free := -1
		for i := range rec.counts {
			if rec.counts[i].Total() == 0 {
				if free < 0 {
					free = i
				}
			} else if rec.bucket[i] == bucket {
				rec.counts[i].Add(c)
				return
			}
		}
		if free >= 0 {
			rec.bucket[free], rec.counts[free] = bucket, c
			return
		}
	}
	if p.slo == nil {
		p.slo = map[sloKey]state.Counts{}
	}
	sum := p.slo[k]
	sum.Add(c)
	p.slo[k] = sum
}

// adopt takes the record of a target a reload removed: what it holds
// moves to p.meta and p.slo, to be written as before.
func (p *persister) adopt(o orphan) {
	if o.rec.metaRec != noMeta {
		p.meta[o.name] = o.rec.metaRec
	}
	for i, c := range o.rec.counts {
		if c.Total() != 0 {
			p.add(nil, o.name, o.rec.bucket[i], c)
		}
	}
	*o.rec = persisted{metaRec: noMeta}
}

// metaOf is what the store holds of name's meta (noMeta: nothing).
func (p *persister) metaOf(states map[string]*targetState, name string) metaRec {
	if st := states[name]; st != nil && st.pers != nil && st.pers.metaRec != noMeta {
		return st.pers.metaRec
	}
	if m, ok := p.meta[name]; ok {
		return m
	}
	return noMeta
}

// setMeta notes that the store holds m of name.
func (p *persister) setMeta(states map[string]*targetState, name string, m metaRec) {
	if st := states[name]; st != nil && st.pers != nil {
		st.pers.metaRec = m
		delete(p.meta, name)
		return
	}
	p.meta[name] = m
}

func hashIncident(in *cluster.Incident) uint64 {
	h := fnv.New64a()
	var b [8]byte
	for _, t := range []time.Time{in.StartedAt, in.ConfirmAt, in.QuorumAt, in.DetectedAt, in.ResolvedAt, in.AlertedAt} {
		binary.LittleEndian.PutUint64(b[:], uint64(t.UnixNano()))
		h.Write(b[:])
	}
	for _, s := range append(append([]string{in.Target, in.Leader, in.Reason}, in.Regions...), in.QuorumRegions...) {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	binary.LittleEndian.PutUint64(b[:], uint64(in.Flaps))
	h.Write(b[:])
	for _, f := range in.FirstFailures {
		binary.LittleEndian.PutUint64(b[:], uint64(f.At.UnixNano()))
		h.Write(b[:])
		h.Write([]byte(f.Region + "\x00" + f.Reason + "\x00"))
	}
	for _, l := range in.LeaderChanges {
		binary.LittleEndian.PutUint64(b[:], uint64(l.At.UnixNano()))
		h.Write(b[:])
		h.Write([]byte(l.Agent + "\x00"))
	}
	return h.Sum64()
}

// StateView is the state's health for the API.
func (p *persister) view() *exporter.StateView {
	v := &exporter.StateView{Path: p.store.Path(), OK: !p.failing.Load(), WriteErrors: p.errors.Get()}
	if ns := p.lastWrite.Load(); ns != 0 {
		v.LastWrite = time.Unix(0, ns)
	}
	return v
}

// Incident returns one incident by ID, from memory or the state file
// (exporter.History).
func (a *Agent) Incident(id string) (cluster.Incident, bool, error) {
	for _, in := range a.Incidents() {
		if in.ID == id {
			return in, true, nil
		}
	}
	if a.persist == nil {
		return cluster.Incident{}, false, nil
	}
	return a.persist.store.Incident(id)
}

// Report is the SLO report of [from, to) (exporter.History): from the
// state file, or without one from what the agent holds in memory (the
// last 1,000 incidents, no accounting buckets).
func (a *Agent) Report(from, to time.Time, glob string) (any, error) {
	q := state.ReportQuery{From: from, To: to, Target: glob}
	now := time.Now()
	if a.persist != nil {
		a.persist.flush(now, true) // the report includes the last seconds
		r, err := a.persist.store.Report(q, now)
		if err != nil {
			return nil, err
		}
		r.Source = "agent " + a.cfg.Load().Agent.Node + " (" + r.Source + ")"
		return r, nil
	}
	cfg := a.cfg.Load()
	in := state.ReportInput{Source: "agent " + cfg.Agent.Node + " (memory; no state_dir)", Now: now,
		Incidents: a.Incidents(), Targets: map[string]state.TargetMeta{}}
	if cl := a.Cluster(); cl != nil {
		for name, at := range cl.FirstSeen() {
			obj := cfg.SLO.Objective
			if t := cfg.Target(name); t != nil && t.SLOObjective > 0 {
				obj = t.SLOObjective
			}
			in.Targets[name] = state.TargetMeta{FirstSeen: at, Objective: obj}
		}
	}
	return state.BuildReport(in, q), nil
}
