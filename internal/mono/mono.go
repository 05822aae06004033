// Package mono keeps an instant in 8 bytes: an offset from a base time on
// the monotonic clock. The agent and the cluster hold several instants per
// target (a failure streak's start, a verdict's change, a resolve hold); a
// time.Time is 24 bytes and a pointer the collector scans, 10,000 targets
// over.
package mono

import "time"

// Clock converts between instants and Stamps. Its zero value is not
// usable: make one with New.
type Clock struct{ base time.Time }

// New returns a Clock whose base is now.
func New() Clock { return Clock{base: time.Now()} }

// Base is the clock's base instant.
func (c Clock) Base() time.Time { return c.base }

// Stamp is an instant as nanoseconds since its Clock's base, negative
// before it; 0 means none.
type Stamp int64

// IsZero reports whether s is none.
func (s Stamp) IsZero() bool { return s == 0 }

// Stamp returns t's Stamp: 0 for the zero time; the base itself is 1, so
// that no instant reads as none.
func (c Clock) Stamp(t time.Time) Stamp {
	if t.IsZero() {
		return 0
	}
	if d := t.Sub(c.base); d != 0 {
		return Stamp(d)
	}
	return 1
}

// Time returns the instant of s; the zero time for none.
func (c Clock) Time(s Stamp) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return c.base.Add(time.Duration(s))
}

// Now is the Stamp of the current instant.
func (c Clock) Now() Stamp { return c.Stamp(time.Now()) }
