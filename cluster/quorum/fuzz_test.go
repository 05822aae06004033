package quorum

import (
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"
)

// fuzzCase decodes fuzz bytes into one target's observations and policy.
//
//	b[0]  MinRegions (0-6)
//	b[1]  regions: count 0-5 (low 3 bits, 0 means the keys of Assignees),
//	      bit 3 lists "r4" a second time (regions repeat in configs by mistake)
//	b[2]  isolated regions, a bit per region r0-r4
//	then  per region r0-r4: one byte, its assignees as a bitmask over
//	      agents a<region>0-a<region>3 (bit 4 adds agent x, who belongs
//	      to no region: a misconfigured assignee list)
//	then  4 bytes per message: agent (any of the 20 + x), boot 1-2, seq
//	      0-7, failing, and the receipt age in quarter windows (0-15)
//
// A message is what one agent said at (boot, seq): its content is the same
// wherever it was relayed, so each message carries its region and verdict,
// and only its receipt time differs between deliveries. Two deliveries of a
// message are made from each 4 bytes when bit 7 of the last byte is set.
func fuzzCase(b []byte) ([]Observation, Policy) {
	next := func() byte {
		if len(b) == 0 {
			return 0
		}
		v := b[0]
		b = b[1:]
		return v
	}
	all := []string{"r0", "r1", "r2", "r3", "r4"}
	p := Policy{MinRegions: int(next() % 7), Assignees: map[string][]string{}, Isolated: map[string]bool{}}
	rb := next()
	p.Regions = slices.Clone(all[:min(int(rb&7), 5)])
	if rb&8 != 0 && len(p.Regions) == 5 {
		p.Regions = append(p.Regions, "r4")
	}
	iso := next()
	for i, r := range all {
		if iso&(1<<i) != 0 {
			p.Isolated[r] = true
		}
	}
	for i, r := range all {
		m := next()
		for j := range 4 {
			if m&(1<<j) != 0 {
				p.Assignees[r] = append(p.Assignees[r], agentName(i, j))
			}
		}
		if m&16 != 0 {
			p.Assignees[r] = append(p.Assignees[r], "x")
		}
		if m&32 != 0 && len(p.Assignees[r]) > 0 {
			p.Assignees[r] = append(p.Assignees[r], p.Assignees[r][0]) // listed twice
		}
	}
	var obs []Observation
	said := map[msgKey]bool{}
	for len(b) >= 4 {
		a, bs, f, age := next(), next(), next(), next()
		id := int(a % 21)
		o := Observation{Region: "x", AgentID: "x"}
		if id < 20 {
			o.Region, o.AgentID = all[id/4], agentName(id/4, id%4)
		}
		o.Boot = 1 + uint64(bs&1)
		o.Seq = uint64(bs>>1) % 8
		// The message's content is fixed by who said it and when; a
		// later delivery of the same (agent, boot, seq) repeats it.
		key := msgKey{o.AgentID, o.Boot, o.Seq}
		failing, ok := said[key]
		if !ok {
			failing = f&1 == 1
			said[key] = failing
		}
		o.Failing = failing
		o.Interval, o.Timeout = 30*time.Second, 10*time.Second
		o.Received = t0.Add(-time.Duration(age%16) * window / 4)
		obs = append(obs, o)
		if age&128 != 0 {
			dup := o
			dup.Received = t0.Add(-time.Duration((age>>4)%8) * window / 4)
			obs = append(obs, dup)
		}
	}
	return obs, p
}

type msgKey struct {
	agent     string
	boot, seq uint64
}

func agentName(region, i int) string { return "a" + strconv.Itoa(region) + strconv.Itoa(i) }

// failMessage marks every delivery of the message (agent, boot, seq) failing.
func failMessage(obs []Observation, o Observation) []Observation {
	out := slices.Clone(obs)
	for i := range out {
		if out[i].AgentID == o.AgentID && out[i].Boot == o.Boot && out[i].Seq == o.Seq {
			out[i].Failing = true
		}
	}
	return out
}

