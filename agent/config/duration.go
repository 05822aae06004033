package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses a non-negative duration in time.ParseDuration's
// syntax plus the units "d" (24h) and "w" (7d), which SLO windows and
// certificate horizons want: "28d", "1w2d", "1d12h", "1.5d".
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if s == "0" {
		return 0, nil
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	if !strings.ContainsAny(s, "dw") {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("duration %q: want a number and a unit, like \"30s\", \"5m\", \"28d\"", s)
		}
		return d, nil
	}
	// Split into number+unit terms; days and weeks are ours, every other
	// term goes to time.ParseDuration.
	var total time.Duration
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		j := i
		for j < len(rest) && !(rest[j] >= '0' && rest[j] <= '9' || rest[j] == '.') {
			j++
		}
		num, unit := rest[:i], rest[i:j]
		rest = rest[j:]
		if num == "" || unit == "" {
			return 0, fmt.Errorf("duration %q: want a number and a unit, like \"30s\", \"5m\", \"28d\"", s)
		}
		var term time.Duration
		switch unit {
		case "d", "w":
			f, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("duration %q: bad number %q", s, num)
			}
			unitLen := 24 * time.Hour
			if unit == "w" {
				unitLen *= 7
			}
			if f*float64(unitLen) >= math.MaxInt64 {
				return 0, fmt.Errorf("duration %q is too long", s)
			}
			if n, err := strconv.ParseInt(num, 10, 64); err == nil {
				term = time.Duration(n) * unitLen // exact for whole days
			} else {
				term = time.Duration(f * float64(unitLen))
			}
		default:
			d, err := time.ParseDuration(num + unit)
			if err != nil {
				return 0, fmt.Errorf("duration %q: unknown unit %q (use ns, us, ms, s, m, h, d, w)", s, unit)
			}
			term = d
		}
		if total > math.MaxInt64-term {
			return 0, fmt.Errorf("duration %q is too long", s)
		}
		total += term
	}
	return total, nil
}
