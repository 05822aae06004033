package page

import (
	"strconv"
	"time"

	"github.com/vantage-probe/vantage/exporter"
)

// Sparkline geometry, in SVG user units (the template's viewBox).
const (
	sparkW   = 100.0
	sparkH   = 24.0
	sparkPad = 2.0
)

// sparkline draws a target's recent history: a latency line through the
// successful probes and a red vertical mark per failed one. The line breaks
// at failures rather than plotting their latency, which is mostly the time
// to a timeout or a refusal and would flatten the scale of the healthy
// probes. x is by time, so a gap in probing shows as a gap.
//
// It writes only numbers and path commands: no allocation per point beyond
// the two path strings.
func sparkline(ps []exporter.Point) spark {
	if len(ps) == 0 {
		return spark{Label: "no history yet"}
	}
	var maxLat, sum time.Duration
	ok := 0
	for _, p := range ps {
		if p.OK {
			ok++
			sum += p.Latency
			maxLat = max(maxLat, p.Latency)
		}
	}
	t0, t1 := ps[0].At, ps[len(ps)-1].At
	span := t1.Sub(t0)
	x := func(i int) float64 {
		if span <= 0 || len(ps) == 1 {
			if len(ps) == 1 {
				return sparkW - sparkPad
			}
			return sparkPad + (sparkW-2*sparkPad)*float64(i)/float64(len(ps)-1)
		}
		return sparkPad + (sparkW-2*sparkPad)*float64(ps[i].At.Sub(t0))/float64(span)
	}
	y := func(d time.Duration) float64 {
		if maxLat <= 0 {
			return sparkH / 2
		}
		return sparkH - sparkPad - (sparkH-2*sparkPad)*float64(d)/float64(maxLat)
	}
	line := make([]byte, 0, ok*12)
	fails := make([]byte, 0, (len(ps)-ok)*14)
	pen := false
	for i, p := range ps {
		if !p.OK {
			fails = append(fails, 'M')
			fails = appendFixed(fails, x(i))
			fails = append(fails, " 1V23"...)
			pen = false
			continue
		}
		if pen {
			line = append(line, 'L')
		} else {
			line = append(line, 'M')
		}
		line = appendFixed(line, x(i))
		line = append(line, ' ')
		line = appendFixed(line, y(p.Latency))
		// A lone OK point between failures is a zero-length path: draw a
		// short tick so it is visible.
		if !pen && (i+1 == len(ps) || !ps[i+1].OK) {
			line = append(line, "h1"...)
		}
		pen = true
	}
	s := spark{Line: string(line), Fails: string(fails)}
	failed := len(ps) - ok
	s.Label = "last " + strconv.Itoa(len(ps)) + " probes: " + strconv.Itoa(failed) + " failed"
	if ok > 0 {
		s.Label += ", avg " + latency(sum/time.Duration(ok)) + ", max " + latency(maxLat)
	}
	return s
}

// appendFixed appends v >= 0 with one decimal. It is strconv.AppendFloat(b,
// v, 'f', 1, 64) for the sparkline's small coordinates, at a fraction of the
// cost: 120,000 coordinates in a 1,000-target page.
func appendFixed(b []byte, v float64) []byte {
	t := int64(v*10 + 0.5)
	if t < 0 {
		t = 0
	}
	b = strconv.AppendInt(b, t/10, 10)
	return append(b, '.', byte('0'+t%10))
}
