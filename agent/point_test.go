package agent

import (
	"math"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/vantage-probe/vantage/probe"
)

func TestHistoryPointCompact(t *testing.T) {
	// Memory per target (issue 3): 60 of these per target.
	if n := unsafe.Sizeof(point{}); n != 8 {
		t.Errorf("point is %d bytes, want 8", n)
	}
	typ := reflect.TypeFor[point]()
	for i := range typ.NumField() {
		switch typ.Field(i).Type.Kind() {
		case reflect.Uint32:
		default:
			t.Errorf("point.%s is a %s: the history must hold no pointers", typ.Field(i).Name, typ.Field(i).Type)
		}
	}
}

func TestHistoryPointRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 29, 9, 30, 1, 123456789, time.UTC)
	for _, c := range []struct {
		in, want time.Duration
		ok       bool
	}{
		{1234567 * time.Nanosecond, 1234 * time.Microsecond, true},
		{0, 0, false},
		{-time.Second, 0, false},
		{100 * time.Hour, time.Duration(math.MaxInt32) * time.Microsecond, true}, // saturates
		{100 * time.Hour, time.Duration(math.MaxInt32) * time.Microsecond, false},
	} {
		p := newPoint(&probe.Result{At: at, Duration: c.in, OK: c.ok}).export()
		if !p.At.Equal(at.Truncate(time.Second)) || p.Latency != c.want || p.OK != c.ok {
			t.Errorf("duration %v ok %v: got at %v latency %v ok %v; want %v %v %v", c.in, c.ok, p.At, p.Latency, p.OK, at, c.want, c.ok)
		}
	}
}
