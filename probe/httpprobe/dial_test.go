package httpprobe

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/probe"
)

// The shared transport finds the probe it dials for in the context. A
// request that reaches it without one (not from Probe) fails with an error
// naming the cause, and a prober that did so would report config_error:
// nothing panics.
func TestDialWithoutRunFails(t *testing.T) {
	for _, scheme := range []string{"http", "https"} {
		t.Run(scheme, func(t *testing.T) {
			p := mustNew(t, Options{URL: scheme + "://127.0.0.1:1/"})
			ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
			defer cancel()

			cc, err := p.tr.NewClientConn(ctx, scheme, hostportOf(t, p))
			if !errors.Is(err, errNoRun) {
				if cc != nil {
					_ = cc.Close()
				}
				t.Fatalf("NewClientConn without a run: %v, want %v", err, errNoRun)
			}

			r := &run{p: p, start: time.Now()}
			r.res.Phases = make([]probe.Phase, numPhases)
			p.do(ctx, r) // the probe's path, with a context that lacks the run
			wantReason(t, r.res, probe.ReasonConfig)
			if !strings.Contains(r.res.Message, errNoRun.Error()) {
				t.Errorf("message %q does not name the cause", r.res.Message)
			}
		})
	}
}

// hostportOf is the host:port a probe of p dials first.
func hostportOf(t testing.TB, p *Prober) string {
	t.Helper()
	u, err := url.Parse(p.urlString)
	if err != nil {
		t.Fatal(err)
	}
	return hostPort(u)
}