func FuzzEvaluate(f *testing.F) {
	// Three regions, two assignees each, everyone fresh and passing.
	f.Add([]byte{2, 3, 0, 3, 3, 3, 0, 0,
		0, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 8, 0, 0, 0, 9, 0, 0, 0}, uint8(0))
	// Two of three regions failing, one stale.
	f.Add([]byte{2, 3, 0, 1, 1, 1, 0, 0,
		0, 0, 1, 0, 4, 0, 1, 0, 8, 0, 0, 9}, uint8(1))
	// An isolated region, a former assignee, a duplicate delivery, a
	// restarted agent whose new boot has a lower seq.
	f.Add([]byte{3, 5, 4, 1, 3, 1, 1, 0,
		0, 1, 1, 0x81, 1, 0, 1, 0, 4, 14, 0, 0, 4, 1, 1, 1, 8, 0, 1, 0, 12, 0, 1, 0}, uint8(2))
	// No regions listed: the keys of Assignees are the regions; x assigned.
	f.Add([]byte{1, 0, 0, 0x11, 0, 0x21, 0, 0, 20, 0, 1, 0, 0, 0, 1, 0}, uint8(3))
	f.Add([]byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, b []byte, k uint8) {
		obs, p := fuzzCase(b)
		v := Evaluate(obs, p, t0)

		if again := Evaluate(obs, p, t0); !reflect.DeepEqual(v, again) {
			t.Fatalf("not deterministic:\n%+v\n%+v", v, again)
		}
		// Arrival order, the order of the configured regions and of each
		// region's assignees change nothing.
		q := p
		q.Regions = slices.Clone(p.Regions)
		slices.Reverse(q.Regions)
		q.Assignees = map[string][]string{}
		for r, ids := range p.Assignees {
			ids = slices.Clone(ids)
			slices.Reverse(ids)
			q.Assignees[r] = ids
		}
		sh := slices.Clone(obs)
		slices.Reverse(sh)
		if n := len(sh); n > 0 {
			sh = append(sh[int(k)%n:], sh[:int(k)%n]...)
		}
		if w := Evaluate(sh, q, t0); !reflect.DeepEqual(v, w) {
			t.Fatalf("verdict depends on order:\n%+v\n%+v", v, w)
		}

		// Consistency of the verdict with itself.
		if v.Reporting != len(v.Failing)+len(v.Passing) || v.Needed < 1 {
			t.Fatalf("inconsistent verdict %+v", v)
		}
		want := Unknown
		switch {
		case len(v.Failing) >= v.Needed:
			want = Down
		case v.Reporting >= v.Needed:
			want = Up
		}
		if v.State != want {
			t.Fatalf("state %v, want %v: %+v", v.State, want, v)
		}

		// Monotonicity: one more message saying failing never turns Down
		// into Up or Unknown, never lowers the failing regions, and never
		// changes who reports. Turning a passing region failing (all its
		// messages failing) never turns Down into Up either.
		if len(obs) > 0 {
			w := Evaluate(failMessage(obs, obs[int(k)%len(obs)]), p, t0)
			if v.State == Down && w.State != Down || len(w.Failing) < len(v.Failing) || w.Reporting != v.Reporting {
				t.Fatalf("a failing message turned %v %v into %v %v", v.State, v.Failing, w.State, w.Failing)
			}
		}
		if len(v.Passing) > 0 {
			region := v.Passing[int(k)%len(v.Passing)]
			more := slices.Clone(obs)
			for i := range more {
				if more[i].Region == region {
					more[i].Failing = true
				}
			}
			w := Evaluate(more, p, t0)
			if !slices.Contains(w.Failing, region) {
				t.Fatalf("region %s with every message failing votes %+v", region, w)
			}
			if v.State == Down && w.State != Down || v.State == Up && w.State == Unknown {
				t.Fatalf("region %s turning failing made %v into %v", region, v.State, w.State)
			}
		}
	})
}
