package agent

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/internal/testenv"
	"github.com/vantage-probe/vantage/probe/probetest"
)

// After a second agent joins a region, the first hands over half its
// targets and keeps probing them only for the grace period. Grace used to
// expire only at the next reassignment or reload: a fleet that settled
// left both agents probing every handed-over target forever (issue:
// "both report vantage_targets_assigned 30"), doubling the probe traffic
// and the SLI's probe counts.
func TestHandedOverTargetsStopAfterTheirGrace(t *testing.T) {
	srv, err := probetest.StartTCP(probetest.TCPClose, "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var targets strings.Builder
	const n = 20
	for i := range n {
		fmt.Fprintf(&targets, "[[target]]\nname = \"t%02d\"\ntype = \"tcp\"\naddress = %q\n", i, srv.Addr)
	}
	first := startFleetAgent(t, "", "eu-0", "eu", targets.String(), "")
	testenv.Poll(t, 20*time.Second, "the first agent to take every target", func() bool { return first.sched.Len() == n })
	second := startFleetAgent(t, first.Cluster().LocalAddr(), "eu-1", "eu", targets.String(), "")
	waitAlive(t, []*Agent{first, second})
	scheduled := func() (int, int) { return first.sched.Len(), second.sched.Len() }
	// One owner per target once grace (2 x 1s interval + 0.5s timeout) is over.
	testenv.Poll(t, 20*time.Second, "each target scheduled on one agent only", func() bool {
		a, b := scheduled()
		return a+b == n && a > 0 && b > 0
	})
	// And it stays so: nothing re-grows.
	for range 10 {
		if a, b := scheduled(); a+b != n {
			t.Fatalf("scheduled %d + %d targets, want %d in all", a, b, n)
		}
		time.Sleep(100 * time.Millisecond) // sampling an invariant, not synchronising
	}
}
