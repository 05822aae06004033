package config

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// buildMaintenance validates [[maintenance]] number i of s. Targets must be
// known already: a glob that matches none is an error, since it is almost
// always a typo that would silently page during the window.
func (l *loader) buildMaintenance(s *source, i int, cfg *Config) (Maintenance, bool) {
	ms := &s.schema.Maintenance[i]
	sc := scope{l: l, s: s, path: fmt.Sprintf("maintenance[%d]", i), field: fmt.Sprintf("maintenance[%d]", i)}
	m := Maintenance{Pos: s.ix.at(sc.path), Location: time.UTC}
	before := len(l.c.errs)

	if !ms.Targets.Set {
		sc.errf(ErrRequired, "", "targets (globs on target names) is required")
	} else if ms.Targets.ok() && len(ms.Targets.V) == 0 {
		sc.errf(ErrInvalid, "targets", "empty: the window would apply to nothing")
	}
	for k, g := range ms.Targets.or(nil) {
		key := fmt.Sprintf("targets[%d]", k)
		if _, err := path.Match(g, ""); err != nil {
			sc.errf(ErrInvalid, key, "bad glob %q: %v", g, err)
			continue
		}
		matched := false
		for _, t := range cfg.Targets {
			if ok, _ := path.Match(g, t.Name); ok {
				matched = true
				break
			}
		}
		if !matched {
			sc.errf(ErrUnreachable, key, "unreachable glob %q: it matches no target", g)
		}
		m.Targets = append(m.Targets, g)
	}

	if tz := ms.Timezone.or(""); tz != "" {
		loc, err := time.LoadLocation(tz)
		if err != nil {
			sc.errf(ErrTimeZone, "timezone", "unknown time zone %q (IANA names like \"Europe/Berlin\", from the system time zone database; set $ZONEINFO or install tzdata)", tz)
		} else {
			m.Location = loc
		}
	}

	absolute := ms.Start.Set || ms.End.Set
	recurring := ms.Weekdays.Set || ms.From.Set || ms.To.Set
	switch {
	case absolute && recurring:
		sc.errf(ErrConflict, "", "set either start and end (one window) or from, to and weekdays (a recurring one), not both")
	case absolute:
		m.Start = sc.datetime("start", ms.Start, m.Location)
		m.End = sc.datetime("end", ms.End, m.Location)
		if !m.Start.IsZero() && !m.End.IsZero() && !m.End.After(m.Start) {
			sc.errf(ErrImpossible, "end", "end %s is not after start %s", m.End.Format(time.RFC3339), m.Start.Format(time.RFC3339))
		}
	case recurring:
		var fromOK, toOK bool
		m.From, fromOK = sc.timeOfDay("from", ms.From, false)
		m.To, toOK = sc.timeOfDay("to", ms.To, true)
		if fromOK && toOK && m.From == m.To {
			sc.errf(ErrImpossible, "to", "from and to are both %s: the window is empty", ms.From.V)
		}
		for k, w := range ms.Weekdays.or(nil) {
			d, ok := parseWeekday(w)
			if !ok {
				sc.errf(ErrInvalid, fmt.Sprintf("weekdays[%d]", k), "unknown weekday %q (mon, tue, wed, thu, fri, sat, sun)", w)
				continue
			}
			m.Weekdays = append(m.Weekdays, d)
		}
	default:
		sc.errf(ErrRequired, "", "set start and end (one window) or from and to (a daily or weekly one)")
	}
	return m, len(l.c.errs) == before
}

// datetime takes a TOML datetime; one without an offset (or a bare date,
// meaning midnight) is wall-clock time in loc.
func (sc scope) datetime(key string, o opt[time.Time], loc *time.Location) time.Time {
	if !o.Set {
		sc.errf(ErrRequired, "", "%s is required with %s", key, map[string]string{"start": "end", "end": "start"}[key])
		return time.Time{}
	}
	if !o.ok() {
		return time.Time{}
	}
	t := o.V
	switch t.Location().String() {
	case "datetime-local", "date-local":
		return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), loc)
	case "time-local":
		sc.errf(ErrInvalid, key, "%s has no date: use a full datetime like 2026-12-01T02:00:00Z", t.Format("15:04:05"))
		return time.Time{}
	}
	return t
}

// timeOfDay parses "HH:MM" or "HH:MM:SS"; "24:00" is allowed as an end.
func (sc scope) timeOfDay(key string, o opt[string], end bool) (time.Duration, bool) {
	if !o.Set {
		other := map[string]string{"from": "to", "to": "from"}[key]
		sc.errf(ErrRequired, "", "%s is required with %s", key, other)
		return 0, false
	}
	if !o.ok() {
		return 0, false
	}
	d, err := parseClock(o.V, end)
	if err != nil {
		sc.errf(ErrInvalid, key, "%v", err)
		return 0, false
	}
	return d, true
}

func parseClock(s string, end bool) (time.Duration, error) {
	bad := fmt.Errorf("bad time of day %q: want HH:MM (00:00 to 23:59%s)", s, map[bool]string{true: ", or 24:00", false: ""}[end])
	parts := strings.Split(s, ":")
	if len(parts) != 2 && len(parts) != 3 {
		return 0, bad
	}
	var n [3]int
	for i, p := range parts {
		if len(p) != 2 {
			return 0, bad
		}
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 {
			return 0, bad
		}
		n[i] = v
	}
	h, m, sec := n[0], n[1], n[2]
	if m > 59 || sec > 59 || h > 24 || (h == 24 && (!end || m != 0 || sec != 0)) {
		return 0, bad
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec)*time.Second, nil
}

func parseWeekday(s string) (time.Weekday, bool) {
	s = strings.ToLower(s)
	for d := time.Sunday; d <= time.Saturday; d++ {
		full := strings.ToLower(d.String())
		if s == full || s == full[:3] {
			return d, true
		}
	}
	return 0, false
}

// Active reports whether now falls in the window. Recurring windows are
// wall-clock times in Location: a 02:00-04:00 window in Europe/Berlin is
// open from 02:00 to 04:00 on the local clock whatever the offset, so on the
// day clocks spring forward it lasts one hour (02:00-03:00 does not exist),
// and on the day they fall back it lasts three (02:00-03:00 happens twice).
// A window whose To is before its From wraps past midnight and belongs to
// the weekday it opens on.
func (m *Maintenance) Active(now time.Time) bool {
	if !m.Start.IsZero() || !m.End.IsZero() {
		return !now.Before(m.Start) && now.Before(m.End)
	}
	loc := m.Location
	if loc == nil {
		loc = time.UTC
	}
	local := now.In(loc)
	h, mi, s := local.Clock()
	clock := time.Duration(h)*time.Hour + time.Duration(mi)*time.Minute + time.Duration(s)*time.Second +
		time.Duration(local.Nanosecond())
	day := local.Weekday()
	if m.From < m.To {
		return m.onDay(day) && clock >= m.From && clock < m.To
	}
	// Wraps: the evening part belongs to today, the early-morning part to
	// the day before.
	return (m.onDay(day) && clock >= m.From) || (m.onDay((day+6)%7) && clock < m.To)
}

func (m *Maintenance) onDay(d time.Weekday) bool {
	if len(m.Weekdays) == 0 {
		return true
	}
	for _, w := range m.Weekdays {
		if w == d {
			return true
		}
	}
	return false
}

// Matches reports whether the window applies to the target called name.
func (m *Maintenance) Matches(name string) bool {
	for _, g := range m.Targets {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}
