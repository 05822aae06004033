package agent

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/internal/testenv"
)

func TestNextAtIsOnTheGrid(t *testing.T) {
	iv, off := 10*time.Second, 3*time.Second
	base := time.Unix(1_700_000_000, 0) // a multiple of 10s
	for _, tc := range []struct{ after, want time.Time }{
		{base, base.Add(3 * time.Second)},
		{base.Add(3 * time.Second), base.Add(3 * time.Second)},
		{base.Add(3*time.Second + 1), base.Add(13 * time.Second)},
		{base.Add(-time.Second), base.Add(3 * time.Second)},
	} {
		if got := time.Unix(0, nextAt(tc.after, iv, off)); !got.Equal(tc.want) {
			t.Errorf("nextAt(%v) = %v, want %v", tc.after.Sub(base), got.Sub(base), tc.want.Sub(base))
		}
	}
}

func TestPhaseOffsetSpreadsAndStaggersRegions(t *testing.T) {
	iv := 30 * time.Second
	// 3,000 targets over a 30s interval: ten 3s buckets of ~300 each.
	buckets := make([]int, 10)
	for i := 0; i < 3000; i++ {
		off := PhaseOffset(fmt.Sprintf("target-%d", i), iv, 0, 1)
		if off < 0 || off >= iv {
			t.Fatalf("offset %v outside [0, %v)", off, iv)
		}
		buckets[off/(3*time.Second)]++
	}
	for i, n := range buckets {
		if n < 200 || n > 400 {
			t.Errorf("bucket %d has %d targets, want ~300 (spread: %v)", i, n, buckets)
		}
	}
	// Three regions probe one target a third of the interval apart.
	a := PhaseOffset("checkout", iv, 0, 3)
	b := PhaseOffset("checkout", iv, 1, 3)
	c := PhaseOffset("checkout", iv, 2, 3)
	for _, d := range []time.Duration{(b - a + iv) % iv, (c - b + iv) % iv} {
		if d != 10*time.Second {
			t.Errorf("regions %v apart, want 10s (a=%v b=%v c=%v)", d, a, b, c)
		}
	}
}

// TestSchedulerRunsEachJobOnItsInterval runs 200 jobs at 100ms for ~1.5s and
// checks counts with a tolerance that noise cannot break: the grid makes
// each job run once per interval, so 15 +/- a few.
func TestSchedulerRunsEachJobOnItsInterval(t *testing.T) {
	var mu sync.Mutex
	runs := map[string]int{}
	var overlap atomic.Int32
	inflight := map[string]bool{}
	s := NewScheduler(func(ctx context.Context, name string, late time.Duration, _ bool) {
		mu.Lock()
		if inflight[name] {
			overlap.Add(1)
		}
		inflight[name] = true
		runs[name]++
		mu.Unlock()
		time.Sleep(time.Millisecond)
		mu.Lock()
		inflight[name] = false
		mu.Unlock()
	}, 1000, nil)
	var jobs []Job
	for i := 0; i < 200; i++ {
		name := fmt.Sprintf("j%d", i)
		jobs = append(jobs, Job{Name: name, Interval: 100 * time.Millisecond, Offset: PhaseOffset(name, 100*time.Millisecond, 0, 1)})
	}
	s.Update(jobs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	start := time.Now()
	go func() { s.Run(ctx, context.Background()); close(done) }()
	time.Sleep(1500 * time.Millisecond)
	cancel()
	<-done
	elapsed := time.Since(start)
	want := int(elapsed / (100 * time.Millisecond))
	mu.Lock()
	defer mu.Unlock()
	for _, j := range jobs {
		if n := runs[j.Name]; n < want-3 || n > want+1 {
			t.Errorf("%s ran %d times in %v, want about %d", j.Name, n, elapsed, want)
		}
	}
	if overlap.Load() != 0 {
		t.Errorf("%d overlapping runs of the same job", overlap.Load())
	}
}

func TestSchedulerUpdateKeepsUnchangedAndDropsRemoved(t *testing.T) {
	s := NewScheduler(func(context.Context, string, time.Duration, bool) {}, 10, nil)
	s.Update([]Job{{Name: "a", Interval: time.Minute, Key: 1}, {Name: "b", Interval: time.Minute, Key: 1}})
	nextA := s.findLocked("a").next
	s.now = func() time.Time { return time.Now().Add(time.Hour) } // a later Update must not move "a"
	s.Update([]Job{{Name: "a", Interval: time.Minute, Key: 1}, {Name: "c", Interval: time.Minute, Key: 1}})
	if s.findLocked("a").next != nextA {
		t.Errorf("unchanged job rescheduled: %v -> %v", nextA, s.findLocked("a").next)
	}
	if s.Has("b") || !s.Has("c") || s.Len() != 2 {
		t.Errorf("after update: b=%v c=%v len=%d", s.Has("b"), s.Has("c"), s.Len())
	}
	s.Update([]Job{{Name: "a", Interval: time.Minute, Key: 2}})
	if s.findLocked("a").next == nextA {
		t.Error("changed job kept its old schedule")
	}
}

func TestSchedulerSkipsAtMaxInFlight(t *testing.T) {
	release := make(chan struct{})
	var skipped atomic.Int32
	s := NewScheduler(func(ctx context.Context, name string, late time.Duration, _ bool) { <-release }, 2,
		func(name, why string) {
			if why == "max_in_flight" {
				skipped.Add(1)
			}
		})
	var jobs []Job
	for i := 0; i < 5; i++ {
		jobs = append(jobs, Job{Name: fmt.Sprint(i), Interval: 50 * time.Millisecond})
	}
	s.Update(jobs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx, context.Background()); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for skipped.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	cancel()
	<-done
	if skipped.Load() < 3 {
		t.Fatalf("skipped %d runs at the in-flight cap of 2 with 5 jobs, want >= 3", skipped.Load())
	}
}

func TestRunNowRefusesOverlap(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 4)
	s := NewScheduler(func(context.Context, string, time.Duration, bool) { started <- struct{}{}; <-release }, 10, nil)
	s.Update([]Job{{Name: "x", Interval: time.Hour}})
	if !s.RunNow(context.Background(), "x") {
		t.Fatal("RunNow refused an idle job")
	}
	<-started
	if s.RunNow(context.Background(), "x") {
		t.Fatal("RunNow started a second run while one was in flight")
	}
	if s.RunNow(context.Background(), "unknown") {
		t.Fatal("RunNow ran an unscheduled job")
	}
	close(release)
}

