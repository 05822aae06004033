package alertmanager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Notifier delivers one agent's alerts to every configured Alertmanager.
// Update declares the alerts; Run delivers them until its context ends.
type Notifier struct {
	cfg       Config
	client    *http.Client
	transport *http.Transport
	senders   []*sender
	delivery  *metrics.PrometheusHistogram
	running   atomic.Bool

	mu    sync.Mutex // orders Updates and resend ticks; taken before any sender's mu
	cur   map[uint64]*state
	spare map[uint64]*state // the previous cur, cleared: Update's next map, so that steady Updates allocate no map
	enc   encoder
}

// state is one alert as this agent last declared it. It never changes once
// made; a changed alert is a new state, which supersedes the old one
// wherever the old one is still waiting.
type state struct {
	fp uint64
	// body is the alert's JSON object without endsAt and without the
	// closing brace (see encoder.encode): encoded once per change, copied
	// into every batch that carries it.
	body   []byte
	endsAt time.Time // zero: firing
	// since is when the Update that introduced this state ran: the start of
	// vantage_alert_delivery_seconds.
	since time.Time
	// delivered is set by the first 2xx from any Alertmanager: the delivery
	// histogram observes each state once, the moment some Alertmanager can
	// page for it (a cluster needs only one member to hear of an alert).
	delivered atomic.Bool
}

// deliveryBuckets span a POST to a loopback Alertmanager (ms) to a minute
// of retries against one that is down.
var deliveryBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// New validates cfg and returns a Notifier that sends nothing until Run.
// Every problem in cfg is reported at once, each wrapping ErrInvalidConfig
// and naming the bad value.
func New(cfg Config) (*Notifier, error) {
	eps, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	cfg.ExternalLabels = maps.Clone(cfg.ExternalLabels)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.TLS != nil {
		tr.TLSClientConfig = cfg.TLS.Clone()
	}
	// Every agent posts to a handful of Alertmanagers: keep one idle
	// connection each (per host) rather than re-dialling at every batch.
	tr.MaxIdleConnsPerHost = 4
	n := &Notifier{
		cfg:       cfg,
		transport: tr,
		client: &http.Client{
			Transport: tr,
			// A redirected POST would be re-sent as a GET by net/http for
			// 301-303, and GET /api/v2/alerts answers 200: a silent loss.
			// Report redirects instead, as a permanent error naming the
			// target, so the operator fixes the URL.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		delivery: cfg.Metrics.GetOrCreatePrometheusHistogramExt(`vantage_alert_delivery_seconds`, deliveryBuckets),
		cur:      map[uint64]*state{},
		spare:    map[uint64]*state{},
		enc:      encoder{external: cfg.ExternalLabels},
	}
	for _, ep := range eps {
		n.senders = append(n.senders, newSender(n, ep))
	}
	return n, nil
}

// Update declares this agent's current alerts: firing ones (EndsAt zero)
// and resolved ones (EndsAt set). The caller keeps a resolved alert in the
// list for a while (Prometheus keeps them 15 minutes), so that an
// Alertmanager that missed the end still learns it at a resend.
//
// An alert present at the previous Update and absent now is forgotten, not
// resolved: it is no longer this agent's to send (another agent leads the
// target now and sends it, with the same labels and start), so nothing is
// sent for it and anything of it still waiting is dropped. Were a stale
// state of ours delivered after the new leader's, Alertmanager would take
// ours.
//
// New and changed alerts (firing<->resolved, StartsAt, EndsAt, annotations,
// GeneratorURL) are sent at once; unchanged ones only at the resend tick.
// Invalid alerts are left out (as if absent) and reported in the returned
// error, one wrapped ErrInvalidAlert each; the valid ones are declared all
// the same. Update does not retain alerts or their maps.
func (n *Notifier) Update(alerts []Alert) error {
	now := n.cfg.Now()
	maxStart := now.Add(4 * n.cfg.ResendInterval)
	var errs []error
	var changed []*state

	n.mu.Lock()
	defer n.mu.Unlock()
	next := n.spare
	for i := range alerts {
		a := &alerts[i]
		fp, err := n.enc.encode(a, maxStart)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: alerts[%d] %v: %w", ErrInvalidAlert, i, a.Labels, err))
			continue
		}
		if _, dup := next[fp]; dup {
			// Equal labels are one alert; two states of it in one list
			// means the caller is confused. Keep the first.
			errs = append(errs, fmt.Errorf("%w: alerts[%d] %v: the same labels as an earlier alert in the list", ErrInvalidAlert, i, a.Labels))
			continue
		}
		if old := n.cur[fp]; old != nil && old.endsAt.Equal(a.EndsAt) && bytes.Equal(old.body, n.enc.buf) {
			next[fp] = old
			continue
		}
		if err := checkGeneratorURL(a); err != nil {
			errs = append(errs, fmt.Errorf("%w: alerts[%d] %v: %w", ErrInvalidAlert, i, a.Labels, err))
			continue
		}
		st := &state{fp: fp, body: bytes.Clone(n.enc.buf), endsAt: a.EndsAt, since: now}
		next[fp] = st
		changed = append(changed, st)
	}
	var forgotten []uint64
	for fp := range n.cur {
		if _, ok := next[fp]; !ok {
			forgotten = append(forgotten, fp)
		}
	}
	n.cur, n.spare = next, n.cur
	clear(n.spare)
	if len(changed) > 0 || len(forgotten) > 0 {
		for _, s := range n.senders {
			s.apply(changed, forgotten)
		}
	}
	return errors.Join(errs...)
}

