package agent

import (
	"encoding/binary"
	"math"
	"math/bits"
	"time"

	"github.com/vantage-probe/vantage/exporter"
	"github.com/vantage-probe/vantage/probe"
)

// historyLen is how many recent results each target keeps for the status
// page's sparkline.
const historyLen = 60

// history is a target's last historyLen results, for the sparkline and the
// API, in 4 bytes a result and no pointers: an exporter.Point holds a
// time.Time (24 bytes and a *Location for the collector to scan), sixty
// of them per target. A sparkline needs neither sub-second times nor
// latencies finer than 0.2%.
type history struct {
	p       [historyLen]point
	newest  uint32 // Unix seconds of the newest point (until 2106)
	n, next uint8
}

// point is one result: its time as seconds after the point before it, and
// its latency, compressed, with OK in the top bit.
type point struct {
	dt  uint16 // seconds since the previous point, saturating (18 h)
	lat uint16 // okBit | encodeLatency(µs)
}

const okBit = 1 << 15

// addHistory adds r to st's history, made on the first result.
func (st *targetState) addHistory(r *probe.Result) {
	if st.hist == nil {
		st.hist = new(history)
	}
	st.hist.add(r)
}

func (h *history) add(r *probe.Result) {
	at := uint32(min(max(r.At.Unix(), 0), math.MaxUint32))
	var dt uint16
	if h.n > 0 && at > h.newest {
		dt = uint16(min(at-h.newest, math.MaxUint16))
	}
	// A clock stepped back gives dt 0: the older points then read as that
	// much earlier, which a sparkline survives.
	h.newest = at
	lat := encodeLatency(r.Latency())
	if r.OK {
		lat |= okBit
	}
	h.p[h.next] = point{dt: dt, lat: lat}
	h.next = uint8((int(h.next) + 1) % historyLen)
	if h.n < historyLen {
		h.n++
	}
}

// historyBytes is the length of a marshalled history.
const historyBytes = 1 + 4 + 1 + 1 + historyLen*4

// marshal encodes h for the state file: a version byte, then h's fields.
func (h *history) marshal() []byte {
	if h == nil {
		h = new(history) // no result yet: an empty history
	}
	b := make([]byte, 0, historyBytes)
	b = append(b, 1)
	b = binary.BigEndian.AppendUint32(b, h.newest)
	b = append(b, h.n, h.next)
	for _, p := range h.p {
		b = binary.BigEndian.AppendUint16(b, p.dt)
		b = binary.BigEndian.AppendUint16(b, p.lat)
	}
	return b
}

// unmarshal is marshal's inverse; false (h untouched) for what it does not
// know.
func (h *history) unmarshal(b []byte) bool {
	if len(b) != historyBytes || b[0] != 1 || b[5] > historyLen || b[6] >= historyLen {
		return false
	}
	h.newest = binary.BigEndian.Uint32(b[1:])
	h.n, h.next = b[5], b[6]
	for i := range h.p {
		o := 7 + 4*i
		h.p[i] = point{dt: binary.BigEndian.Uint16(b[o:]), lat: binary.BigEndian.Uint16(b[o+2:])}
	}
	return true
}

// points returns the history oldest first.
func (h *history) points() []exporter.Point {
	if h == nil {
		return nil
	}
	out := make([]exporter.Point, h.n)
	at := int64(h.newest)
	for i := int(h.n) - 1; i >= 0; i-- {
		p := h.p[(int(h.next)-int(h.n)+i+historyLen)%historyLen]
		out[i] = exporter.Point{At: time.Unix(at, 0), OK: p.lat&okBit != 0, Latency: decodeLatency(p.lat &^ okBit)}
		at -= int64(p.dt)
	}
	return out
}

// encodeLatency is d in microseconds as a 15-bit float: exact below
// 1,024 µs, above that a 10-bit mantissa (0.2% at worst) and a 5-bit
// exponent, saturating at 2^31-1 µs (~35 minutes, beyond any timeout).
func encodeLatency(d time.Duration) uint16 {
	us := uint32(min(max(d.Microseconds(), 0), math.MaxInt32))
	if us < 1<<10 {
		return uint16(us)
	}
	e := bits.Len32(us) - 10 // 1..21: us>>e has its top bit at 2^9
	return uint16(e<<10 | int(us>>e))
}

func decodeLatency(c uint16) time.Duration {
	e, m := c>>10, time.Duration(c&(1<<10-1))
	if e == 0 {
		return m * time.Microsecond
	}
	return m << e * time.Microsecond
}
