package fleettest_test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/exporter"
	"github.com/vantage-probe/vantage/internal/fleettest"
	"github.com/vantage-probe/vantage/internal/testenv"
	"github.com/vantage-probe/vantage/probe/probetest"
)

// TestFleetAgreesAndRegionsProbeFromTheirOwnAddress: three agents form one
// cluster, lead the target between them, and with SourceIPs each region's
// probes arrive from its own address.
func TestFleetAgreesAndRegionsProbeFromTheirOwnAddress(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	srv := probetest.NewHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		seen[host] = true
		mu.Unlock()
		fmt.Fprintln(w, "ok")
	}))
	fleet := fleettest.Start(t, fleettest.Options{SourceIPs: true, Targets: fmt.Sprintf(`
[[target]]
name = "web"
type = "http"
url = %q
`, srv.URL)})
	if len(fleet) != len(fleettest.DefaultRegions) {
		t.Fatalf("%d agents, want one per region", len(fleet))
	}
	testenv.Poll(t, 10*time.Second, "a probe from every region's address", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for i := range fleettest.DefaultRegions {
			if !seen[fleettest.SourceIP(i)] {
				return false
			}
		}
		return true
	})
	testenv.Poll(t, 10*time.Second, "every agent to call web up from three regions", func() bool {
		for _, a := range fleet {
			ts := a.Targets(exporter.TargetQuery{}).Views
			if len(ts) != 1 || ts[0].Verdict != "up" || ts[0].Reporting != 3 {
				return false
			}
		}
		return true
	})
	for i := range fleettest.DefaultRegions {
		if !strings.HasPrefix(fleettest.SourceIP(i), fleettest.RegionPrefix(i)) {
			t.Errorf("SourceIP(%d) %s outside RegionPrefix %s", i, fleettest.SourceIP(i), fleettest.RegionPrefix(i))
		}
	}
}
