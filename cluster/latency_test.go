package cluster

import (
	"encoding/binary"
	"testing"
	"time"
)

// encodeLatencies is the latency section encodeState appends last for the
// one observation o: its count, then o's latency and its age.
func encodeLatencies(o *Observation, now time.Time) []byte {
	e := encoder{}
	e.uvarint(1)
	e.uvarint(micros(o.Latency))
	at := o.Measured()
	if o.measured.IsZero() {
		at = o.Received()
	}
	e.dur(now.Sub(at))
	return e.b
}

// A result carries its latency to the microsecond: a loopback connect of
// 0.3 ms arrived as 0 in whole milliseconds. One from an agent that
// predates the field keeps the milliseconds.
func TestResultCarriesLatencyInMicroseconds(t *testing.T) {
	o := Observation{Target: "db", AgentID: "eu-1", Region: "eu", Boot: 1, Seq: 2, OK: true, Latency: 312 * time.Microsecond}
	got, err := decodeResult(encodeResult(&o))
	if err != nil || got.Latency != 312*time.Microsecond {
		t.Fatalf("round trip: latency %v, %v; want 312µs", got.Latency, err)
	}
	o.Latency = 2500 * time.Microsecond
	b := encodeResult(&o)
	if got, err := decodeResult(b[:len(b)-len(binary.AppendUvarint(nil, 2500))]); err != nil || got.Latency != 2*time.Millisecond {
		t.Fatalf("without the trailing field: latency %v, %v; want the 2ms of the fixed layout", got.Latency, err)
	}
}

// Push/pull carries each observation's latency in microseconds and its
// age as of the push; a state from an agent that predates them keeps the
// milliseconds and no measurement time.
func TestStateCarriesLatencyAndItsAge(t *testing.T) {
	now := time.Now()
	o := &Observation{Target: "db", AgentID: "eu-1", Region: "eu", Boot: 1, Seq: 3, OK: true,
		Latency: 1700 * time.Microsecond, received: localClock.Stamp(now.Add(-time.Second)), measured: localClock.Stamp(now.Add(-3 * time.Second))}
	b := encodeState([]*Observation{o}, nil, nil, now)
	obs, _, _, err := decodeState(b, now)
	if err != nil || len(obs) != 1 {
		t.Fatalf("decode: %v, %d observations", err, len(obs))
	}
	if got := obs[0]; got.Latency != 1700*time.Microsecond || !got.Measured().Equal(now.Add(-3*time.Second)) {
		t.Errorf("latency %v measured %v ago; want 1.7ms, 3s ago", got.Latency, now.Sub(got.Measured()))
	}
	old := b[:len(b)-len(encodeLatencies(o, now))]
	obs, _, _, err = decodeState(old, now)
	if err != nil || len(obs) != 1 || obs[0].Latency != time.Millisecond || !obs[0].measured.IsZero() {
		t.Fatalf("an older agent's state: %+v, %v", obs, err)
	}
}

// A copy of an unchanged result (same boot and sequence: push/pull)
// brings its prober's later latency, and only a later one: a third
// agent's older copy, one that does not date its latency, or a relayed
// copy of the same measurement (dated a few milliseconds later) leaves it.
// Each later latency reaches OnRemoteResult, for the history.
func TestUnchangedResultTakesItsLaterLatency(t *testing.T) {
	now := time.Now()
	var heard []time.Duration
	c := &Cluster{
		now: func() time.Time { return now },
		cfg: Config{AgentID: "eu-2", OnRemoteResult: func(o Observation) { heard = append(heard, o.Latency) }},
		targets: map[string]*targetRec{"db": {spec: TargetSpec{Name: "db"}, obs: observations{
			{Target: "db", AgentID: "eu-1", Region: "eu", Boot: 1, Seq: 4, OK: true, Latency: 900 * time.Microsecond,
				Interval: 2 * time.Second, received: localClock.Stamp(now.Add(-10 * time.Second)), measured: localClock.Stamp(now.Add(-10 * time.Second))},
		}}},
	}
	copyOf := func(lat time.Duration, measured time.Time) *Observation {
		return &Observation{Target: "db", AgentID: "eu-1", Region: "eu", Boot: 1, Seq: 4, OK: true, Latency: lat, measured: localClock.Stamp(measured)}
	}
	latency := func() time.Duration { return c.obsLocked("db").get("eu-1").Latency }

	c.receive(copyOf(300*time.Microsecond, now.Add(-2*time.Second)))
	if latency() != 300*time.Microsecond || len(heard) != 1 || heard[0] != 300*time.Microsecond {
		t.Fatalf("a later measurement: latency %v, heard %v; want 300µs, once", latency(), heard)
	}
	c.receive(copyOf(5*time.Millisecond, now.Add(-5*time.Second)))
	c.receive(copyOf(7*time.Millisecond, time.Time{}))
	c.receive(copyOf(300*time.Microsecond, now.Add(-2*time.Second+3*time.Millisecond)))
	if latency() != 300*time.Microsecond || len(heard) != 1 {
		t.Fatalf("an older, undated or relayed copy: latency %v, heard %v; want 300µs kept, nothing more heard", latency(), heard)
	}
}
