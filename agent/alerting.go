package agent

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/cluster"
	"github.com/vantage-probe/vantage/exporter/alertmanager"
	"github.com/vantage-probe/vantage/exporter/rules"
)

// resolvedRetention is how long the leader keeps sending a resolved
// alert, as Prometheus does: an Alertmanager that missed the end (down,
// partitioned) learns it at a later resend.
const resolvedRetention = 15 * time.Minute

// alerting is the agent's direct path to Alertmanager: the alerts of the
// targets it leads, declared to a Notifier whenever an incident opens or
// resolves and every second besides (leaderships move; a new leader
// continues an incident it learnt by gossip within a second).
type alerting struct {
	kick chan struct{} // an incident opened or resolved: sync now

	mu  sync.Mutex
	n   *alertmanager.Notifier // nil: [alerting] not configured
	cfg config.Alerting        // what n was built from
	// stop ends n's Run; done is closed when it has returned.
	stop context.CancelFunc
	done chan struct{}
}

func newAlerting() *alerting {
	return &alerting{kick: make(chan struct{}, 1)}
}

// poke asks the loop to sync now; never blocks (incidents are events on
// the cluster's goroutine).
func (al *alerting) poke() {
	select {
	case al.kick <- struct{}{}:
	default:
	}
}

// configure builds a Notifier for cfg (nil when alerting is off) and swaps
// it in, stopping the previous one: at start and on every reload that
// changes [alerting]. The new Notifier gets the current alerts at the next
// sync, as new ones, so nothing is lost across the swap.
func (a *Agent) configureAlerting(ctx context.Context, cfg *config.Config) error {
	al := a.alerts
	al.mu.Lock()
	same := al.n != nil && alertingEqual(al.cfg, cfg.Alerting)
	off := al.n == nil && !cfg.Alerting.Enabled()
	al.mu.Unlock()
	if same || off {
		return nil
	}
	var n *alertmanager.Notifier
	if cfg.Alerting.Enabled() {
		tlsCfg, err := cfg.Alerting.TLS.Config("")
		if err != nil {
			return fmt.Errorf("alerting: %w", err)
		}
		n, err = alertmanager.New(alertmanager.Config{
			URLs: cfg.Alerting.Alertmanagers, Timeout: cfg.Alerting.Timeout, ResendInterval: cfg.Alerting.ResendInterval,
			TLS: tlsCfg, BasicAuthUser: cfg.Alerting.BasicAuthUser, BasicAuthPassword: cfg.Alerting.BasicAuthPassword,
			BearerToken: cfg.Alerting.BearerToken, ExternalLabels: cfg.Alerting.ExternalLabels,
			Metrics: a.reg.Set(), Logger: a.log.With("component", "alerting"),
		})
		if err != nil {
			return fmt.Errorf("alerting: %w", err)
		}
	}
	al.mu.Lock()
	oldStop, oldDone := al.stop, al.done
	al.n, al.cfg, al.stop, al.done = n, cfg.Alerting, nil, nil
	if n != nil {
		nctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		al.stop, al.done = cancel, done
		go func() { defer close(done); n.Run(nctx) }()
	}
	al.mu.Unlock()
	if oldStop != nil {
		oldStop()
		<-oldDone
	}
	al.poke()
	return nil
}

func alertingEqual(a, b config.Alerting) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// alertLoop syncs the direct alerts every second and on every incident
// until ctx ends, then stops the Notifier (after its bounded final flush).
func (a *Agent) alertLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			al := a.alerts
			al.mu.Lock()
			stop, done := al.stop, al.done
			al.n, al.stop, al.done = nil, nil, nil
			al.mu.Unlock()
			if stop != nil {
				stop()
				<-done
			}
			return
		case <-t.C:
		case <-a.alerts.kick:
		}
		a.syncAlerts()
	}
}

