package amtest

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestServerRecordsNotificationsAndStops(t *testing.T) {
	s := StartForTest(t, Options{GroupBy: []string{"alertname"}})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	startsAt := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	body := `[{"labels":{"alertname":"Direct","target":"x"},"startsAt":"` + startsAt.Format(time.RFC3339Nano) + `"}]`
	resp, err := http.Post(s.URL()+"/api/v2/alerts", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST: %s", resp.Status)
	}
	alerts, err := s.WaitAlerts(ctx, func(as []ActiveAlert) bool { return len(as) == 1 })
	if err != nil {
		t.Fatal(err)
	}
	if a := alerts[0]; a.Labels["target"] != "x" || !a.StartsAt.Equal(startsAt) || a.Status.State != "active" || a.Fingerprint == "" {
		t.Errorf("alert %+v", a)
	}
	notes, err := s.WaitNotifications(ctx, func(ns []Notification) bool { return len(ns) > 0 })
	if err != nil {
		t.Fatal(err)
	}
	n := notes[0]
	if n.Status != "firing" || n.Receiver != "hook" || n.GroupLabels["alertname"] != "Direct" || len(n.Alerts) != 1 ||
		n.Alerts[0].Labels["target"] != "x" || !n.Alerts[0].StartsAt.Equal(startsAt) || n.Received.IsZero() {
		t.Errorf("notification %+v", n)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.exited:
	default:
		t.Fatal("Close returned with the process still running")
	}
	if _, err := s.Alerts(ctx); err == nil {
		t.Error("Alertmanager still answers after Close")
	}
}

func TestStartReportsAConfigAlertmanagerRejects(t *testing.T) {
	Need(t)
	s, err := Start(t.Context(), t.TempDir(), Options{InhibitRules: "- source_matchers: [\"not a matcher\"]\n"})
	if err == nil {
		s.Close()
		t.Fatal("Start succeeded with invalid inhibit_rules")
	}
	// The error carries Alertmanager's own complaint.
	if !strings.Contains(err.Error(), "Loading configuration file failed") {
		t.Errorf("error does not include Alertmanager's output: %v", err)
	}
}

func TestOptionsAreChecked(t *testing.T) {
	for _, o := range []Options{
		{GroupInterval: -time.Second},
		{RepeatInterval: time.Microsecond},
		{RoutePrefix: "am"},
		{RoutePrefix: "/am/"},
	} {
		if err := o.setDefaults(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	o := Options{InhibitRules: "- equal: [target]"}
	if err := o.setDefaults(); err != nil {
		t.Fatal(err)
	}
	cfg := o.config("http://127.0.0.1:1/hook")
	for _, want := range []string{`group_by: ["alertname", "target"]`, "group_wait: 200ms", "group_interval: 500ms", "repeat_interval: 3600000ms", "send_resolved: true", "inhibit_rules:\n- equal: [target]"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
}

// What package alertmanager relies on from Alertmanager's merge of a
// posted alert with the stored one, checked here so that a new
// Alertmanager version that changes it fails a test rather than a page.
func TestAlertmanagerMergeSemantics(t *testing.T) {
	s := StartForTest(t, Options{})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	start := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	post := func(target string, end time.Time) {
		t.Helper()
		body := `[{"labels":{"alertname":"M","target":"` + target + `"},"startsAt":"` + start.Format(time.RFC3339Nano) + `","endsAt":"` + end.UTC().Format(time.RFC3339Nano) + `"}]`
		resp, err := http.Post(s.URL()+"/api/v2/alerts", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST: %s", resp.Status)
		}
	}
	notes := func(n int) []Notification {
		t.Helper()
		got, err := s.WaitNotifications(ctx, func(ns []Notification) bool { return len(ns) >= n })
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	endOf := func(target string) time.Time {
		t.Helper()
		as, err := s.Alerts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if a.Labels["target"] == target {
				return a.EndsAt
			}
		}
		t.Fatalf("%s not active: %+v", target, as)
		return time.Time{}
	}

	// A firing post with an earlier end than the stored one does not
	// shorten it: only a resolve (an end not after now) ends an alert early.
	far := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	post("d", far)
	notes(1)
	post("d", time.Now().Add(time.Minute))
	if got := endOf("d"); !got.Equal(far) {
		t.Errorf("end after an earlier firing end was posted: %v, want the stored %v", got, far)
	}
	post("d", time.Now())
	if got := notes(2); got[1].Status != "resolved" {
		t.Fatalf("resolving: %+v", got[1])
	}

	// Firing again after the end, with the same start: a new alert, paged
	// again.
	post("d", time.Now().Add(time.Minute))
	got := notes(3)
	if got[2].Status != "firing" || !got[2].Alerts[0].StartsAt.Equal(start) {
		t.Errorf("firing after resolved: %+v, want a new firing notification with the same start", got[2])
	}
}
