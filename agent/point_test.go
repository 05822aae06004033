package agent

import (
	"math"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/vantage-probe/vantage/probe"
)

func TestHistoryCompact(t *testing.T) {
	// Memory per target (issue 3): 60 of these per target.
	if n := unsafe.Sizeof(point{}); n != 4 {
		t.Errorf("point is %d bytes, want 4", n)
	}
	if n := unsafe.Sizeof(history{}); n > 4*historyLen+8 {
		t.Errorf("history is %d bytes, want at most %d", n, 4*historyLen+8)
	}
	typ := reflect.TypeFor[history]()
	for i := range typ.NumField() {
		switch typ.Field(i).Type.Kind() {
		case reflect.Uint8, reflect.Uint32, reflect.Array:
		default:
			t.Errorf("history.%s is a %s: the history must hold no pointers", typ.Field(i).Name, typ.Field(i).Type)
		}
	}
}

func TestHistoryRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 29, 9, 30, 1, 123456789, time.UTC)
	for _, c := range []struct {
		in, want time.Duration
		ok       bool
	}{
		{1023 * time.Microsecond, 1023 * time.Microsecond, true}, // exact below 1,024 µs
		{1234567 * time.Nanosecond, 1234 * time.Microsecond, true},
		{0, 0, false},
		{-time.Second, 0, false},
		{100 * time.Hour, time.Duration(math.MaxInt32) * time.Microsecond, true}, // saturates
		{100 * time.Hour, time.Duration(math.MaxInt32) * time.Microsecond, false},
		{3*time.Second + 7*time.Millisecond, 3007 * time.Millisecond, true},
	} {
		var h history
		h.add(&probe.Result{At: at, Duration: c.in, OK: c.ok})
		p := h.points()[0]
		// 0.2% is what a 10-bit mantissa promises.
		if !p.At.Equal(at.Truncate(time.Second)) || math.Abs(float64(p.Latency-c.want)) > 0.002*float64(c.want) || p.OK != c.ok {
			t.Errorf("duration %v ok %v: got at %v latency %v ok %v; want %v %v %v", c.in, c.ok, p.At, p.Latency, p.OK, at, c.want, c.ok)
		}
	}
}

// The ring keeps the last historyLen results in order with their times,
// across wrap-around, irregular spacing (confirmations between scheduled
// probes) and gaps longer than the 18 h a point's delta can say.
func TestHistoryOrderAndTimes(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	var h history
	var want []time.Time
	at := t0
	for i := range 150 {
		step := time.Duration(1+i%7) * time.Second
		if i == 149 {
			step = 30 * time.Hour // saturates: the newest keeps its own time, the older read later
		}
		at = at.Add(step)
		h.add(&probe.Result{At: at, Duration: time.Duration(i) * time.Microsecond, OK: i%3 == 0})
		want = append(want, at)
	}
	ps := h.points()
	if len(ps) != historyLen {
		t.Fatalf("%d points, want %d", len(ps), historyLen)
	}
	for j, p := range ps {
		i := 150 - historyLen + j
		if i < 149 && !p.At.Equal(want[i].Add(30*time.Hour-time.Duration(math.MaxUint16)*time.Second)) ||
			i == 149 && !p.At.Equal(want[i]) {
			t.Errorf("point %d (result %d): at %v", j, i, p.At)
		}
		if p.OK != (i%3 == 0) || p.Latency != time.Duration(i)*time.Microsecond {
			t.Errorf("point %d (result %d): ok %v latency %v", j, i, p.OK, p.Latency)
		}
	}
}

// A target this agent never probed keeps no history (issue 17: most of a
// large fleet's targets are probed elsewhere); it reads, writes and
// renders as an empty one.
func TestHistoryMadeOnFirstResult(t *testing.T) {
	st := &targetState{}
	if st.hist != nil || st.hist.points() != nil {
		t.Fatal("a new target state holds a history")
	}
	var empty history
	if got, want := st.hist.marshal(), empty.marshal(); string(got) != string(want) {
		t.Errorf("a missing history marshals as %x, an empty one as %x", got, want)
	}
	st.addHistory(&probe.Result{OK: true, At: time.Unix(1_800_000_000, 0), Duration: 3 * time.Millisecond})
	if st.hist == nil {
		t.Fatal("no history after a result")
	}
	if p := st.hist.points(); len(p) != 1 || !p[0].OK || p[0].Latency != 3*time.Millisecond {
		t.Errorf("points after one result: %+v", p)
	}
}