// An interval whose next run overflows int64 nanoseconds (100000d) used to
// wrap negative: the dispatch loop spun forever holding its lock, and
// nothing (SIGTERM included) got through. It saturates now: the job is
// dispatched at most once, the loop keeps ticking and stops when asked.
func TestNextAtSaturatesInsteadOfOverflowing(t *testing.T) {
	huge := 100000 * 24 * time.Hour
	now := time.Now()
	if got := nextAt(now, huge, huge-1); got < now.UnixNano() {
		t.Fatalf("nextAt with a %v interval = %d, before now (%d): overflowed", huge, got, now.UnixNano())
	}
	var skips, runs atomic.Int64
	s := NewScheduler(func(context.Context, string, time.Duration, bool) { runs.Add(1) }, 10,
		func(string, string) { skips.Add(1) })
	s.Update([]Job{{Name: "x", Interval: huge, Offset: PhaseOffset("x", huge, 0, 1)}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx, context.Background()); close(done) }()
	testenv.Poll(t, 5*time.Second, "the dispatch loop to tick", func() bool { return !s.LastTick().IsZero() })
	first := s.LastTick()
	testenv.Poll(t, 5*time.Second, "a second tick (the loop is not stuck)", func() bool { return s.LastTick().After(first) })
	if s.Has("x") != true || skips.Load() > 1 || runs.Load() > 1 {
		t.Fatalf("runs %d, skips %d: the loop is spinning on the job", runs.Load(), skips.Load())
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// Close is a crash: Run returns, and neither RunNow nor a late Update
// starts anything afterwards (Agent.Kill used to leave the scheduler
// probing).
func TestSchedulerClosedStartsNothing(t *testing.T) {
	var runs atomic.Int64
	s := NewScheduler(func(context.Context, string, time.Duration, bool) { runs.Add(1) }, 10, nil)
	s.Update([]Job{{Name: "x", Interval: time.Hour}})
	done := make(chan struct{})
	go func() { s.Run(context.Background(), context.Background()); close(done) }()
	s.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	if s.RunNow(context.Background(), "x") {
		t.Fatal("RunNow started a probe after Close")
	}
	s.Update([]Job{{Name: "y", Interval: time.Millisecond}})
	if s.Has("y") {
		t.Fatal("Update scheduled a job after Close")
	}

	// Run returning on its own (context done) closes it the same way.
	s2 := NewScheduler(func(context.Context, string, time.Duration, bool) { runs.Add(1) }, 10, nil)
	s2.Update([]Job{{Name: "x", Interval: time.Hour}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s2.Run(ctx, context.Background())
	if s2.RunNow(context.Background(), "x") {
		t.Fatal("RunNow started a probe after Run returned")
	}
	if n := runs.Load(); n != 0 {
		t.Fatalf("%d runs after close", n)
	}
}
