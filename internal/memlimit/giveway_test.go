package memlimit

import (
	"bytes"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// window is a reading after one window in which the collector used share
// of the CPU, with the heap goal bound (goal below twice live) or not.
type windows struct{ at Pressure }

func (w *windows) next(share float64, binding bool) (prev, cur Pressure) {
	prev = w.at
	w.at.TotalCPU += 20 // 10 s x GOMAXPROCS 2
	w.at.GCCPU += 20 * share
	w.at.Live, w.at.GOGC = 24<<20, 100
	w.at.Goal = 60 << 20
	if binding {
		w.at.Goal = 30 << 20
	}
	return prev, w.at
}

func newTestTuner(t *testing.T) (*Tuner, *bytes.Buffer) {
	t.Helper()
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	var log bytes.Buffer
	tu := NewTuner(Input{Getenv: env(), Cgroup: fakeCgroup(t, "0::/\n", nil)}, slog.New(slog.NewTextHandler(&log, nil)))
	return tu, &log
}

func TestGiveWayRaisesADerivedLimitTheCollectorCannotHold(t *testing.T) {
	tu, log := newTestTuner(t)
	base := tu.Update(0, 10000).Limit
	step := int64(float64(base) * StepFraction)
	var w windows

	// A busy collector while the limit does not bind is GOGC's doing, not
	// the limit's: nothing moves.
	for range 2 * Sustain {
		if tu.Observe(w.next(0.4, false)) {
			t.Fatal("raised the limit while it did not bind")
		}
	}
	// Binding and hot, but not for long enough: a burst at start.
	for range Sustain - 1 {
		if tu.Observe(w.next(0.4, true)) {
			t.Fatal("raised the limit before Sustain windows")
		}
	}
	tu.Observe(w.next(0.05, true)) // one calm window breaks the streak
	for i := range Sustain {
		changed := tu.Observe(w.next(0.45, true))
		if changed != (i == Sustain-1) {
			t.Fatalf("window %d of a sustained hot collector: changed %v", i+1, changed)
		}
	}
	if got := debug.SetMemoryLimit(-1); got != base+step || tu.Current().Limit != got {
		t.Fatalf("after one step: runtime limit %s, Current %s; want %s", FormatSize(got), FormatSize(tu.Current().Limit), FormatSize(base+step))
	}
	if !strings.Contains(log.String(), "memory limit raised") || !strings.Contains(log.String(), "gc_cpu_share=0.45") {
		t.Errorf("no warning that says why: %q", log.String())
	}
	if steps, share := tu.GiveWay(); steps != 1 || share != 0.45 {
		t.Errorf("GiveWay() = %d, %v", steps, share)
	}

	// It keeps giving way, MaxSteps at most: the derived limit x 1.5.
	for range 10 * Sustain * MaxSteps {
		tu.Observe(w.next(0.5, true))
	}
	if got := debug.SetMemoryLimit(-1); got != base+MaxSteps*step {
		t.Fatalf("after a long hot spell: %s, want the cap %s", FormatSize(got), FormatSize(base+MaxSteps*step))
	}

	// A reload with more targets moves the base; the steps stay.
	tu.Update(0, 12000)
	if got, want := debug.SetMemoryLimit(-1), ForTargets(12000)+MaxSteps*int64(float64(ForTargets(12000))*StepFraction); got != want {
		t.Errorf("after a reload: %s, want %s", FormatSize(got), FormatSize(want))
	}
	tu.Update(0, 10000)

	// A quiet collector brings it back down one step per CalmWindows;
	// a window in between that is neither calm nor hot restarts the count.
	for range CalmWindows - 1 {
		if tu.Observe(w.next(0.02, false)) {
			t.Fatal("lowered before CalmWindows")
		}
	}
	tu.Observe(w.next(0.15, false))
	for i := range CalmWindows {
		if changed := tu.Observe(w.next(0.02, false)); changed != (i == CalmWindows-1) {
			t.Fatalf("calm window %d: changed %v", i+1, changed)
		}
	}
	if got := debug.SetMemoryLimit(-1); got != base+(MaxSteps-1)*step {
		t.Errorf("after calm: %s, want %s", FormatSize(got), FormatSize(base+(MaxSteps-1)*step))
	}
	if !strings.Contains(log.String(), "memory limit lowered") {
		t.Errorf("no line for the lowering: %q", log.String())
	}
}

func TestGiveWayNeverMovesAChosenLimit(t *testing.T) {
	tu, _ := newTestTuner(t)
	var w windows
	tu.Update(0, 10000)
	for range Sustain { // one step on the derived limit...
		tu.Observe(w.next(0.5, true))
	}
	tu.Update(64<<20, 10000) // ...then the operator sets memory_limit
	if got := debug.SetMemoryLimit(-1); got != 64<<20 {
		t.Fatalf("memory_limit = 64MiB applied as %s", FormatSize(got))
	}
	for range 3 * Sustain {
		if tu.Observe(w.next(0.5, true)) {
			t.Fatal("moved a configured limit")
		}
	}
	if got := debug.SetMemoryLimit(-1); got != 64<<20 {
		t.Errorf("configured limit moved to %s", FormatSize(got))
	}
	// Back to the derived limit: the steps were forgotten with it.
	if got := tu.Update(0, 10000).Limit; got != ForTargets(10000) {
		t.Errorf("derived limit after the configured one: %s, want %s", FormatSize(got), FormatSize(ForTargets(10000)))
	}
}

// The names the valve reads exist in this runtime and mean what it
// assumes: CPU seconds that grow, a live heap and a goal above it.
func TestReadPressure(t *testing.T) {
	keep := make([][]byte, 0, 64)
	for range 64 {
		keep = append(keep, make([]byte, 64<<10))
	}
	runtime.GC()
	p := ReadPressure()
	runtime.KeepAlive(keep)
	if p.TotalCPU <= 0 || p.GCCPU <= 0 || p.GCCPU > p.TotalCPU {
		t.Errorf("CPU: gc %v of total %v", p.GCCPU, p.TotalCPU)
	}
	if p.GOGC != GCPercent() {
		t.Errorf("GOGC %d, runtime's %d", p.GOGC, GCPercent())
	}
	if p.Live < 4<<20 || p.Goal <= p.Live {
		t.Errorf("heap: live %d, goal %d (4 MiB held)", p.Live, p.Goal)
	}
}
