package cluster

import (
	"testing"
	"time"
)

// TestOverlappingResolvedIncidentsFoldIntoOne: two leaders that could not
// hear each other (a region cut off one way keeps leading until it is told
// it is doubted) may each declare the same outage. Once both records are
// resolved and every agent holds both, they are one incident everywhere:
// the smaller ID, with the later resolution and both records' regions,
// whatever order the records arrive in. Incidents that do not overlap, and
// an open one, are left alone.
func TestOverlappingResolvedIncidentsFoldIntoOne(t *testing.T) {
	at := func(s int) time.Time { return time.Unix(1_800_000_000+int64(s), 0) }
	first := Incident{ID: "t@1800000000000", Target: "t", StartedAt: at(0), DetectedAt: at(2), ResolvedAt: at(25),
		Regions: []string{"eu", "ap"}, Leader: "eu-1"}
	second := Incident{ID: "t@1800000003000", Target: "t", StartedAt: at(3), DetectedAt: at(7), ResolvedAt: at(27),
		Regions: []string{"us", "ap"}, Leader: "us-1"}
	later := Incident{ID: "t@1800000100000", Target: "t", StartedAt: at(100), DetectedAt: at(101), ResolvedAt: at(120)}
	other := Incident{ID: "u@1800000003000", Target: "u", StartedAt: at(3), DetectedAt: at(4), ResolvedAt: at(9)}
	for _, order := range [][]Incident{{first, second, later, other}, {second, other, later, first}, {later, second, first, other}} {
		c := &Cluster{}
		for _, in := range order {
			c.mergeIncident(&in)
		}
		got := c.Incidents()
		if len(got) != 3 {
			t.Fatalf("order %s: %d incidents, want 3 (the two overlapping ones folded): %+v", ids(order), len(got), got)
		}
		var folded *Incident
		for i := range got {
			if got[i].ID == second.ID {
				t.Errorf("order %s: the larger ID survived the fold", ids(order))
			}
			if got[i].ID == first.ID {
				folded = &got[i]
			}
		}
		if folded == nil {
			t.Fatalf("order %s: the smaller ID is gone: %+v", ids(order), got)
		}
		if !folded.ResolvedAt.Equal(second.ResolvedAt) || !folded.StartedAt.Equal(first.StartedAt) {
			t.Errorf("order %s: folded %v - %v, want %v - %v", ids(order), folded.StartedAt, folded.ResolvedAt, first.StartedAt, second.ResolvedAt)
		}
		if len(folded.Regions) != 3 {
			t.Errorf("order %s: folded regions %v, want eu, us and ap", ids(order), folded.Regions)
		}
	}

	// An open incident is not folded into a resolved one: the outage it
	// records is still going on (open ones converge by their own rule).
	c := &Cluster{}
	open := second
	open.ResolvedAt = time.Time{}
	c.mergeIncident(&first)
	c.mergeIncident(&open)
	if n := len(c.Incidents()); n != 2 {
		t.Errorf("an open incident overlapping a resolved one: %d records, want both", n)
	}
}

func ids(ins []Incident) string {
	s := ""
	for _, in := range ins {
		s += in.ID + " "
	}
	return s
}