// resend queues every current alert for another send to every
// Alertmanager, keeping firing alerts alive there (their endsAt moves
// ahead) and repeating resolved ones for Alertmanagers that missed them.
func (n *Notifier) resend() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, s := range n.senders {
		if len(n.cur) == 0 {
			s.requestProbe()
			continue
		}
		s.queueAll(n.cur)
	}
}

// Healthy reports whether some Alertmanager accepted the last request it
// answered: alerts, or the empty list the Notifier posts each resend
// interval while it has none (and once when Run starts). The agent exports
// it as vantage_alerting_healthy; the generated rules leave the direct path
// alone while it is 1.
func (n *Notifier) Healthy() bool {
	for _, s := range n.senders {
		if s.healthy() {
			return true
		}
	}
	return false
}

// Run delivers alerts until ctx ends: one sender goroutine per
// Alertmanager, so that one that is slow or down delays no other, and a
// resend tick every ResendInterval. When ctx ends it gives the senders at
// most Timeout to deliver what is still pending, and returns once every
// goroutine it started has ended. Run may be called once.
func (n *Notifier) Run(ctx context.Context) {
	if !n.running.CompareAndSwap(false, true) {
		n.cfg.Logger.Error("alertmanager notifier: Run called twice; the second call does nothing")
		return
	}
	// Idle keep-alive connections hold two goroutines each inside
	// net/http; close them so that nothing of ours outlives Run.
	defer n.transport.CloseIdleConnections()
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, s := range n.senders {
		wg.Go(func() { s.run(ctx) })
	}
	n.mu.Lock()
	if len(n.cur) == 0 {
		for _, s := range n.senders {
			s.requestProbe()
		}
	}
	n.mu.Unlock()
	t := time.NewTicker(n.cfg.ResendInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.resend()
		}
	}
}

// Status is one Alertmanager's delivery state, for the status page.
type Status struct {
	URL     string
	Pending int // distinct alerts waiting for delivery
	// Sent, Failed and Dropped count alerts: Sent in 2xx answers, Failed in
	// failed POSTs (once per attempt), Dropped for lack of room (MaxPending).
	Sent, Failed, Dropped uint64
	LastSuccess           time.Time // zero: never
	// LastError is the most recent failure (kept after later successes:
	// compare LastErrorAt with LastSuccess); empty: none yet.
	LastError   string
	LastErrorAt time.Time
}

// Status returns the state of delivery to each Alertmanager, in the order
// of Config.URLs.
func (n *Notifier) Status() []Status {
	out := make([]Status, len(n.senders))
	for i, s := range n.senders {
		out[i] = s.status()
	}
	return out
}
