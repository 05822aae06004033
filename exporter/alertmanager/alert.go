package alertmanager

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"
	"unicode/utf8"
)

// Alert is one alert as Alertmanager's API v2 takes it (postableAlert).
type Alert struct {
	// Labels are the alert's identity: alerts with equal labels (after
	// ExternalLabels are added) are one alert, here and in Alertmanager.
	// A label with an empty value is the same as no label, as in
	// Alertmanager, which removes them.
	Labels      map[string]string
	Annotations map[string]string
	// StartsAt is required: every agent that leads the target in turn must
	// send the same value, so that Alertmanager sees one continuous alert.
	StartsAt time.Time
	// EndsAt zero: firing. Set: resolved at that time.
	EndsAt time.Time
	// GeneratorURL, when set, must be an absolute URL or an absolute path:
	// Alertmanager rejects anything else (its API declares format "uri").
	GeneratorURL string
}

// Resolved reports whether the alert carries an end.
func (a *Alert) Resolved() bool { return !a.EndsAt.IsZero() }

// Sentinel errors, for errors.Is on what New and Update return.
var (
	ErrInvalidConfig = errors.New("invalid alertmanager notifier config")
	ErrInvalidAlert  = errors.New("invalid alert")
)

// Fingerprint is Alertmanager's fingerprint of a label set: FNV-1a over the
// sorted names and values, each followed by the byte 0xff (Prometheus'
// model.LabelSet.Fingerprint). It is the alert's identity here, and the
// same value Alertmanager shows in its API and UI (as %016x), so logs and
// status pages of both can be matched. Empty values count as absent, as
// they do in Alertmanager.
func Fingerprint(labels map[string]string) uint64 {
	names := make([]string, 0, len(labels))
	for k, v := range labels {
		if v != "" {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	h := fnvOffset
	for _, k := range names {
		h = fnvAdd(h, k)
		h = fnvAdd(h, labels[k])
	}
	return h
}

const (
	fnvOffset uint64 = 14695981039346656037
	fnvPrime  uint64 = 1099511628211
)

// fnvAdd hashes s and then the separator byte 0xff, which cannot occur in
// valid UTF-8 and so keeps ("a","bc") and ("ab","c") apart.
func fnvAdd(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	h ^= 0xff
	h *= fnvPrime
	return h
}

// validLabelName is Alertmanager 0.25's rule for label and annotation
// names ([a-zA-Z_][a-zA-Z0-9_]*); it answers 400 to anything else.
func validLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// encoder turns alerts into the JSON Alertmanager takes. It keeps scratch
// space between calls, so encoding an unchanged alert allocates nothing;
// it is not safe for concurrent use.
type encoder struct {
	external map[string]string // Config.ExternalLabels, validated
	names    []string          // scratch: sorted label or annotation names
	buf      []byte            // scratch: the body being built
}

// encode validates a (all but GeneratorURL: see checkGeneratorURL) and
// writes into e.buf its JSON object without endsAt and without the closing
// brace: the part of the alert that does not change between sends (a
// firing alert's endsAt is computed at each send). It returns the
// fingerprint of the labels it wrote (the alert's plus external labels).
//
// Validating here, rather than letting Alertmanager answer 400, matters:
// one bad alert would make Alertmanager reject the whole batch of 64 (a
// permanent error, not retried), and the other 63 would wait for the next
// resend. maxStart bounds a firing alert's StartsAt (see Update).
func (e *encoder) encode(a *Alert, maxStart time.Time) (uint64, error) {
	if a.StartsAt.IsZero() {
		return 0, errors.New("StartsAt is zero: every agent must send the same start for the alert to stay one")
	}
	if a.Resolved() && a.EndsAt.Before(a.StartsAt) {
		return 0, fmt.Errorf("EndsAt %s is before StartsAt %s", a.EndsAt.Format(time.RFC3339Nano), a.StartsAt.Format(time.RFC3339Nano))
	}
	// A firing alert is posted with endsAt = now + 4 x ResendInterval;
	// Alertmanager rejects an end before the start.
	if !a.Resolved() && a.StartsAt.After(maxStart) {
		return 0, fmt.Errorf("StartsAt %s is in the future, after the end a firing alert is sent with (%s)", a.StartsAt.Format(time.RFC3339Nano), maxStart.Format(time.RFC3339Nano))
	}
	// Labels: the alert's non-empty ones, then external labels it lacks.
	e.names = e.names[:0]
	for k, v := range a.Labels {
		if v == "" {
			continue
		}
		if !validLabelName(k) {
			return 0, fmt.Errorf("label name %q is not valid ([a-zA-Z_][a-zA-Z0-9_]*)", k)
		}
		if !utf8.ValidString(v) {
			return 0, fmt.Errorf("label %s: value %q is not valid UTF-8", k, v)
		}
		e.names = append(e.names, k)
	}
	for k := range e.external {
		if a.Labels[k] == "" {
			e.names = append(e.names, k)
		}
	}
	if len(e.names) == 0 {
		return 0, errors.New("no labels")
	}
	slices.Sort(e.names)
	h := fnvOffset
	b := append(e.buf[:0], `{"labels":{`...)
	for i, k := range e.names {
		v := a.Labels[k]
		if v == "" {
			v = e.external[k]
		}
		h = fnvAdd(fnvAdd(h, k), v)
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, v)
	}
	b = append(b, '}')

	if len(a.Annotations) > 0 {
		e.names = e.names[:0]
		for k, v := range a.Annotations {
			if !validLabelName(k) {
				return 0, fmt.Errorf("annotation name %q is not valid ([a-zA-Z_][a-zA-Z0-9_]*)", k)
			}
			if !utf8.ValidString(v) {
				return 0, fmt.Errorf("annotation %s: value %q is not valid UTF-8", k, v)
			}
			e.names = append(e.names, k)
		}
		slices.Sort(e.names)
		b = append(b, `,"annotations":{`...)
		for i, k := range e.names {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, a.Annotations[k])
		}
		b = append(b, '}')
	}
	b = append(b, `,"startsAt":"`...)
	b = a.StartsAt.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if a.GeneratorURL != "" {
		b = append(b, `,"generatorURL":`...)
		b = appendJSONString(b, a.GeneratorURL)
	}
	e.buf = b
	return h, nil
}

// checkGeneratorURL checks what Alertmanager's API checks of generatorURL
// (format "uri", i.e. url.ParseRequestURI). It is apart from encode
// because it allocates: Update calls it only for new and changed alerts,
// an unchanged one passed it before.
func checkGeneratorURL(a *Alert) error {
	if a.GeneratorURL == "" {
		return nil
	}
	if _, err := url.ParseRequestURI(a.GeneratorURL); err != nil {
		return fmt.Errorf("GeneratorURL %q is neither an absolute URL nor an absolute path", a.GeneratorURL)
	}
	return nil
}

// appendJSONString appends s as a JSON string. s is valid UTF-8 (checked by
// the caller), so only quotes, backslashes and control characters need
// escaping; U+2028 and U+2029 are escaped too, as encoding/json does, for
// consumers that embed JSON in JavaScript.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < 0x80 {
			i++
			continue
		}
		if c < 0x80 {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			start = i + size
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
