package alertmanager

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/vantage-probe/vantage/probe/probetest"
)

// A 400 rejects the batch for good: it is counted and logged, and the next
// POST carries only what changed since, not the rejected alert again.
func TestBadRequestIsNotRetried(t *testing.T) {
	fake := startFake(t, func(_ context.Context, i int) int {
		if i == 1 {
			return http.StatusBadRequest
		}
		return http.StatusOK
	})
	set := metrics.NewSet()
	n, logs := newNotifier(t, Config{URLs: []string{fake.URL}, ResendInterval: time.Hour, Metrics: set})
	startsAt := time.Now().Add(-time.Minute)
	update(t, n, down("a", startsAt))
	start(t, n)
	poll(t, "the rejection to be counted", func() bool { return n.Status()[0].Failed == 1 })
	if st := n.Status()[0]; st.Pending != 0 || !containsAll(st.LastError, "400", "fake says 400") {
		t.Fatalf("after a 400: %+v; want nothing pending and the answer in the error", st)
	}
	update(t, n, down("a", startsAt), down("b", startsAt))
	poll(t, "a second POST", func() bool {
		reqs := fake.requests()
		return len(reqs) == 2 && reqs[1].Status != 0
	})
	if r := fake.requests()[1]; len(r.Alerts) != 1 || r.Alerts[0].Labels["target"] != "b" {
		t.Fatalf("second POST carried %+v; want only the new alert b, not a retry of a", r.Alerts)
	}
	if v := metricValue(metricsText(set), sentSeries(fake.URL, "failure")); v != 1 {
		t.Errorf("failure counter %v, want 1", v)
	}
	if lines := logs.lines("level=ERROR", "rejected", "400"); len(lines) != 1 {
		t.Errorf("log lines for the 400: %q", lines)
	}
}

// 429 and 5xx are retried; the retry delivers.
func TestTooManyRequestsIsRetried(t *testing.T) {
	fake := startFake(t, func(_ context.Context, i int) int {
		if i == 1 {
			return http.StatusTooManyRequests
		}
		return http.StatusOK
	})
	n, _ := newNotifier(t, Config{URLs: []string{fake.URL}, ResendInterval: time.Hour})
	update(t, n, down("a", time.Now()))
	start(t, n)
	poll(t, "delivery", func() bool { return n.Status()[0].Sent == 1 })
	reqs := fake.requests()
	if len(reqs) != 2 || reqs[1].Status != http.StatusOK || len(reqs[1].Alerts) != 1 || reqs[1].Alerts[0].Labels["target"] != "a" {
		t.Fatalf("requests %+v; want the 429'd alert retried once", reqs)
	}
}

// The pending set holds at most MaxPending distinct alerts; new ones beyond
// are dropped and counted, a newer state of a waiting alert is not a new
// alert, and the next resend tick gets the dropped ones through.
func TestMaxPendingDropsNewAlertsOnly(t *testing.T) {
	fake := startFake(t, always(http.StatusOK))
	set := metrics.NewSet()
	const resend = 200 * time.Millisecond
	n, _ := newNotifier(t, Config{URLs: []string{fake.URL}, MaxPending: 5, ResendInterval: resend, Metrics: set})
	startsAt := time.Now().Add(-time.Minute)
	var alerts []Alert
	for i := range 8 {
		alerts = append(alerts, down(fmt.Sprintf("t%d", i), startsAt))
	}
	update(t, n, alerts...) // before Run: nothing is sent yet
	if st := n.Status()[0]; st.Pending != 5 || st.Dropped != 3 {
		t.Fatalf("8 alerts, MaxPending 5: %+v; want 5 pending, 3 dropped", st)
	}
	// Every alert changes: the 5 waiting are replaced, the 3 others are
	// new again and dropped again.
	for i := range alerts {
		alerts[i].Annotations = map[string]string{"summary": "changed"}
	}
	update(t, n, alerts...)
	text := metricsText(set)
	if st := n.Status()[0]; st.Pending != 5 || st.Dropped != 6 {
		t.Fatalf("after a change to all 8: %+v; want 5 pending, 6 dropped", st)
	}
	if v := metricValue(text, sentSeries(fake.URL, "dropped")); v != 6 {
		t.Errorf("dropped counter %v, want 6", v)
	}
	if v := metricValue(text, fmt.Sprintf(`vantage_alerts_pending{alertmanager=%q}`, fake.URL)); v != 5 {
		t.Errorf("pending gauge %v, want 5", v)
	}

	start(t, n)
	poll(t, "all 8 alerts delivered, the dropped ones by a resend tick", func() bool {
		seen := map[string]bool{}
		for _, r := range fake.requests() {
			for _, a := range r.Alerts {
				if a.Annotations["summary"] == "changed" {
					seen[a.Labels["target"]] = true
				}
			}
		}
		return len(seen) == 8
	})
	if r := fake.requests()[0]; len(r.Alerts) != 5 {
		t.Errorf("first POST carried %d alerts, want the 5 pending", len(r.Alerts))
	}
}

