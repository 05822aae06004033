package cluster

import (
	"slices"
	"testing"
	"time"
)

// A result carries the certificate's expiry to every agent; one from an
// agent that predates the field (no trailing bytes) still decodes.
func TestResultCarriesCertExpiry(t *testing.T) {
	exp := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	o := Observation{Target: "web", AgentID: "eu-1", Region: "eu", Boot: 1, Seq: 2, OK: true,
		ConfirmedFor: time.Second, CertExpiry: exp}
	got, err := decodeResult(encodeResult(&o))
	if err != nil || !got.CertExpiry.Equal(exp) || got.ConfirmedFor != time.Second {
		t.Fatalf("round trip: %+v, %v; want cert expiry %v", got, err, exp)
	}
	o.CertExpiry = time.Time{}
	b := encodeResult(&o)
	if got, err := decodeResult(b[:len(b)-1]); err != nil || !got.CertExpiry.IsZero() || got.ConfirmedFor != time.Second {
		t.Fatalf("without the trailing field: %+v, %v", got, err)
	}
}

// Push/pull carries each observation's streak and confirmation ages as of
// the push (they were as of receipt) and its certificate expiry, after the
// sections older agents read; a state from such an agent still decodes.
func TestStateCarriesAgesAsOfThePush(t *testing.T) {
	now := time.Now()
	exp := time.Unix(1_900_000_000, 0)
	o := &Observation{Target: "web", AgentID: "eu-1", Region: "eu", Boot: 1, Seq: 3, Failing: true,
		FailingFor: 4 * time.Second, ConfirmedFor: 3 * time.Second, CertExpiry: exp, received: localClock.Stamp(now.Add(-2 * time.Second))}
	b := encodeState([]*Observation{o}, nil, nil, now)
	obs, _, _, err := decodeState(b, now)
	if err != nil || len(obs) != 1 {
		t.Fatalf("decode: %v, %d observations", err, len(obs))
	}
	if got := obs[0]; got.FailingFor != 6*time.Second || got.ConfirmedFor != 5*time.Second || !got.CertExpiry.Equal(exp) {
		t.Errorf("failing for %v, confirmed for %v, cert %v; want 6s, 5s (2s older at the push), %v", got.FailingFor, got.ConfirmedFor, got.CertExpiry, exp)
	}
	// Without the later fields (an older agent's state): the base fields.
	old := encodeState([]*Observation{o}, nil, nil, now)
	old = old[:len(old)-len(encodeLatencies(o, now))-len(encodeLater(o, now))]
	obs, _, _, err = decodeState(old, now)
	if err != nil || len(obs) != 1 || obs[0].FailingFor != 4*time.Second || obs[0].ConfirmedFor != 0 {
		t.Fatalf("an older agent's state: %+v, %v", obs, err)
	}
}

// encodeLater is the later-fields section encodeState appends for the
// one observation o: its count, then o's entry.
func encodeLater(o *Observation, now time.Time) []byte {
	e := encoder{}
	e.uvarint(1)
	age := now.Sub(o.Received())
	e.dur(o.FailingFor + age)
	e.dur(o.ConfirmedFor + age)
	e.uvarint(uint64(o.CertExpiry.Unix()))
	return e.b
}

// An incident's first failure per region survives the wire (to the
// millisecond) and merges by keeping each region's earliest; a record
// without them (an older agent's) decodes with none.
func TestIncidentCarriesFirstFailures(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	in := Incident{ID: "api@1", Target: "api", StartedAt: t0, Regions: []string{"eu", "us"},
		FirstFailures: []RegionFailure{{Region: "eu", At: t0, Reason: "timeout"}, {Region: "us", At: t0.Add(1500 * time.Millisecond), Reason: "status_mismatch"}}}
	got, err := decodeIncident(encodeIncident(&in))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.FirstFailures) != 2 || got.FirstFailures[1].Region != "us" || !got.FirstFailures[1].At.Equal(t0.Add(1500*time.Millisecond)) ||
		got.FirstFailures[1].Reason != "status_mismatch" {
		t.Fatalf("first failures after the wire: %+v", got.FirstFailures)
	}
	other := Incident{ID: "api@1", FirstFailures: []RegionFailure{{Region: "us", At: t0.Add(time.Second), Reason: "timeout"}, {Region: "ap", At: t0.Add(2 * time.Second)}}}
	a, b := in, other
	a.merge(&other)
	b.merge(&in)
	if len(a.FirstFailures) != 3 || !a.FirstFailures[1].At.Equal(t0.Add(time.Second)) || a.FirstFailures[2].Region != "ap" {
		t.Fatalf("merged: %+v", a.FirstFailures)
	}
	if !slices.EqualFunc(a.FirstFailures, b.FirstFailures, func(x, y RegionFailure) bool { return x == y }) {
		t.Fatalf("merging in either order differs: %+v and %+v", a.FirstFailures, b.FirstFailures)
	}
	old := in
	old.FirstFailures = nil
	msg := encodeIncident(&old)
	if got, err := decodeIncident(msg[:len(msg)-1]); err != nil || got.FirstFailures != nil {
		t.Fatalf("an older agent's record: %+v %v", got, err)
	}
}

// Leader changes survive the wire and merge by each agent's earliest
// takeover.
func TestIncidentCarriesLeaderChanges(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	in := Incident{ID: "api@1", Target: "api", StartedAt: t0, Leader: "eu-1",
		LeaderChanges: []LeaderChange{{Agent: "us-1", At: t0.Add(20 * time.Second)}}}
	got, err := decodeIncident(encodeIncident(&in))
	if err != nil || len(got.LeaderChanges) != 1 || got.LeaderChanges[0].Agent != "us-1" || !got.LeaderChanges[0].At.Equal(t0.Add(20*time.Second)) {
		t.Fatalf("leader changes after the wire: %+v %v", got.LeaderChanges, err)
	}
	other := Incident{ID: "api@1", LeaderChanges: []LeaderChange{{Agent: "ap-1", At: t0.Add(40 * time.Second)}, {Agent: "us-1", At: t0.Add(25 * time.Second)}}}
	in.merge(&other)
	if len(in.LeaderChanges) != 2 || in.LeaderChanges[0].Agent != "us-1" || !in.LeaderChanges[0].At.Equal(t0.Add(20*time.Second)) {
		t.Fatalf("merged: %+v", in.LeaderChanges)
	}
}
