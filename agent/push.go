package agent

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"sync"

	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/exporter"
	"github.com/vantage-probe/vantage/exporter/push"
	"github.com/vantage-probe/vantage/probe"
)

// pushing is the agent's [exporter.push]: a Pusher sending what /metrics
// serves, replaced when a reload changes the table.
type pushing struct {
	mu  sync.Mutex
	p   *push.Pusher // nil: not pushing
	cfg config.Push  // what p was built from
	// stop ends p's Run; done is closed when it has returned.
	stop context.CancelFunc
	done chan struct{}
}

// configurePush starts, replaces or stops the Pusher for cfg: at start and
// on every reload that changes [exporter.push]. The new Pusher pushes at
// once.
func (a *Agent) configurePush(ctx context.Context, cfg *config.Config) error {
	ps := &a.push
	ps.mu.Lock()
	same := reflect.DeepEqual(ps.cfg, cfg.Exporter.Push)
	ps.mu.Unlock()
	if same {
		return nil
	}
	var p *push.Pusher
	if pc := cfg.Exporter.Push; pc.Enabled() {
		labels := maps.Clone(pc.Labels)
		// The agent's identity, as a scrape adds it: the rules join on
		// (instance, job), and two agents' own series must not merge.
		labels["instance"] = cfg.Agent.Node
		var err error
		p, err = push.New(push.Config{URL: pc.URL, Interval: pc.Interval, Labels: labels,
			BasicAuthUser: pc.BasicAuthUser, BasicAuthPassword: pc.BasicAuthPassword, BearerToken: pc.BearerToken,
			Write: a.reg.WritePrometheus, Metrics: a.reg.Set(), Logger: a.log.With("component", "push")})
		if err != nil {
			return fmt.Errorf("push: %w", err)
		}
	}
	ps.mu.Lock()
	oldStop, oldDone := ps.stop, ps.done
	ps.p, ps.cfg, ps.stop, ps.done = p, cfg.Exporter.Push, nil, nil
	if p != nil {
		pctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		ps.stop, ps.done = cancel, done
		go func() { defer close(done); p.Run(pctx) }()
	}
	ps.mu.Unlock()
	if oldStop != nil {
		oldStop()
		<-oldDone
	}
	return nil
}

// stopPush stops the Pusher and waits for it (a push in flight is cut
// short: the agent is stopping).
func (a *Agent) stopPush() {
	ps := &a.push
	ps.mu.Lock()
	stop, done := ps.stop, ps.done
	ps.p, ps.cfg, ps.stop, ps.done = nil, config.Push{}, nil, nil
	ps.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// pushView is the push state for the API and the page; nil when the agent
// does not push.
func (a *Agent) pushView() *exporter.PushView {
	a.push.mu.Lock()
	p := a.push.p
	a.push.mu.Unlock()
	if p == nil {
		return nil
	}
	st := p.Status()
	return &exporter.PushView{URL: probe.RedactURL(st.URL), Interval: st.Interval.String(), OK: st.OK(),
		Success: st.Success, Errors: st.Errors, LastSuccess: st.LastSuccess,
		LastError: st.LastError, LastErrorAt: st.LastErrorAt, LastDuration: st.LastDuration, LastBytes: st.LastBytes}
}
