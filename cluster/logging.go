package cluster

import (
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// logEvery is how often one kind of memberlist error may reach the log.
const logEvery = 10 * time.Second

// slogWriter adapts memberlist's log.Logger output to slog. Its [ERR] lines
// become warnings, but at most one per kind (the message up to its first
// colon) every logEvery, the next one carrying how many were suppressed:
// anyone who can send packets to the gossip port can make memberlist log an
// error per packet (20,000 garbage packets made 16,871 lines), and a log
// that fills a disk is an outage of its own. Every error is counted
// (vantage_gossip_errors_total). [WARN] and other lines (a peer that
// answers over TCP but not UDP, a refuted suspicion: routine in a WAN
// fleet) go to debug.
type slogWriter struct {
	log    *slog.Logger
	errors *metrics.Counter

	mu    sync.Mutex
	kinds map[string]*logKind
}

type logKind struct {
	last       time.Time
	suppressed int
}

// maxLogKinds bounds the kinds remembered; beyond it, unseen kinds share one.
const maxLogKinds = 64

func newSlogWriter(log *slog.Logger, set *metrics.Set) *slogWriter {
	return &slogWriter{log: log, errors: set.NewCounter("vantage_gossip_errors_total"), kinds: map[string]*logKind{}}
}

func (w *slogWriter) Write(p []byte) (int, error) {
	s := strings.TrimRight(string(p), "\n")
	if !strings.Contains(s, "[ERR]") {
		w.log.Debug("memberlist", "msg", s)
		return len(p), nil
	}
	w.errors.Inc()
	kind := s
	if i := strings.Index(s, "[ERR]"); i >= 0 {
		kind = s[i:]
	}
	if i := strings.Index(kind, ": "); i >= 0 {
		if j := strings.Index(kind[i+2:], ":"); j >= 0 {
			kind = kind[:i+2+j]
		}
	}
	now := time.Now()
	w.mu.Lock()
	k := w.kinds[kind]
	if k == nil {
		if len(w.kinds) >= maxLogKinds {
			kind = "other"
		}
		if k = w.kinds[kind]; k == nil {
			k = &logKind{}
			w.kinds[kind] = k
		}
	}
	if !k.last.IsZero() && now.Sub(k.last) < logEvery {
		k.suppressed++
		w.mu.Unlock()
		return len(p), nil
	}
	suppressed := k.suppressed
	k.last, k.suppressed = now, 0
	w.mu.Unlock()
	if suppressed > 0 {
		w.log.Warn("memberlist", "msg", s, "suppressed_since_last", suppressed)
	} else {
		w.log.Warn("memberlist", "msg", s)
	}
	return len(p), nil
}
