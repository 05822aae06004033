package alertmanager

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/vantage-probe/vantage/exporter/alertmanager/amtest"
)

// The life of one alert against a real Alertmanager: fired, kept alive by
// resends without a second page, resolved with a resolved notification.
func TestFiringResendAndResolveInAlertmanager(t *testing.T) {
	opts := amtest.Options{}
	am := amtest.StartForTest(t, opts)
	set := metrics.NewSet()
	const resend = 300 * time.Millisecond
	n, _ := newNotifier(t, Config{
		URLs:           []string{am.URL()},
		ResendInterval: resend,
		// target is set by the alert: the external label must not win.
		ExternalLabels: map[string]string{"fleet": "eu", "target": "not-this"},
		Metrics:        set,
	})
	startsAt := ms(time.Now().Add(-3 * time.Second))
	a := down("web", startsAt)
	a.GeneratorURL = "http://vantage-1:9115/targets/web"
	update(t, n, a)
	start(t, n)
	ctx := waitCtx(t)

	want := map[string]string{"alertname": "VantageTargetDown", "target": "web", "severity": "page", "fleet": "eu"}
	got, err := am.WaitAlerts(ctx, func(as []amtest.ActiveAlert) bool { return len(as) > 0 })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("Alertmanager holds %d alerts, want 1: %+v", len(got), got)
	}
	g := got[0]
	if !maps.Equal(g.Labels, want) {
		t.Errorf("labels in Alertmanager %v, want %v (ExternalLabels added unless the alert sets them)", g.Labels, want)
	}
	if !g.StartsAt.Equal(startsAt) {
		t.Errorf("startsAt in Alertmanager %v, want ours %v", g.StartsAt, startsAt)
	}
	if g.Status.State != "active" || g.Annotations["summary"] != "web is down" || g.GeneratorURL != a.GeneratorURL {
		t.Errorf("alert in Alertmanager: state %q, annotations %v, generatorURL %q", g.Status.State, g.Annotations, g.GeneratorURL)
	}
	if fp := fmt.Sprintf("%016x", Fingerprint(want)); g.Fingerprint != fp {
		t.Errorf("Alertmanager's fingerprint %s, ours %s: they must agree", g.Fingerprint, fp)
	}
	if lo, hi := time.Now(), time.Now().Add(4*resend+time.Second); g.EndsAt.Before(lo) || g.EndsAt.After(hi) {
		t.Errorf("endsAt of a firing alert %v, want about now + 4 x ResendInterval (%v..%v)", g.EndsAt, lo, hi)
	}

	notes, err := am.WaitNotifications(ctx, func(ns []amtest.Notification) bool { return len(ns) > 0 })
	if err != nil {
		t.Fatal(err)
	}
	if notes[0].Status != "firing" || len(notes[0].Alerts) != 1 || !maps.Equal(notes[0].Alerts[0].Labels, want) {
		t.Fatalf("first notification %+v, want our alert firing", notes[0])
	}

	// Resends keep it one alert: its end moves ahead, its start does not,
	// and nobody is paged again.
	sent := n.Status()[0].Sent
	poll(t, "three resends", func() bool { return n.Status()[0].Sent >= sent+3 })
	got, err = am.WaitAlerts(ctx, func(as []amtest.ActiveAlert) bool { return len(as) == 1 && as[0].EndsAt.After(g.EndsAt) })
	if err != nil {
		t.Fatal(err)
	}
	if !got[0].StartsAt.Equal(startsAt) {
		t.Errorf("startsAt after resends %v, want %v", got[0].StartsAt, startsAt)
	}
	// Alertmanager flushes a group every GroupInterval: watch two.
	observe(t, 2*500*time.Millisecond)
	if notes := am.Notifications(); len(notes) != 1 {
		t.Fatalf("%d notifications after resends, want 1: %+v", len(notes), notes)
	}

	endsAt := ms(time.Now())
	a.EndsAt = endsAt
	update(t, n, a)
	if _, err := am.WaitAlerts(ctx, func(as []amtest.ActiveAlert) bool { return len(as) == 0 }); err != nil {
		t.Fatalf("resolved alert still active: %v", err)
	}
	notes, err = am.WaitNotifications(ctx, func(ns []amtest.Notification) bool { return len(ns) >= 2 })
	if err != nil {
		t.Fatal(err)
	}
	r := notes[1]
	if len(notes) != 2 || r.Status != "resolved" || len(r.Alerts) != 1 || r.Alerts[0].Status != "resolved" ||
		!r.Alerts[0].EndsAt.Equal(endsAt) || !r.Alerts[0].StartsAt.Equal(startsAt) {
		t.Fatalf("notifications %+v, want the second resolved with endsAt %v", notes, endsAt)
	}

	url := am.URL()
	text := metricsText(set)
	st := n.Status()[0]
	for series, want := range map[string]float64{
		// One observation per state: the firing one and the resolved one;
		// resends are not deliveries of a new state.
		`vantage_alert_delivery_seconds_count`:                      2,
		sentSeries(url, "success"):                                  float64(st.Sent),
		sentSeries(url, "failure"):                                  0,
		sentSeries(url, "dropped"):                                  0,
		fmt.Sprintf(`vantage_alerts_pending{alertmanager=%q}`, url): float64(st.Pending),
	} {
		if got := metricValue(text, series); got != want {
			t.Errorf("%s = %v, want %v\n%s", series, got, want, text)
		}
	}
	if v := metricValue(text, fmt.Sprintf(`vantage_alertmanager_last_success_timestamp_seconds{alertmanager=%q}`, url)); v < float64(startsAt.Unix()) {
		t.Errorf("last success timestamp %v, want a recent time", v)
	}
	if st.LastSuccess.IsZero() || st.LastError != "" || st.Failed != 0 {
		t.Errorf("status %+v, want successes only", st)
	}
}

