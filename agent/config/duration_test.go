package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	day := 24 * time.Hour
	ok := []struct {
		in   string
		want time.Duration
	}{
		{"0", 0},
		{"30s", 30 * time.Second},
		{"1m30s", 90 * time.Second},
		{"500ms", 500 * time.Millisecond},
		{"28d", 28 * day},
		{"1w", 7 * day},
		{"1w2d", 9 * day},
		{"1d12h", 36 * time.Hour},
		{"1.5d", 36 * time.Hour},
		{"2d3h4m5s", 2*day + 3*time.Hour + 4*time.Minute + 5*time.Second},
		{"1d500ms", day + 500*time.Millisecond},
		{"52w", 364 * day},
	}
	for _, c := range ok {
		got, err := ParseDuration(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	bad := []struct{ in, msg string }{
		{"", "empty"},
		{"30", "unit"},
		{"5 minutes", "unit"},
		{"-1s", "negative"},
		{"-2d", "negative"},
		{"d", "unit"},
		{"3x", "unit"},
		{"1d3x", `"x"`},
		{"1..5d", "bad number"},
		{"200000w", "too long"},
		{"106751d1000h", "too long"},
	}
	for _, c := range bad {
		got, err := ParseDuration(c.in)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("ParseDuration(%q) = %v, %v; want an error about %q", c.in, got, err, c.msg)
		}
	}
}
