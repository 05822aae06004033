package alertmanager

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Values read from Alertmanager 0.25's GET /api/v2/alerts: our fingerprint
// must be its fingerprint.
func TestFingerprintIsAlertmanagers(t *testing.T) {
	for _, tc := range []struct {
		labels map[string]string
		want   string
	}{
		{map[string]string{"alertname": "q"}, "d222efc38952f4d7"},
		{map[string]string{"alertname": "z"}, "d23aefc3896786b8"},
		// Empty values are absent, in Alertmanager too.
		{map[string]string{"alertname": "z", "empty": ""}, "d23aefc3896786b8"},
	} {
		if got := fmt.Sprintf("%016x", Fingerprint(tc.labels)); got != tc.want {
			t.Errorf("Fingerprint(%v) = %s, want %s", tc.labels, got, tc.want)
		}
	}
	if Fingerprint(map[string]string{"a": "bc"}) == Fingerprint(map[string]string{"ab": "c"}) {
		t.Error("the separator does not separate")
	}
}

// What we encode by hand is what encoding/json reads back, for every kind
// of character a label may hold.
func TestEncodingRoundTrips(t *testing.T) {
	tricky := "quote\" backslash\\ newline\n tab\t cr\r nul\x00 bell\x07 del\x7f é ✓ 😀 \u2028\u2029 </script>&"
	startsAt := time.Date(2026, 3, 1, 12, 30, 45, 123456789, time.FixedZone("X", 3600))
	endsAt := startsAt.Add(90 * time.Second)
	a := Alert{
		Labels:       map[string]string{"alertname": "A", "target": tricky, "_x9": "v", "empty": ""},
		Annotations:  map[string]string{"summary": tricky, "description": ""},
		StartsAt:     startsAt,
		EndsAt:       endsAt,
		GeneratorURL: "http://vantage:9115/t?name=a&b=\"c\"",
	}
	e := encoder{external: map[string]string{"fleet": "eu", "target": "overridden"}}
	fp, err := e.encode(&a, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	firing := &state{body: []byte(`{"labels":{"alertname":"F"},"startsAt":"2026-01-01T00:00:00Z"`)}
	firingEnd := time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC)
	batch := appendBatch(nil, []*state{{body: e.buf, endsAt: endsAt}, firing}, firingEnd)

	var got []postedAlert
	dec := json.NewDecoder(strings.NewReader(string(batch)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("batch is not valid JSON of postableAlerts: %v\n%s", err, batch)
	}
	wantLabels := map[string]string{"alertname": "A", "target": tricky, "_x9": "v", "fleet": "eu"}
	if len(got) != 2 || !maps.Equal(got[0].Labels, wantLabels) || !maps.Equal(got[0].Annotations, map[string]string{"summary": tricky, "description": ""}) ||
		!got[0].StartsAt.Equal(startsAt) || !got[0].EndsAt.Equal(endsAt) || got[0].GeneratorURL != a.GeneratorURL {
		t.Fatalf("decoded %+v\nfrom %s", got, batch)
	}
	if fp != Fingerprint(wantLabels) {
		t.Errorf("encode's fingerprint %x, Fingerprint of the labels it wrote %x", fp, Fingerprint(wantLabels))
	}
	if !got[1].EndsAt.Equal(firingEnd) {
		t.Errorf("firing alert posted with endsAt %v, want %v", got[1].EndsAt, firingEnd)
	}
}

func TestUpdateRejectsInvalidAlertsAndKeepsTheRest(t *testing.T) {
	n, _ := newNotifier(t, Config{URLs: []string{"http://127.0.0.1:1"}, ResendInterval: time.Minute})
	now := time.Now()
	ok := down("ok", now)
	bad := func(mod func(a *Alert)) Alert {
		a := down("x", now)
		a.Labels = maps.Clone(a.Labels)
		mod(&a)
		return a
	}
	alerts := []Alert{
		ok,
		bad(func(a *Alert) { a.StartsAt = time.Time{} }),
		bad(func(a *Alert) { a.EndsAt = now.Add(-time.Hour) }),
		bad(func(a *Alert) { a.StartsAt = now.Add(time.Hour) }),
		bad(func(a *Alert) { a.GeneratorURL = "not a uri" }),
		bad(func(a *Alert) { a.Labels["bad-name"] = "v" }),
		bad(func(a *Alert) { a.Annotations = map[string]string{"1st": "v"} }),
		bad(func(a *Alert) { a.Labels["target"] = "\xff" }),
		bad(func(a *Alert) { a.Labels = map[string]string{"only": ""} }),
		ok, // the same labels again
	}
	err := n.Update(alerts)
	if !errors.Is(err, ErrInvalidAlert) {
		t.Fatalf("Update returned %v, want ErrInvalidAlert", err)
	}
	for i, want := range []string{"", "StartsAt is zero", "is before StartsAt", "in the future", `GeneratorURL "not a uri"`,
		`label name "bad-name"`, `annotation name "1st"`, "not valid UTF-8", "no labels", "same labels as an earlier alert"} {
		if want == "" {
			continue
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("alerts[%d]", i)) || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks alerts[%d]: %q:\n%v", i, want, err)
		}
	}
	if got := strings.Count(err.Error(), "\n") + 1; got != 9 {
		t.Errorf("%d problems reported, want 9:\n%v", got, err)
	}
	if st := n.Status()[0]; st.Pending != 1 || len(n.cur) != 1 || n.cur[Fingerprint(ok.Labels)] == nil {
		t.Errorf("after Update: %d pending, %d declared; want the one valid alert", st.Pending, len(n.cur))
	}
}

// An unchanged alert is not sent again before the resend tick; a changed
// one is sent at once.
func TestOnlyNewAndChangedAlertsAreSentAtOnce(t *testing.T) {
	fake := startFake(t, always(http.StatusOK))
	n, _ := newNotifier(t, Config{URLs: []string{fake.URL}, ResendInterval: time.Hour})
	startsAt := time.Now().Add(-time.Minute)
	start(t, n)
	// The POSTs that carry alerts: Run's first request may be the empty
	// keep-alive probe, or not, as the first update races it.
	withAlerts := func() []fakeRequest {
		var out []fakeRequest
		for _, r := range fake.requests() {
			if len(r.Alerts) > 0 {
				out = append(out, r)
			}
		}
		return out
	}
	posts := func(want int) []postedAlert {
		t.Helper()
		poll(t, fmt.Sprintf("POST %d", want), func() bool {
			return n.Status()[0].Sent > 0 && len(withAlerts()) >= want && n.Status()[0].Pending == 0
		})
		reqs := withAlerts()
		if len(reqs) != want {
			t.Fatalf("%d POSTs, want %d", len(reqs), want)
		}
		return reqs[want-1].Alerts
	}
	update(t, n, down("a", startsAt))
	posts(1)
	// Equal content in fresh maps is unchanged; b is new.
	update(t, n, down("a", startsAt), down("b", startsAt))
	if got := posts(2); len(got) != 1 || got[0].Labels["target"] != "b" {
		t.Fatalf("second POST %+v, want only the new b", got)
	}
	changed := down("a", startsAt)
	changed.GeneratorURL = "/targets/a"
	update(t, n, changed, down("b", startsAt))
	if got := posts(3); len(got) != 1 || got[0].Labels["target"] != "a" || got[0].GeneratorURL != "/targets/a" {
		t.Fatalf("third POST %+v, want only the changed a", got)
	}
}