// Every alert goes to each Alertmanager, and one that hangs, then fails,
// delays no other; it gets the alerts once it recovers.
func TestEveryAlertmanagerGetsEveryAlertDespiteOneDown(t *testing.T) {
	am1 := amtest.StartForTest(t, amtest.Options{})
	am2 := amtest.StartForTest(t, amtest.Options{RoutePrefix: "/am"})
	release := make(chan struct{})
	var healthy atomic.Bool
	fake := startFake(t, func(ctx context.Context, i int) int {
		if healthy.Load() {
			return http.StatusOK
		}
		if i == 1 {
			// The first POST hangs: a sender shared with the others would
			// now hold them all up.
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return http.StatusServiceUnavailable
	})
	set := metrics.NewSet()
	// The failing one first: delivering in URL order would block on it.
	n, logs := newNotifier(t, Config{
		URLs:           []string{fake.URL, am1.URL(), am2.URL()},
		ResendInterval: time.Hour, // no resend tick: what the fake gets comes from retries
		Metrics:        set,
	})
	startsAt := ms(time.Now().Add(-time.Minute))
	var alerts []Alert
	for i := range 100 {
		alerts = append(alerts, down(fmt.Sprintf("t%03d", i), startsAt))
	}
	update(t, n, alerts...)
	start(t, n)
	ctx := waitCtx(t)

	for _, am := range []*amtest.Server{am1, am2} {
		if _, err := am.WaitAlerts(ctx, func(as []amtest.ActiveAlert) bool { return len(as) == 100 }); err != nil {
			t.Fatalf("%s: %v", am.URL(), err)
		}
	}
	for _, r := range fake.requests() {
		if r.Status != 0 {
			t.Fatalf("the hanging Alertmanager answered (%d, %d alerts) before the others had every alert", r.Status, len(r.Alerts))
		}
	}
	poll(t, "the first POST to reach the hanging Alertmanager", func() bool { return len(fake.requests()) == 1 })

	close(release)
	poll(t, "three failed POSTs (retries with backoff)", func() bool {
		reqs, _ := fake.answered(http.StatusServiceUnavailable)
		return len(reqs) >= 3
	})
	healthy.Store(true)
	poll(t, "the recovered Alertmanager to get every alert", func() bool {
		_, n := fake.answered(http.StatusOK)
		return n >= 100
	})
	got := map[string]bool{}
	oks, okAlerts := fake.answered(http.StatusOK)
	for _, r := range oks {
		for _, a := range r.Alerts {
			got[a.Labels["target"]] = true
		}
	}
	if len(got) != 100 || okAlerts != 100 {
		t.Errorf("recovered Alertmanager got %d alerts for %d targets, want each of 100 once", okAlerts, len(got))
	}
	for _, r := range fake.requests() {
		if r.Err != nil || len(r.Alerts) > maxBatch || r.Path != "/api/v2/alerts" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("POST %s with %d alerts, Content-Type %q, decode error %v", r.Path, len(r.Alerts), r.Header.Get("Content-Type"), r.Err)
		}
	}

	// Failures are counted per alert per failed POST.
	_, failedAlerts := fake.answered(http.StatusServiceUnavailable)
	poll(t, "the counters to catch up with the answers", func() bool {
		st := n.Status()[0]
		return st.Sent == 100 && st.Failed == uint64(failedAlerts) && st.Pending == 0
	})
	text := metricsText(set)
	for series, want := range map[string]float64{
		sentSeries(fake.URL, "failure"):  float64(failedAlerts),
		sentSeries(fake.URL, "success"):  100,
		sentSeries(am1.URL(), "success"): 100,
		sentSeries(am2.URL(), "success"): 100,
		sentSeries(am1.URL(), "failure"): 0,
		// Each alert's one state is observed once, at its first 2xx.
		`vantage_alert_delivery_seconds_count`: 100,
	} {
		if got := metricValue(text, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if st := n.Status()[0]; st.LastErrorAt.IsZero() || !containsAll(st.LastError, "503", fake.URL) {
		t.Errorf("status of the failing Alertmanager %+v: want its last error naming the 503 and the URL", st)
	}
	// Every failure happened within seconds: one log line for them all.
	if lines := logs.lines("alert delivery failed", fake.URL); len(lines) != 1 {
		t.Errorf("%d log lines for the failing Alertmanager, want 1 (rate-limited): %q", len(lines), lines)
	}
}

// Forgetting an alert (another agent leads the target now) sends nothing:
// Alertmanager keeps it active until the end last sent, then it ends by
// itself.
func TestForgottenAlertIsNotResolved(t *testing.T) {
	am := amtest.StartForTest(t, amtest.Options{})
	const resend = 250 * time.Millisecond
	n, _ := newNotifier(t, Config{URLs: []string{am.URL()}, ResendInterval: resend})
	update(t, n, down("web", ms(time.Now().Add(-time.Minute))))
	start(t, n)
	ctx := waitCtx(t)
	if _, err := am.WaitNotifications(ctx, func(ns []amtest.Notification) bool { return len(ns) > 0 }); err != nil {
		t.Fatal(err)
	}
	poll(t, "a resend", func() bool { return n.Status()[0].Sent >= 2 })

	forgotAt := time.Now()
	update(t, n)
	sent := n.Status()[0].Sent
	got, err := am.Alerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Status.State != "active" {
		t.Fatalf("right after forgetting, Alertmanager holds %+v, want the alert still active", got)
	}
	notes, err := am.WaitNotifications(ctx, func(ns []amtest.Notification) bool { return len(ns) >= 2 })
	if err != nil {
		t.Fatalf("the forgotten alert never ended by itself: %v", err)
	}
	r := notes[1]
	if r.Status != "resolved" || len(r.Alerts) != 1 {
		t.Fatalf("second notification %+v, want the alert resolved", r)
	}
	// The last send before forgetting was at most one resend interval
	// earlier and said "ends 4 intervals later": the alert ended at least
	// 3 intervals after it was forgotten. Resolving it on forgetting would
	// have ended it then.
	end := r.Alerts[0].EndsAt
	if end.Before(forgotAt.Add(2*resend)) || end.After(forgotAt.Add(4*resend+time.Second)) {
		t.Errorf("forgotten alert ended at %v, %v after it was forgotten; want 3-4 resend intervals (%v) after", end, end.Sub(forgotAt), resend)
	}
	if r.Received.Before(end) {
		t.Errorf("resolved notification at %v, before the alert's end %v", r.Received, end)
	}
	// A POST in flight when it was forgotten may complete; nothing after.
	if s := n.Status()[0]; s.Sent > sent+1 || s.Pending != 0 {
		t.Errorf("after forgetting: sent %d -> %d, pending %d; want nothing more sent", sent, s.Sent, s.Pending)
	}
}

// A hand-over: agent A fires the alert, then another agent, B, leads the
// target and sends the same alert with the same start. Alertmanager sees
// one alert and pages once, even after A's last end has passed.
func TestHandOverKeepsOneAlert(t *testing.T) {
	am := amtest.StartForTest(t, amtest.Options{})
	const resend = 250 * time.Millisecond
	startsAt := ms(time.Now().Add(-time.Minute))
	ctx := waitCtx(t)

	a, _ := newNotifier(t, Config{URLs: []string{am.URL()}, ResendInterval: resend})
	update(t, a, down("web", startsAt))
	stopA := start(t, a)
	if _, err := am.WaitNotifications(ctx, func(ns []amtest.Notification) bool { return len(ns) > 0 }); err != nil {
		t.Fatal(err)
	}
	update(t, a) // A no longer leads the target...
	stopA()      // ...and then stops altogether.
	got, err := am.Alerts(ctx)
	if err != nil || len(got) != 1 {
		t.Fatalf("after A: %+v, %v", got, err)
	}
	endA := got[0].EndsAt

	b, _ := newNotifier(t, Config{URLs: []string{am.URL()}, ResendInterval: resend})
	update(t, b, down("web", startsAt))
	start(t, b)
	// Past A's end (plus two group intervals for Alertmanager to act on
	// it), with B resending all along.
	poll(t, "A's end to pass while B resends", func() bool {
		return time.Now().After(endA.Add(2*500*time.Millisecond)) && b.Status()[0].Sent >= 3
	})
	got, err = am.Alerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].StartsAt.Equal(startsAt) || !got[0].EndsAt.After(endA) || got[0].Status.State != "active" {
		t.Fatalf("after the hand-over Alertmanager holds %+v; want one active alert, startsAt %v, ending after A's end %v", got, startsAt, endA)
	}
	if notes := am.Notifications(); len(notes) != 1 || notes[0].Status != "firing" {
		t.Fatalf("notifications %+v, want exactly one, firing", notes)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
