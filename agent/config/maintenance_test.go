package config

import (
	"testing"
	"time"

	// The test binary carries its own zone database, so DST tests do not
	// depend on the machine; the vantage binary uses the system's.
	_ "time/tzdata"
)

func loc(t *testing.T, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// activeMinutes counts the minutes from start (inclusive) over span in
// which m is active, sampling each minute's start.
func activeMinutes(m *Maintenance, start time.Time, span time.Duration) int {
	n := 0
	for at := start; at.Before(start.Add(span)); at = at.Add(time.Minute) {
		if m.Active(at) {
			n++
		}
	}
	return n
}

func loadWindows(t *testing.T, windows string) *Config {
	t.Helper()
	dir := writeFiles(t, map[string]string{"main.toml": `
[[target]]
name = "db"
type = "tcp"
address = "h:1"
[[target]]
name = "web-1"
type = "tcp"
address = "h:1"
[[target]]
name = "web-2"
type = "tcp"
address = "h:1"
` + windows})
	return mustLoad(t, dir)
}

func TestMaintenanceFromConfig(t *testing.T) {
	cfg := loadWindows(t, `
[[maintenance]]
targets = ["web-*"]
start = 2026-12-01T02:00:00      # no offset: in timezone
end = 2026-12-01T03:00:00
timezone = "Europe/Berlin"

[[maintenance]]
targets = ["db"]
weekdays = ["Saturday", "sun"]
from = "23:00"
to = "01:30"
timezone = "America/New_York"

[[maintenance]]                  # overlaps the one above on Sunday night
targets = ["db", "web-2"]
weekdays = ["sun"]
from = "00:30"
to = "02:00"
timezone = "America/New_York"

[[maintenance]]
targets = ["web-1"]
start = 2026-06-01               # a bare date: midnight, UTC
end = 2026-06-02
`)
	berlin := loc(t, "Europe/Berlin")
	ny := loc(t, "America/New_York")
	m := cfg.Maintenance
	if len(m) != 4 {
		t.Fatalf("%d windows", len(m))
	}
	if want := time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC); !m[0].Start.Equal(want) {
		t.Errorf("local start = %v, want %v (02:00 in Berlin)", m[0].Start, want)
	}
	if m[1].Location.String() != "America/New_York" || len(m[1].Weekdays) != 2 || m[1].From != 23*time.Hour || m[1].To != 90*time.Minute {
		t.Errorf("recurring window: %+v", m[1])
	}
	if want := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC); !m[3].Start.Equal(want) {
		t.Errorf("date start = %v, want %v", m[3].Start, want)
	}

	cases := []struct {
		target string
		at     time.Time
		want   bool
	}{
		// Absolute: start inclusive, end exclusive; globs pick targets.
		{"web-1", time.Date(2026, 12, 1, 2, 0, 0, 0, berlin), true},
		{"web-2", time.Date(2026, 12, 1, 2, 59, 59, 0, berlin), true},
		{"web-1", time.Date(2026, 12, 1, 3, 0, 0, 0, berlin), false},
		{"web-1", time.Date(2026, 12, 1, 1, 59, 59, 0, berlin), false},
		{"db", time.Date(2026, 12, 1, 2, 30, 0, 0, berlin), false},
		// Recurring, wrapping past midnight, Saturday and Sunday openings
		// (2026-03-07 is a Saturday).
		{"db", time.Date(2026, 3, 7, 23, 0, 0, 0, ny), true},
		{"db", time.Date(2026, 3, 8, 1, 29, 0, 0, ny), true},  // Saturday's window, after midnight
		{"db", time.Date(2026, 3, 8, 23, 30, 0, 0, ny), true}, // Sunday's window
		{"db", time.Date(2026, 3, 9, 1, 0, 0, 0, ny), true},   // Sunday's window, Monday morning
		{"db", time.Date(2026, 3, 9, 23, 30, 0, 0, ny), false},
		{"db", time.Date(2026, 3, 7, 1, 0, 0, 0, ny), false}, // Friday's window would be: no
		{"db", time.Date(2026, 3, 7, 22, 59, 0, 0, ny), false},
		// The overlapping Sunday window extends the union to 02:00.
		{"db", time.Date(2026, 3, 15, 1, 45, 0, 0, ny), true},
		{"db", time.Date(2026, 3, 15, 2, 0, 0, 0, ny), false},
		{"web-2", time.Date(2026, 3, 15, 0, 45, 0, 0, ny), true},
		{"web-2", time.Date(2026, 3, 14, 23, 45, 0, 0, ny), false},
		{"web-1", time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC), true},
		{"nothing", time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC), false},
	}
	for _, c := range cases {
		if got := cfg.InMaintenance(c.target, c.at); got != c.want {
			t.Errorf("InMaintenance(%s, %s) = %v, want %v", c.target, c.at.Format(time.RFC3339), got, c.want)
		}
	}
}

