package alertmanager

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/vantage-probe/vantage/internal/mono"
)

const (
	// maxBatch is the most alerts per POST, as Prometheus' notifier sends:
	// small enough that a rejected batch costs little, large enough that a
	// resend of 10k alerts is ~160 requests.
	maxBatch = 64
	// backoffStart is the first retry delay after a failed POST; it doubles
	// up to backoffCap (or the resend interval, if shorter: by then the
	// next tick re-sends anyway).
	backoffStart = 100 * time.Millisecond
	backoffCap   = 30 * time.Second
	// logEvery is how often one Alertmanager's delivery errors may be
	// logged: a down Alertmanager fails every retry, and one line per
	// failure would drown the agent's log.
	logEvery = 10 * time.Second
	// errBodyMax is how much of an error answer goes into the error text.
	errBodyMax = 512
)

// sender delivers to one Alertmanager. Its pending alerts are a set keyed
// by fingerprint, not a FIFO: a newer state of an alert replaces the older
// one wherever it waits, so a superseded state is never sent, a retry sends
// the latest state, and the set is bounded by the number of distinct
// alerts rather than by how often they change.
type sender struct {
	n    *Notifier
	ep   endpoint
	wake chan struct{} // capacity 1: "pending may be non-empty"

	mu sync.Mutex
	// urgent holds new and changed states, sent before resend's unchanged
	// ones, so that a page is not queued behind a resend of 10k alerts. A
	// fingerprint is in at most one of the two.
	urgent, resend map[uint64]*state
	// probe asks for an empty POST when nothing else is pending: a quiet
	// agent still learns whether Alertmanager takes its requests, so that
	// Healthy (and the rules' backstop gate) says the truth before the
	// first page, not after it.
	probe                  bool
	sent, failed, dropped  uint64
	lastSuccess, lastErrAt time.Time
	lastErr                string

	// Owned by the run goroutine.
	batch   []*state
	buf     []byte
	limit   logLimiter
	failing int // failed POSTs since the last success

	mSuccess, mFailure, mDropped *metrics.Counter
	mPending, mLastSuccess       *metrics.Gauge
}

func newSender(n *Notifier, ep endpoint) *sender {
	set := n.cfg.Metrics
	am := `alertmanager="` + escapeLabelValue(ep.url) + `"`
	return &sender{
		n:            n,
		ep:           ep,
		wake:         make(chan struct{}, 1),
		urgent:       map[uint64]*state{},
		resend:       map[uint64]*state{},
		batch:        make([]*state, 0, maxBatch),
		mSuccess:     set.GetOrCreateCounter(`vantage_alerts_sent_total{` + am + `,result="success"}`),
		mFailure:     set.GetOrCreateCounter(`vantage_alerts_sent_total{` + am + `,result="failure"}`),
		mDropped:     set.GetOrCreateCounter(`vantage_alerts_sent_total{` + am + `,result="dropped"}`),
		mPending:     set.GetOrCreateGauge(`vantage_alerts_pending{`+am+`}`, nil),
		mLastSuccess: set.GetOrCreateGauge(`vantage_alertmanager_last_success_timestamp_seconds{`+am+`}`, nil),
	}
}

func (s *sender) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// apply queues changed states ahead of resends and drops forgotten alerts.
// Called with n.mu held.
func (s *sender) apply(changed []*state, forgotten []uint64) {
	s.mu.Lock()
	for _, fp := range forgotten {
		delete(s.urgent, fp)
		delete(s.resend, fp)
	}
	var dropped uint64
	for _, st := range changed {
		_, inUrgent := s.urgent[st.fp]
		_, inResend := s.resend[st.fp]
		if !inUrgent && !inResend && s.pendingLocked() >= s.n.cfg.MaxPending {
			dropped++
			continue
		}
		delete(s.resend, st.fp)
		s.urgent[st.fp] = st
	}
	s.dropped += dropped
	s.mPending.Set(float64(s.pendingLocked()))
	s.mu.Unlock()
	s.mDropped.Add(int(dropped))
	s.signal()
}

// queueAll queues every state of cur not already waiting. Called with n.mu
// held, so what waits is always the latest state: there is nothing to
// replace.
func (s *sender) queueAll(cur map[uint64]*state) {
	s.mu.Lock()
	var dropped uint64
	for fp, st := range cur {
		if _, ok := s.urgent[fp]; ok {
			continue
		}
		if _, ok := s.resend[fp]; ok {
			continue
		}
		if s.pendingLocked() >= s.n.cfg.MaxPending {
			dropped++
			continue
		}
		s.resend[fp] = st
	}
	s.dropped += dropped
	s.mPending.Set(float64(s.pendingLocked()))
	s.mu.Unlock()
	s.mDropped.Add(int(dropped))
	s.signal()
}

