package cluster

import (
	"sort"
	"time"
)

// Incident is one quorum-confirmed outage of one target.
type Incident struct {
	ID         string    `json:"id"` // target + "@" + started unix ms: same on every agent
	Target     string    `json:"target"`
	StartedAt  time.Time `json:"started_at"`                    // first failed observation in any region
	ConfirmAt  time.Time `json:"confirm_requested_at,omitzero"` // first confirmation request sent (zero: none)
	QuorumAt   time.Time `json:"quorum_at"`                     // the leader saw enough regions failing
	DetectedAt time.Time `json:"detected_at"`                   // verdict exported (down)
	ResolvedAt time.Time `json:"resolved_at,omitzero"`          // verdict back up; zero while open
	Regions    []string  `json:"regions"`                       // regions that saw it failing
	Leader     string    `json:"leader"`                        // agent that declared it
	Reason     string    `json:"reason,omitempty"`              // a failing region's reason
	Flaps      int       `json:"flaps"`                         // times it came back within the hold window
	// AlertedAt is when a leader first sent the incident's alert to
	// Alertmanager (zero: never, e.g. no [alerting]): any later leader may
	// then send its end, and only then.
	AlertedAt time.Time `json:"alerted_at,omitzero"`
}

// Open reports whether the incident is unresolved.
func (i *Incident) Open() bool { return i.ResolvedAt.IsZero() }

// TimeToDetect is DetectedAt - StartedAt.
func (i *Incident) TimeToDetect() time.Duration { return i.DetectedAt.Sub(i.StartedAt) }

// maxIncidents bounds the incident history each agent keeps.
const maxIncidents = 1000

func (c *Cluster) addIncidentLocked(in *Incident) {
	c.incidents = append(c.incidents, in)
	if len(c.incidents) > maxIncidents {
		c.incidents = append([]*Incident(nil), c.incidents[len(c.incidents)-maxIncidents:]...)
	}
}

func (c *Cluster) openIncidentLocked(target string) *Incident {
	for i := len(c.incidents) - 1; i >= 0; i-- {
		if in := c.incidents[i]; in.Target == target && in.Open() {
			return in
		}
	}
	return nil
}

// mergeIncident folds a gossiped incident record into ours: a new leader
// continues it, and every agent can show it. Two agents that both believed
// they led the target during churn may open one each; the open incident with
// the smaller ID wins everywhere, so the fleet converges on one.
func (c *Cluster) mergeIncident(in *Incident) {
	if in.ID == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if in.Open() {
		if mine := c.openIncidentLocked(in.Target); mine != nil && mine.ID != in.ID {
			if in.ID > mine.ID {
				return // ours wins; the other side will drop theirs
			}
			c.dropIncidentLocked(mine.ID)
			cp := *in
			c.addIncidentLocked(&cp)
			if vs := c.verdicts[in.Target]; vs != nil && vs.open == mine {
				vs.open = &cp
			}
			return
		}
	}
	for _, have := range c.incidents {
		if have.ID == in.ID {
			if have.ResolvedAt.IsZero() && !in.ResolvedAt.IsZero() {
				have.ResolvedAt = in.ResolvedAt
			}
			if !in.AlertedAt.IsZero() && (have.AlertedAt.IsZero() || in.AlertedAt.Before(have.AlertedAt)) {
				have.AlertedAt = in.AlertedAt
			}
			have.Regions = mergeRegions(have.Regions, in.Regions)
			return
		}
	}
	cp := *in
	c.addIncidentLocked(&cp)
	sort.SliceStable(c.incidents, func(i, j int) bool { return c.incidents[i].StartedAt.Before(c.incidents[j].StartedAt) })
}

// MarkAlerted records that incident id's alert went to Alertmanager at at
// (the first time only) and tells the fleet, so that whichever agent leads
// the target when it resolves sends the end.
func (c *Cluster) MarkAlerted(id string, at time.Time) {
	c.mu.Lock()
	var msg []byte
	for _, in := range c.incidents {
		if in.ID == id && in.AlertedAt.IsZero() {
			in.AlertedAt = at
			msg = encodeIncident(in)
			break
		}
	}
	c.mu.Unlock()
	if msg != nil {
		c.broadcast("i/"+id, msg)
		c.fanOut(msg)
	}
}

func (c *Cluster) dropIncidentLocked(id string) {
	out := c.incidents[:0]
	for _, in := range c.incidents {
		if in.ID != id {
			out = append(out, in)
		}
	}
	c.incidents = out
}

// Incidents returns the incidents this agent knows, newest first.
func (c *Cluster) Incidents() []Incident {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Incident, 0, len(c.incidents))
	for i := len(c.incidents) - 1; i >= 0; i-- {
		in := *c.incidents[i]
		in.Regions = append([]string(nil), in.Regions...)
		out = append(out, in)
	}
	return out
}

func mergeRegions(a, b []string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, s := range append(append([]string{}, a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}