// An alert that changes while its POST is failing is retried in its latest
// state; the superseded state is never sent again.
func TestLatestStateWinsWhileFailing(t *testing.T) {
	inFlight := make(chan struct{})
	release := make(chan struct{})
	fake := startFake(t, func(ctx context.Context, i int) int {
		if i > 1 {
			return http.StatusOK
		}
		close(inFlight)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return http.StatusServiceUnavailable
	})
	set := metrics.NewSet()
	n, _ := newNotifier(t, Config{URLs: []string{fake.URL}, ResendInterval: time.Hour, Metrics: set})
	startsAt := ms(time.Now().Add(-time.Minute))
	a, b := down("a", startsAt), down("b", startsAt)
	update(t, n, a, b)
	start(t, n)
	select {
	case <-inFlight:
	case <-waitCtx(t).Done():
		t.Fatal("no POST")
	}
	// While the first POST (both firing) hangs: a resolves, b's summary
	// changes.
	endsAt := ms(time.Now())
	a.EndsAt = endsAt
	b.Annotations = map[string]string{"summary": "b is still down"}
	update(t, n, a, b)
	close(release)
	poll(t, "the retry to be answered", func() bool {
		reqs := fake.requests()
		return len(reqs) >= 2 && reqs[1].Status != 0
	})
	poll(t, "nothing pending", func() bool { return n.Status()[0].Pending == 0 })
	reqs := fake.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d POSTs, want the failed one and one retry: %+v", len(reqs), reqs)
	}
	got := map[string]postedAlert{}
	for _, p := range reqs[1].Alerts {
		got[p.Labels["target"]] = p
	}
	if len(got) != 2 || !got["a"].EndsAt.Equal(endsAt) || got["b"].Annotations["summary"] != "b is still down" {
		t.Fatalf("retry carried %+v; want a resolved at %v and b's new summary", reqs[1].Alerts, endsAt)
	}
	if !got["b"].EndsAt.After(time.Now()) {
		t.Errorf("firing b posted with endsAt %v, want it in the future", got["b"].EndsAt)
	}
	// Only the latest states were delivered, once each.
	if v := metricValue(metricsText(set), `vantage_alert_delivery_seconds_count`); v != 2 {
		t.Errorf("delivery histogram count %v, want 2", v)
	}
}