func (s *sender) pendingLocked() int { return len(s.urgent) + len(s.resend) }

// requestProbe asks for an empty POST unless alerts are pending (their
// POST answers the same question).
func (s *sender) requestProbe() {
	s.mu.Lock()
	s.probe = s.pendingLocked() == 0
	s.mu.Unlock()
	s.signal()
}

// healthy: the last request this Alertmanager answered was accepted.
func (s *sender) healthy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.lastSuccess.IsZero() && !s.lastSuccess.Before(s.lastErrAt)
}

// take fills batch with up to maxBatch waiting states, urgent ones first.
// They stay pending until an answer settles them (see settleLocked).
func (s *sender) take(batch []*state) []*state {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range [...]map[uint64]*state{s.urgent, s.resend} {
		for _, st := range m {
			if len(batch) == maxBatch {
				return batch
			}
			batch = append(batch, st)
		}
	}
	return batch
}

// settleLocked removes the states of batch that are still the latest of their
// alert: one that changed while the POST was out stays, and goes next.
func (s *sender) settleLocked(batch []*state) {
	for _, st := range batch {
		if s.urgent[st.fp] == st {
			delete(s.urgent, st.fp)
		} else if s.resend[st.fp] == st {
			delete(s.resend, st.fp)
		}
	}
	s.mPending.Set(float64(s.pendingLocked()))
}

type outcome int

const (
	idle      outcome = iota // nothing pending
	delivered                // 2xx
	rejected                 // 4xx other than 429: the batch is dropped
	failed                   // retry after a backoff
	aborted                  // ctx ended: not counted, the batch stays pending
)

// run sends until ctx ends, then flushes.
func (s *sender) run(ctx context.Context) {
	maxBackoff := min(s.n.cfg.ResendInterval, backoffCap)
	var backoff time.Duration
	for {
		select {
		case <-ctx.Done():
			s.flush(ctx)
			return
		case <-s.wake:
		}
	batches:
		for {
			switch s.sendBatch(ctx) {
			case delivered, rejected:
				backoff = 0
			case failed:
				// Changes arriving meanwhile do not cut the wait short: an
				// Alertmanager that is down would otherwise get a POST per
				// Update. They are in the pending set, and the retry sends
				// them in their latest state.
				backoff = min(max(2*backoff, backoffStart), maxBackoff)
				if mono.Sleep(ctx, backoff) != nil {
					break batches
				}
			default:
				break batches
			}
		}
	}
}

// flush makes a last attempt to deliver what is pending, bounded by
// Timeout, without retries: a shutdown must not hang on an Alertmanager
// that is down.
func (s *sender) flush(ctx context.Context) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.n.cfg.Timeout)
	defer cancel()
	for {
		if o := s.sendBatch(fctx); o != delivered && o != rejected {
			break
		}
	}
	s.mu.Lock()
	left := s.pendingLocked()
	s.mu.Unlock()
	if left > 0 {
		s.n.cfg.Logger.Warn("alerts not delivered to Alertmanager before shutdown",
			"alertmanager", s.ep.url, "pending", left)
	}
}

// sendBatch POSTs up to maxBatch pending alerts and settles them by the
// answer.
func (s *sender) sendBatch(ctx context.Context) outcome {
	s.batch = s.take(s.batch[:0])
	s.mu.Lock()
	probe := s.probe && len(s.batch) == 0
	s.probe = false
	s.mu.Unlock()
	if len(s.batch) == 0 && !probe {
		return idle
	}
	cfg := &s.n.cfg
	s.buf = appendBatch(s.buf[:0], s.batch, cfg.Now().Add(4*cfg.ResendInterval))
	if probe {
		// An empty list is a valid POST that changes nothing.
		permanent, err := s.post(ctx)
		s.mu.Lock()
		if err == nil {
			s.lastSuccess = cfg.Now()
		} else if ctx.Err() == nil {
			s.lastErr, s.lastErrAt = err.Error(), cfg.Now()
		}
		s.mu.Unlock()
		if err == nil || permanent || ctx.Err() != nil {
			return idle
		}
		s.n.cfg.Logger.Debug("alertmanager not reachable", "alertmanager", s.ep.url, "err", err)
		return idle
	}
	permanent, err := s.post(ctx)
	now := cfg.Now()
	n := uint64(len(s.batch))
	if err == nil {
		s.mu.Lock()
		s.settleLocked(s.batch)
		s.sent += n
		s.lastSuccess = now
		s.mu.Unlock()
		s.mSuccess.Add(len(s.batch))
		s.mLastSuccess.Set(float64(now.UnixNano()) / 1e9)
		for _, st := range s.batch {
			if st.delivered.CompareAndSwap(false, true) {
				s.n.delivery.Update(now.Sub(st.since).Seconds())
			}
		}
		clear(s.batch) // let superseded states go
		if s.failing > 0 {
			// Close the outage in the log, and let the next one be logged
			// at once.
			s.n.cfg.Logger.Info("alert delivery recovered", "alertmanager", s.ep.url, "failed_posts", s.failing)
			s.failing = 0
			s.limit = logLimiter{}
		}
		return delivered
	}
	if ctx.Err() != nil {
		clear(s.batch)
		return aborted
	}
	s.mu.Lock()
	if permanent {
		s.settleLocked(s.batch)
	}
	s.failed += n
	s.lastErr = err.Error()
	s.lastErrAt = now
	s.mu.Unlock()
	clear(s.batch)
	s.failing++
	s.mFailure.Add(int(n))
	if ok, suppressed := s.limit.allow(now); ok {
		level, msg := slog.LevelWarn, "alert delivery failed; retrying"
		if permanent {
			// A 4xx is a bug on our side or a misconfigured URL: retrying
			// the same request would fail the same way.
			level, msg = slog.LevelError, "alert delivery rejected; not retrying"
		}
		s.n.cfg.Logger.Log(ctx, level, msg, "alertmanager", s.ep.url, "alerts", n, "err", err, "suppressed", suppressed)
	}
	if permanent {
		return rejected
	}
	return failed
}