func TestMaintenanceAcrossDST(t *testing.T) {
	berlin := loc(t, "Europe/Berlin")
	ny := loc(t, "America/New_York")
	day := func(l *time.Location, y int, mo time.Month, d int) time.Time {
		return time.Date(y, mo, d, 0, 0, 0, 0, l)
	}
	cases := []struct {
		name     string
		m        Maintenance
		dayStart time.Time
		minutes  int
	}{
		// Europe/Berlin springs forward on 2026-03-29 at 02:00 (to 03:00) and
		// falls back on 2026-10-25 at 03:00 (to 02:00).
		{"berlin ordinary day", Maintenance{From: 2 * time.Hour, To: 3 * time.Hour, Location: berlin}, day(berlin, 2026, 3, 28), 60},
		{"berlin spring forward, 02-03 never happens", Maintenance{From: 2 * time.Hour, To: 3 * time.Hour, Location: berlin}, day(berlin, 2026, 3, 29), 0},
		{"berlin spring forward, 02-04 lasts 1h", Maintenance{From: 2 * time.Hour, To: 4 * time.Hour, Location: berlin}, day(berlin, 2026, 3, 29), 60},
		{"berlin fall back, 02-03 happens twice", Maintenance{From: 2 * time.Hour, To: 3 * time.Hour, Location: berlin}, day(berlin, 2026, 10, 25), 120},
		{"berlin fall back, wrapping 22-04 lasts 7h", Maintenance{From: 22 * time.Hour, To: 4 * time.Hour, Location: berlin, Weekdays: []time.Weekday{time.Saturday}}, day(berlin, 2026, 10, 24), 7 * 60},
		// America/New_York: 2026-03-08 02:00 -> 03:00; 2026-11-01 02:00 -> 01:00.
		{"new york spring forward", Maintenance{From: 2 * time.Hour, To: 3 * time.Hour, Location: ny}, day(ny, 2026, 3, 8), 0},
		{"new york fall back, 01-02 happens twice", Maintenance{From: time.Hour, To: 2 * time.Hour, Location: ny}, day(ny, 2026, 11, 1), 120},
		{"new york whole day to 24:00", Maintenance{From: 0, To: 24 * time.Hour, Location: ny, Weekdays: []time.Weekday{time.Sunday}}, day(ny, 2026, 11, 1), 25 * 60},
		{"utc by default", Maintenance{From: 10 * time.Hour, To: 11 * time.Hour}, day(time.UTC, 2026, 3, 29), 60},
		{"weekday filter", Maintenance{From: 2 * time.Hour, To: 3 * time.Hour, Location: berlin, Weekdays: []time.Weekday{time.Monday}}, day(berlin, 2026, 3, 28), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Sweep 36h from local midnight so wrapped windows and the
			// following day's early hours are covered, restricted to windows
			// opening on that day by Weekdays where the case sets them.
			span := 24 * time.Hour
			if c.m.To <= c.m.From || len(c.m.Weekdays) > 0 {
				span = 36 * time.Hour
			}
			if got := activeMinutes(&c.m, c.dayStart, span); got != c.minutes {
				t.Errorf("active %d minutes, want %d", got, c.minutes)
			}
		})
	}
}

func TestAbsoluteWindowIgnoresZones(t *testing.T) {
	start := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	m := Maintenance{Start: start, End: start.Add(time.Hour), Location: loc(t, "Asia/Tokyo")}
	if !m.Active(start.In(loc(t, "America/New_York"))) || m.Active(start.Add(time.Hour)) || m.Active(start.Add(-time.Nanosecond)) {
		t.Error("absolute window bounds")
	}
}
