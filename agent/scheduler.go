package agent

import (
	"container/heap"
	"context"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Job is one scheduled target as the scheduler sees it.
type Job struct {
	Name     string
	Interval time.Duration
	// Offset is the job's phase within its interval, anchored at the Unix
	// epoch: the job runs at every t with t mod Interval == Offset. Anchoring
	// on wall time (not on start time) means agents in different regions,
	// with NTP-synced clocks, keep their agreed stagger, and a restart resumes
	// the same phase instead of stampeding.
	Offset time.Duration
	// Key identifies the job's definition; a changed Key on Update
	// reschedules it, an unchanged one keeps its phase and in-flight state.
	Key uint64
}

// PhaseOffset spreads targets across their interval by a hash of the name,
// then shifts by slot/slots of the interval so that the regions probing one
// target look at it one after another (slot = this region's rank among the
// target's regions). It is deterministic: every agent computes the same.
func PhaseOffset(name string, interval time.Duration, slot, slots int) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(name))
	base := time.Duration(h.Sum64() % uint64(interval))
	if slots > 1 {
		base += time.Duration(int64(interval) / int64(slots) * int64(slot))
	}
	return base % interval
}

// RunFunc probes one target. The scheduler calls it in its own goroutine,
// with a context that is cancelled on shutdown; it must honour the target's
// timeout itself. late is how far behind schedule the run started;
// onDemand marks a run started by RunNow, outside the schedule.
type RunFunc func(ctx context.Context, name string, late time.Duration, onDemand bool)

// Scheduler runs each job on its own interval from one goroutine and a heap
// (not a goroutine and timer per target: at 10k targets that would cost
// tens of MB of stacks), with at most MaxInFlight probes running at once.
// A job whose previous run is still going is skipped, never overlapped.
type Scheduler struct {
	run         RunFunc
	maxInFlight int
	now         func() time.Time
	onSkip      func(name string, why string)

	mu sync.Mutex
	// byName is every job's entry, sorted by name: a slice, 8 bytes a
	// job, where a map by name cost ~43 (a lookup is a binary search, and
	// lookups are rare: RunNow and Has); Update merges the new jobs into it.
	byName []*entry
	queue  entryHeap
	wake   chan struct{}
	sem    chan struct{}
	wg     sync.WaitGroup
	closed bool          // Run returned or Close was called: nothing starts any more
	done   chan struct{} // closed by Close

	// tick is the Unix nanoseconds of the dispatch loop's last pass, read
	// by the liveness check without the lock: a loop that stops passing
	// (wedged, or spinning inside one pass) is seen from outside.
	tick      atomic.Int64
	n         atomic.Int64 // len(jobs), for /metrics without the lock
	closeOnce sync.Once
}

// tickEvery bounds the dispatch loop's sleep, so its tick shows it alive
// even when no job is due for an hour.
const tickEvery = time.Second

type entry struct {
	job Job
	// next is the next run in Unix nanoseconds (the grid is wall time;
	// 8 bytes where a time.Time is 24, one entry per target).
	next     int64
	index    int // in the heap; -1 when removed
	inFlight bool
}

// NewScheduler returns a scheduler calling run. maxInFlight bounds probes in
// flight; runs due while the bound is reached are skipped and reported to
// onSkip (which may be nil).
func NewScheduler(run RunFunc, maxInFlight int, onSkip func(name, why string)) *Scheduler {
	if maxInFlight <= 0 {
		maxInFlight = 1000
	}
	if onSkip == nil {
		onSkip = func(string, string) {}
	}
	return &Scheduler{
		run:         run,
		maxInFlight: maxInFlight,
		now:         time.Now,
		onSkip:      onSkip,
		wake:        make(chan struct{}, 1),
		sem:         make(chan struct{}, maxInFlight),
		done:        make(chan struct{}),
	}
}

// LastTick returns when the dispatch loop last passed (zero before Run).
func (s *Scheduler) LastTick() time.Time {
	if ns := s.tick.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// Close stops the scheduler as a crash would: Run returns without waiting
// for runs in flight, and nothing starts any more (RunNow is refused).
func (s *Scheduler) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.done)
	})
}