// An alert that changes while a POST of its previous state succeeds is
// sent again, in its new state: the answer settles only what was sent.
func TestChangeDuringSuccessfulPostIsSentNext(t *testing.T) {
	inFlight := make(chan struct{})
	release := make(chan struct{})
	fake := startFake(t, func(ctx context.Context, i int) int {
		if i == 1 {
			close(inFlight)
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return http.StatusOK
	})
	n, _ := newNotifier(t, Config{URLs: []string{fake.URL}, ResendInterval: time.Hour})
	a := down("a", ms(time.Now().Add(-time.Minute)))
	update(t, n, a)
	start(t, n)
	select {
	case <-inFlight:
	case <-waitCtx(t).Done():
		t.Fatal("no POST")
	}
	a.EndsAt = ms(time.Now())
	update(t, n, a)
	close(release)
	poll(t, "the new state delivered", func() bool {
		reqs := fake.requests()
		return len(reqs) == 2 && reqs[1].Status == http.StatusOK
	})
	if r := fake.requests()[1]; len(r.Alerts) != 1 || !r.Alerts[0].EndsAt.Equal(a.EndsAt) {
		t.Fatalf("second POST %+v, want a resolved at %v", r.Alerts, a.EndsAt)
	}
}

// A state superseded before it could be sent is never sent.
func TestSupersededStateIsNeverSent(t *testing.T) {
	fake := startFake(t, always(http.StatusOK))
	n, _ := newNotifier(t, Config{URLs: []string{fake.URL}, ResendInterval: time.Hour})
	startsAt := ms(time.Now().Add(-time.Minute))
	a := down("a", startsAt)
	update(t, n, a)
	a.Annotations = map[string]string{"summary": "second"}
	update(t, n, a)
	a.EndsAt = ms(time.Now())
	update(t, n, a)
	start(t, n)
	poll(t, "delivery", func() bool { return n.Status()[0].Sent == 1 })
	reqs := fake.requests()
	if len(reqs) != 1 || len(reqs[0].Alerts) != 1 {
		t.Fatalf("requests %+v, want one POST with one alert", reqs)
	}
	if p := reqs[0].Alerts[0]; !p.EndsAt.Equal(a.EndsAt) || p.Annotations["summary"] != "second" {
		t.Fatalf("posted %+v, want only the last state (resolved, summary second)", p)
	}
}

// Run returns soon after its context ends, even with a POST hanging, and
// leaves no goroutine behind.
func TestRunStopsPromptlyWithoutLeaks(t *testing.T) {
	hung := make(chan struct{}, 1)
	fake := startFake(t, func(ctx context.Context, _ int) int {
		select {
		case hung <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return http.StatusServiceUnavailable
	})
	ok := startFake(t, always(http.StatusOK))
	before := runtime.NumGoroutine()

	const timeout = time.Second
	n, _ := newNotifier(t, Config{URLs: []string{fake.URL, ok.URL}, Timeout: timeout, ResendInterval: 50 * time.Millisecond})
	update(t, n, down("a", time.Now()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Run(ctx)
	}()
	<-hung
	poll(t, "a few resends to the healthy one", func() bool { return n.Status()[1].Sent >= 3 })
	cancel()
	stopped := time.Now()
	select {
	case <-done:
	case <-time.After(timeout + 5*time.Second):
		t.Fatal("Run did not return")
	}
	// The in-flight POST is abandoned at once; the final flush may wait
	// up to Timeout for the hanging Alertmanager.
	if d := time.Since(stopped); d > timeout+time.Second {
		t.Errorf("Run took %v to return, want at most Timeout (%v) and a little", d, timeout)
	}
	poll(t, "the goroutine count to return to where it was", func() bool { return runtime.NumGoroutine() <= before })
}

// A down Alertmanager fails every retry; the log gets one line per 10 s
// with a count of the lines it suppressed.
func TestDeliveryErrorsAreRateLimitedInTheLog(t *testing.T) {
	fake := startFake(t, always(http.StatusServiceUnavailable))
	var skew atomic.Int64 // the test's clock runs ahead of the real one by this
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	n, logs := newNotifier(t, Config{URLs: []string{fake.URL}, ResendInterval: 100 * time.Millisecond, Now: now})
	update(t, n, down("a", time.Now()))
	start(t, n)
	poll(t, "5 failures", func() bool { return n.Status()[0].Failed >= 5 })
	if lines := logs.lines("alert delivery failed"); len(lines) != 1 || !strings.Contains(lines[0], "suppressed=0") {
		t.Fatalf("log after 5 failures in well under 10s: %q; want one line", lines)
	}
	skew.Store(int64(11 * time.Second))
	// The failure is counted before its log line is written: wait for the
	// line, not the count.
	poll(t, "a second log line after 10s", func() bool { return len(logs.lines("alert delivery failed")) >= 2 })
	lines := logs.lines("alert delivery failed")
	if len(lines) != 2 {
		t.Fatalf("log lines %q; want a second one after 10s", lines)
	}
	if strings.Contains(lines[1], "suppressed=0 ") || !strings.Contains(lines[1], "suppressed=") {
		t.Errorf("second line %q; want the count of suppressed lines", lines[1])
	}
}

// The end of an outage is logged once, and the next outage's first error
// is logged at once, not 10 s after the previous line.
func TestRecoveryIsLoggedAndResetsTheLimit(t *testing.T) {
	var healthy atomic.Bool
	fake := startFake(t, func(context.Context, int) int {
		if healthy.Load() {
			return http.StatusOK
		}
		return http.StatusBadGateway
	})
	n, logs := newNotifier(t, Config{URLs: []string{fake.URL}, ResendInterval: 100 * time.Millisecond})
	update(t, n, down("a", time.Now()))
	start(t, n)
	poll(t, "3 failures", func() bool { return n.Status()[0].Failed >= 3 })
	healthy.Store(true)
	poll(t, "the recovery in the log", func() bool { return len(logs.lines("alert delivery recovered")) == 1 })
	healthy.Store(false)
	poll(t, "the second outage in the log", func() bool { return len(logs.lines("alert delivery failed", "502")) == 2 })
	if lines := logs.lines("alert delivery recovered"); len(lines) != 1 || strings.Contains(lines[0], "failed_posts=0") {
		t.Errorf("recovery lines %q", lines)
	}
}

// TLS with a private CA, and each kind of credentials, reach the server.
func TestTLSAndCredentials(t *testing.T) {
	ca, err := probetest.NewCA("alertmanager-test")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Leaf(probetest.Days(1), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	var auth atomic.Value
	srv, err := probetest.StartHTTPS(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Get("Authorization"))
	}), cert)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })

	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"basic", Config{BasicAuthUser: "vantage", BasicAuthPassword: "s3cret"}, "Basic dmFudGFnZTpzM2NyZXQ="},
		{"bearer", Config{BearerToken: "t0ken"}, "Bearer t0ken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth.Store("")
			tc.cfg.URLs = []string{srv.URL}
			tc.cfg.TLS = &tls.Config{RootCAs: ca.Pool()}
			n, _ := newNotifier(t, tc.cfg)
			update(t, n, down("a", time.Now()))
			start(t, n)
			poll(t, "delivery over TLS", func() bool { return n.Status()[0].Sent == 1 })
			if got := auth.Load(); got != tc.want {
				t.Errorf("Authorization %q, want %q", got, tc.want)
			}
		})
	}

	// Without the CA the certificate is refused, and the error says so.
	n, _ := newNotifier(t, Config{URLs: []string{srv.URL}})
	update(t, n, down("a", time.Now()))
	start(t, n)
	poll(t, "a failure", func() bool { return n.Status()[0].Failed > 0 })
	if st := n.Status()[0]; !strings.Contains(st.LastError, "certificate") {
		t.Errorf("error %q, want it to name the certificate problem", st.LastError)
	}
}