// appendBatch appends the JSON array of batch to b. Firing alerts end at
// firingEnd (now + 4 x ResendInterval, as Prometheus sends): if every agent
// dies the alert ends by itself, while a new leader re-sending within that
// time keeps it one continuous alert in Alertmanager (same labels, same
// startsAt: no second notification).
func appendBatch(b []byte, batch []*state, firingEnd time.Time) []byte {
	b = append(b, '[')
	for i, st := range batch {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, st.body...)
		b = append(b, `,"endsAt":"`...)
		end := st.endsAt
		if end.IsZero() {
			end = firingEnd
		}
		b = end.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, `"}`...)
	}
	return append(b, ']')
}

// post sends s.buf. permanent reports an error not worth retrying.
func (s *sender) post(ctx context.Context) (permanent bool, err error) {
	cfg := &s.n.cfg
	rctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	body := &reqBody{}
	body.r.Reset(s.buf)
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, s.ep.post, body)
	if err != nil {
		return true, fmt.Errorf("alertmanager %s: %w", s.ep.url, err)
	}
	defer func() {
		// A transport may close the body after Do returns (see
		// http.RoundTripper); reuse the buffer only if it is done with it.
		if !body.closed.Load() {
			s.buf = nil
		}
	}()
	req.ContentLength = int64(len(s.buf))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vantage")
	switch {
	case cfg.BasicAuthUser != "":
		req.SetBasicAuth(cfg.BasicAuthUser, cfg.BasicAuthPassword)
	case cfg.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+cfg.BearerToken)
	}
	resp, err := s.n.client.Do(req)
	if err != nil {
		// The error names the method and URL.
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		// Drain (a little) so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return false, nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, errBodyMax))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	err = fmt.Errorf("POST %s: %s: %s", s.ep.post, resp.Status, strings.TrimSpace(string(msg)))
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return false, err
	case resp.StatusCode/100 == 3:
		return true, fmt.Errorf("POST %s: %s: redirected to %q; configure that URL instead", s.ep.post, resp.Status, resp.Header.Get("Location"))
	default:
		return true, err
	}
}

// reqBody is a request body over a buffer that records when the transport
// has closed it, i.e. is done reading the buffer.
type reqBody struct {
	r      bytes.Reader
	closed atomic.Bool
}

func (b *reqBody) Read(p []byte) (int, error) { return b.r.Read(p) }
func (b *reqBody) Close() error               { b.closed.Store(true); return nil }

func (s *sender) status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Status{
		URL:         s.ep.url,
		Pending:     s.pendingLocked(),
		Sent:        s.sent,
		Failed:      s.failed,
		Dropped:     s.dropped,
		LastSuccess: s.lastSuccess,
		LastError:   s.lastErr,
		LastErrorAt: s.lastErrAt,
	}
}

// logLimiter lets one line through per logEvery and counts the rest.
type logLimiter struct {
	last       time.Time
	suppressed int
}

// allow reports whether a line may be logged now and, if so, how many were
// suppressed since the last one.
func (l *logLimiter) allow(now time.Time) (bool, int) {
	if !l.last.IsZero() && now.Sub(l.last) < logEvery {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return true, n
}

// escapeLabelValue escapes a Prometheus label value (backslash, quote,
// newline).
func escapeLabelValue(s string) string {
	if !strings.ContainsAny(s, "\\\"\n") {
		return s
	}
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}