// syncAlerts declares to the Notifier the alerts of the targets this agent
// leads: a firing VantageTargetDown for each open incident (but in a
// maintenance window: the alert then lapses, as the rule's does), a
// resolved one for an incident that ended in the last 15 minutes and whose
// alert some leader sent (the incident record says when, AlertedAt): a
// resolution of an alert nobody sent could end a newer alert with the same
// labels in Alertmanager.
func (a *Agent) syncAlerts() {
	al := a.alerts
	al.mu.Lock()
	n := al.n
	al.mu.Unlock()
	if n == nil || a.Cluster() == nil {
		return
	}
	cfg := a.cfg.Load()
	now := time.Now()
	led := a.Cluster().LedIncidents(resolvedRetention)
	alerts := make([]alertmanager.Alert, 0, len(led))
	var first []string
	for _, li := range led {
		in := &li.Incident
		t := cfg.Target(in.Target)
		switch {
		case t == nil || (in.Open() && li.Maintenance):
			continue
		case !in.Open() && in.AlertedAt.IsZero():
			continue
		case in.Open() && in.AlertedAt.IsZero():
			first = append(first, in.ID)
		}
		alerts = append(alerts, targetDownAlert(cfg, t, &li))
	}
	if err := n.Update(alerts); err != nil {
		a.log.Warn("alerts left out", "err", err)
	}
	for _, id := range first {
		a.Cluster().MarkAlerted(id, now)
	}
}

// targetDownAlert is t's VantageTargetDown as the leader sends it: the
// labels of the generated rule's alert (so Alertmanager merges the two
// paths into one), its start the incident's first failed observation, and
// annotations that say what the leader knows now.
func targetDownAlert(cfg *config.Config, t *config.Target, li *cluster.LedIncident) alertmanager.Alert {
	in := &li.Incident
	failing := li.Failing
	if len(failing) == 0 {
		failing = in.Regions
	}
	summary := fmt.Sprintf("%s is down: failing in %d of %d regions", t.Name, len(failing), li.Reporting)
	desc := fmt.Sprintf("Vantage's quorum calls the %s target %s (%s) down: %d of %d reporting regions see it fail (%s) and %d must agree.",
		t.Type, t.Name, t.Endpoint(), len(failing), li.Reporting, strings.Join(failing, ", "), li.Needed)
	if in.Reason != "" {
		desc += " Reason: " + in.Reason + "."
	}
	desc += " Down since " + in.StartedAt.UTC().Format(time.RFC3339) + " (first failed probe); detected " +
		in.DetectedAt.Sub(in.StartedAt).Round(10*time.Millisecond).String() + " later. Each region's latest result: the status page."
	al := alertmanager.Alert{
		Labels:   rules.TargetDownLabels(t),
		StartsAt: in.StartedAt,
		Annotations: map[string]string{
			"summary":     summary,
			"description": desc,
			"runbook_url": rules.RunbookURL(t, "", rules.AlertTargetDown),
		},
		GeneratorURL: cfg.Agent.ExternalURL + "/?target=" + url.QueryEscape(t.Name),
	}
	if !in.Open() {
		al.EndsAt = in.ResolvedAt
		al.Annotations["summary"] = t.Name + " is up again"
	}
	return al
}

// alertingHealthy reports whether this agent delivers alerts itself and an
// Alertmanager accepts them: the generated rule then leaves this agent's
// verdicts to the direct path.
func (a *Agent) alertingHealthy() bool {
	al := a.alerts
	al.mu.Lock()
	n := al.n
	al.mu.Unlock()
	return n != nil && n.Healthy()
}

// AlertmanagerStatus is each Alertmanager's delivery status, for the
// status page and the API; nil without [alerting].
func (a *Agent) AlertmanagerStatus() []alertmanager.Status {
	al := a.alerts
	al.mu.Lock()
	n := al.n
	al.mu.Unlock()
	if n == nil {
		return nil
	}
	return n.Status()
}