// A redirect is not followed (net/http would turn the POST into a GET,
// which Alertmanager answers 200): it is a permanent error naming where to.
func TestRedirectIsReportedNotFollowed(t *testing.T) {
	var gets atomic.Int64
	srv := startFake(t, always(http.StatusOK))
	redir, err := probetest.StartHTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			gets.Add(1)
		}
		http.Redirect(w, r, srv.URL+r.URL.Path, http.StatusMovedPermanently)
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = redir.Close() })
	n, _ := newNotifier(t, Config{URLs: []string{redir.URL}})
	update(t, n, down("a", time.Now()))
	start(t, n)
	poll(t, "the failure", func() bool { return n.Status()[0].Failed == 1 })
	if st := n.Status()[0]; !containsAll(st.LastError, "301", srv.URL+"/api/v2/alerts") || st.Sent != 0 {
		t.Errorf("status %+v; want a failure naming the redirect target", st)
	}
	if gets.Load() != 0 || len(srv.requests()) != 0 {
		t.Error("the redirect was followed")
	}
}

// Without a logger or a metrics set, delivery works and is counted all
// the same.
func TestNilLoggerAndMetricsAreFine(t *testing.T) {
	fake := startFake(t, always(http.StatusServiceUnavailable))
	n, err := New(Config{URLs: []string{fake.URL}, Logger: nil, Metrics: nil})
	if err != nil {
		t.Fatal(err)
	}
	update(t, n, down("a", time.Now()))
	start(t, n)
	poll(t, "a failure", func() bool { return n.Status()[0].Failed > 0 })
}

