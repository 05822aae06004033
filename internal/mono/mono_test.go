package mono

import (
	"testing"
	"time"
)

func TestStampRoundTrip(t *testing.T) {
	c := New()
	for _, d := range []time.Duration{-time.Hour, -1, 1, time.Nanosecond, 90 * time.Minute, 365 * 24 * time.Hour} {
		at := c.Base().Add(d)
		if got := c.Time(c.Stamp(at)); !got.Equal(at) {
			t.Errorf("%v: round trip gave %v", d, got.Sub(c.Base()))
		}
	}
	if s := c.Stamp(time.Time{}); !s.IsZero() || !c.Time(s).IsZero() {
		t.Errorf("the zero time is stamp %d", s)
	}
	if s := c.Stamp(c.Base()); s.IsZero() {
		t.Error("the base reads as none")
	}
	if a, b := c.Now(), c.Now(); b < a {
		t.Errorf("Now went back: %d then %d", a, b)
	}
}