// nextAt returns the first time >= after (in Unix nanoseconds) at which
// t mod interval == offset. It saturates instead of overflowing: an
// interval so long that the next run is past year 2262 runs never, not
// (wrapped negative) always. Config refuses such intervals; the scheduler
// must not spin on one regardless.
func nextAt(after time.Time, interval, offset time.Duration) int64 {
	ns := after.UnixNano()
	iv := int64(max(interval, 1))
	base := ns - mod(ns, iv)
	if int64(offset) > math.MaxInt64-base {
		return math.MaxInt64
	}
	base += int64(offset)
	if base < ns {
		if iv > math.MaxInt64-base {
			return math.MaxInt64
		}
		base += iv
	}
	return base
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// Update makes the scheduled set equal to jobs: removed jobs stop (a run in
// flight finishes), new ones start at their phase, changed ones are
// rescheduled, unchanged ones keep their next run. It sorts jobs by name.
func (s *Scheduler) Update(jobs []Job) {
	// In byName's order, so that one walk through both finds the new, the
	// changed and the removed jobs (sorted before taking the lock, which
	// dispatching waits for). Stable: of two jobs of one name, the second
	// is as if it came in a later Update.
	slices.SortStableFunc(jobs, func(a, b Job) int { return strings.Compare(a.Name, b.Name) })
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	now := s.now()
	old := s.byName
	byName := make([]*entry, 0, len(jobs))
	i := 0
	for _, j := range jobs {
		for ; i < len(old) && old[i].job.Name < j.Name; i++ {
			s.removeLocked(old[i])
		}
		var e *entry
		switch {
		case len(byName) > 0 && byName[len(byName)-1].job.Name == j.Name:
			e = byName[len(byName)-1]
		case i < len(old) && old[i].job.Name == j.Name:
			e = old[i]
			i++
			byName = append(byName, e)
		default:
			e = &entry{job: j, next: nextAt(now, j.Interval, j.Offset)}
			heap.Push(&s.queue, e)
			byName = append(byName, e)
			continue
		}
		if e.job.Key == j.Key && e.job.Interval == j.Interval && e.job.Offset == j.Offset {
			continue
		}
		e.job = j
		e.next = nextAt(now, j.Interval, j.Offset)
		heap.Fix(&s.queue, e.index)
	}
	for ; i < len(old); i++ {
		s.removeLocked(old[i])
	}
	s.byName = byName
	s.n.Store(int64(len(byName)))
	s.poke()
}

func (s *Scheduler) removeLocked(e *entry) {
	heap.Remove(&s.queue, e.index)
	e.index = -1
}

// findLocked returns name's entry, nil when it is not scheduled.
func (s *Scheduler) findLocked(name string) *entry {
	i, ok := slices.BinarySearchFunc(s.byName, name, func(e *entry, name string) int { return strings.Compare(e.job.Name, name) })
	if !ok {
		return nil
	}
	return s.byName[i]
}

// Len returns the number of scheduled jobs. It takes no lock: /metrics
// and the API read it, and must answer while the scheduler is stuck.
func (s *Scheduler) Len() int { return int(s.n.Load()) }

// Has reports whether name is scheduled.
func (s *Scheduler) Has(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.findLocked(name) != nil
}

func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run dispatches jobs until ctx is done, then waits for runs in flight
// (which see the cancelled context only through their own timeouts: a probe
// in flight at shutdown is allowed to finish). Close makes it return at
// once, as a crash would.
func (s *Scheduler) Run(ctx context.Context, probeCtx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	defer func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
	}()
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		wait := tickEvery
		now := s.now()
		s.tick.Store(now.UnixNano())
		for len(s.queue) > 0 {
			e := s.queue[0]
			if ns := now.UnixNano(); e.next > ns {
				wait = min(wait, time.Duration(e.next-ns))
				break
			}
			s.dispatchLocked(probeCtx, e, now)
			// Next run on the grid, never "now + interval": no drift, and a
			// stall longer than an interval skips the missed runs.
			e.next = nextAt(now.Add(time.Nanosecond), e.job.Interval, e.job.Offset)
			heap.Fix(&s.queue, e.index)
		}
		s.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			s.wg.Wait()
			return
		case <-s.done:
			return
		case <-s.wake:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		case <-timer.C:
		}
	}
}

func (s *Scheduler) dispatchLocked(ctx context.Context, e *entry, now time.Time) {
	if e.inFlight {
		s.onSkip(e.job.Name, "overlap")
		return
	}
	select {
	case s.sem <- struct{}{}:
	default:
		s.onSkip(e.job.Name, "max_in_flight")
		return
	}
	s.startLocked(ctx, e, time.Duration(now.UnixNano()-e.next), false)
}

// startLocked runs e in a goroutine; the caller holds s.mu and a slot of sem.
func (s *Scheduler) startLocked(ctx context.Context, e *entry, late time.Duration, onDemand bool) {
	e.inFlight = true
	name := e.job.Name
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.run(ctx, name, late, onDemand)
		<-s.sem
		s.mu.Lock()
		e.inFlight = false
		s.mu.Unlock()
	}()
}

// RunNow probes name at once, outside its schedule, unless a run is in
// flight. It reports whether a run was started. The cluster uses it for
// confirmation re-probes.
func (s *Scheduler) RunNow(ctx context.Context, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.findLocked(name)
	if e == nil || e.inFlight || s.closed {
		return false
	}
	select {
	case s.sem <- struct{}{}:
	default:
		return false
	}
	s.startLocked(ctx, e, 0, true)
	return true
}

type entryHeap []*entry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].next < h[j].next }
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *entryHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	e.index = -1
	return e
}