// An Alertmanager nobody listens for (connection refused) is retried and
// counted, and delays no other.
func TestUnreachableAlertmanagerIsRetried(t *testing.T) {
	ok := startFake(t, always(http.StatusOK))
	gone := startFake(t, always(http.StatusOK))
	goneURL := gone.URL
	if err := gone.Close(); err != nil { // its port now refuses connections
		t.Fatal(err)
	}
	n, _ := newNotifier(t, Config{URLs: []string{goneURL, ok.URL}, ResendInterval: time.Hour})
	update(t, n, down("a", time.Now()))
	start(t, n)
	poll(t, "delivery to the live one and retries to the gone one", func() bool {
		st := n.Status()
		return st[1].Sent == 1 && st[0].Failed >= 3
	})
	if st := n.Status()[0]; st.Sent != 0 || st.Pending != 1 || !strings.Contains(st.LastError, "connection refused") {
		t.Errorf("status of the unreachable one %+v; want the alert pending and the refusal in the error", st)
	}
}

// TestHealthyFollowsTheLastAnswer: a quiet notifier still probes its
// Alertmanagers (an empty POST at start and every resend interval), so
// Healthy is true before the first alert while one accepts, false once none
// does, and true again after it recovers; a second, working Alertmanager
// keeps it true.
func TestHealthyFollowsTheLastAnswer(t *testing.T) {
	var up atomic.Bool
	up.Store(true)
	fake := startFake(t, func(context.Context, int) int {
		if up.Load() {
			return http.StatusOK
		}
		return http.StatusServiceUnavailable
	})
	n, _ := newNotifier(t, Config{URLs: []string{fake.URL}, ResendInterval: 100 * time.Millisecond})
	if n.Healthy() {
		t.Fatal("healthy before any request was answered")
	}
	defer start(t, n)()
	poll(t, "healthy after the first empty probe", n.Healthy)
	if reqs := fake.requests(); len(reqs) == 0 || len(reqs[0].Alerts) != 0 || reqs[0].Err != nil {
		t.Fatalf("requests %+v, want an empty list first", reqs)
	}
	up.Store(false)
	poll(t, "unhealthy once Alertmanager refuses", func() bool { return !n.Healthy() })
	up.Store(true)
	poll(t, "healthy again after it recovers", n.Healthy)

	other := startFake(t, func(context.Context, int) int { return http.StatusOK })
	n2, _ := newNotifier(t, Config{URLs: []string{fake.URL, other.URL}, ResendInterval: 100 * time.Millisecond})
	up.Store(false)
	defer start(t, n2)()
	poll(t, "healthy with one of two Alertmanagers up", n2.Healthy)
}
