package soak

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestSoakShort is the CI form of `make soak`: a few hundred targets, three
// agents, faults and agent restarts for 45 seconds. Goroutines and file
// descriptors must come back to where they started, and the second half of
// the run must not grow past the first.
func TestSoakShort(t *testing.T) {
	if testing.Short() {
		t.Skip("soak runs for 45s")
	}
	d := 45 * time.Second
	if os.Getenv("VANTAGE_SOAK_DURATION") != "" {
		if v, err := time.ParseDuration(os.Getenv("VANTAGE_SOAK_DURATION")); err == nil {
			d = v
		}
	}
	rep, err := Run(context.Background(), Options{Targets: 200, Interval: 5 * time.Second, Duration: d, Regions: 3,
		RestartEvery: 12 * time.Second, FaultEvery: 7 * time.Second, SampleEvery: 5 * time.Second, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("probes %d, restarts %d, faults %d; before %+v after %+v", rep.Probes, rep.Restarts, rep.Faults, rep.Before, rep.After)
	if rep.Probes < 200 || rep.Restarts < 2 {
		t.Fatalf("soak did too little: %d probes, %d restarts", rep.Probes, rep.Restarts)
	}
	if rep.After.Goroutines > rep.Before.Goroutines+2 {
		t.Errorf("goroutine leak: %d before, %d after", rep.Before.Goroutines, rep.After.Goroutines)
	}
	if rep.After.FDs > rep.Before.FDs+2 {
		t.Errorf("file descriptor leak: %d before, %d after", rep.Before.FDs, rep.After.FDs)
	}
	if err := rep.Flat(50, 0.5); err != nil {
		t.Error(err)
	}
}
