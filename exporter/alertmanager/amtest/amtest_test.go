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
