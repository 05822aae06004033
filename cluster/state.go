package cluster

import ()

// The push/pull state: every fresh observation this agent knows and every
// incident it keeps. Sent over memberlist's TCP push/pull, so it is not
// bound by the gossip packet size, but its decoder bounds what it accepts.
const (
	maxStateObservations = 500_000
	maxStateIncidents    = 10_000
)

func encodeState(obs []*Observation, incidents []*Incident) []byte {
	e := encoder{b: make([]byte, 0, 16+len(obs)*64+len(incidents)*96)}
	e.byte(msgState)
	e.byte(wireVersion)
	e.uvarint(uint64(len(obs)))
	for _, o := range obs {
		o.encode(&e)
	}
	e.uvarint(uint64(len(incidents)))
	for _, in := range incidents {
		b := encodeIncident(in)
		e.uvarint(uint64(len(b)))
		e.b = append(e.b, b...)
	}
	return e.b
}

func decodeState(b []byte) ([]Observation, []Incident, error) {
	d := decoder{b: b}
	d.header(msgState)
	n := d.uvarint()
	if n > maxStateObservations {
		return nil, nil, errTooLarge
	}
	obs := make([]Observation, 0, min(n, uint64(len(b)/8)))
	for i := uint64(0); i < n && d.err == nil; i++ {
		var o Observation
		o.decode(&d)
		obs = append(obs, o)
	}
	m := d.uvarint()
	if m > maxStateIncidents {
		return nil, nil, errTooLarge
	}
	var ins []Incident
	for i := uint64(0); i < m && d.err == nil; i++ {
		l := d.uvarint()
		if d.err != nil || uint64(len(d.b)) < l {
			return nil, nil, errShort
		}
		in, err := decodeIncident(d.b[:l])
		if err != nil {
			return nil, nil, err
		}
		d.b = d.b[l:]
		ins = append(ins, in)
	}
	if d.err != nil {
		return nil, nil, d.err
	}
	return obs, ins, nil
}

// messageType peeks at the type byte.
func messageType(b []byte) (byte, error) {
	if len(b) < 2 {
		return 0, errShort
	}
	return b[0], nil
}

// observations are one target's latest observation per agent: a handful
// (one per region probing it, a few more during hand-overs), so a slice
// searched in order, not a map (a map per target was 400 bytes of the
// agent's memory per target at 10k targets, for usually one entry).
type observations []*Observation

// get returns agent's observation, or nil.
func (os observations) get(agent string) *Observation {
	for _, o := range os {
		if o.AgentID == agent {
			return o
		}
	}
	return nil
}

// set replaces agent o.AgentID's observation with o, or adds it.
func (os observations) set(o *Observation) observations {
	for i, p := range os {
		if p.AgentID == o.AgentID {
			os[i] = o
			return os
		}
	}
	return append(os, o)
}
