package cluster

import (
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
)

// clusterMetrics are the cluster's own counters, registered in the agent's
// metrics.Set (never the global one).
type clusterMetrics struct {
	assigned      atomic.Int64
	results       *metrics.Counter
	badMessages   *metrics.Counter
	badMeta       *metrics.Counter
	inboxDrops    *metrics.Counter
	oversized     *metrics.Counter
	sendErrors    *metrics.Counter
	heartbeatGaps *metrics.Counter
	doubted       *metrics.Counter
	digestEntries *metrics.Counter // observations (resends and digests' answers)
	repairedV     *metrics.Counter // verdicts in digests' answers
	repairedI     *metrics.Counter // incidents in digests' answers
	resendsAsked  *metrics.Counter
	keysSent      *metrics.Counter // entry keys in key lists (digest.go)
	published     *metrics.Counter
	incidents     *metrics.Counter
	detection     *metrics.PrometheusHistogram
	confirm       map[string]*metrics.Counter
	suppressed    map[string]*metrics.Counter // by region, created on demand
	set           *metrics.Set
}

// detectionBuckets cover sub-second to a few minutes: confirmations land in
// seconds, interval-bound detection in tens of seconds.
var detectionBuckets = []float64{0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300}

func newClusterMetrics(s *metrics.Set) *clusterMetrics {
	m := &clusterMetrics{
		set:           s,
		results:       s.NewCounter(`vantage_gossip_results_received_total`),
		badMessages:   s.NewCounter(`vantage_gossip_messages_dropped_total{reason="malformed"}`),
		badMeta:       s.NewCounter(`vantage_gossip_messages_dropped_total{reason="bad_meta"}`),
		inboxDrops:    s.NewCounter(`vantage_gossip_messages_dropped_total{reason="queue_full"}`),
		oversized:     s.NewCounter(`vantage_gossip_messages_dropped_total{reason="oversized"}`),
		sendErrors:    s.NewCounter(`vantage_gossip_send_errors_total`),
		heartbeatGaps: s.NewCounter(`vantage_gossip_heartbeat_gaps_total`),
		doubted:       s.NewCounter(`vantage_leadership_doubted_total`),
		digestEntries: s.NewCounter(`vantage_gossip_repair_entries_sent_total{type="observation"}`),
		repairedV:     s.NewCounter(`vantage_gossip_repair_entries_sent_total{type="verdict"}`),
		repairedI:     s.NewCounter(`vantage_gossip_repair_entries_sent_total{type="incident"}`),
		resendsAsked:  s.NewCounter(`vantage_gossip_resends_asked_total`),
		keysSent:      s.NewCounter(`vantage_gossip_repair_keys_sent_total`),
		published:     s.NewCounter(`vantage_gossip_verdicts_published_total`),
		incidents:     s.NewCounter(`vantage_cluster_incidents_opened_total`),
		detection:     s.NewPrometheusHistogramExt(`vantage_detection_seconds`, detectionBuckets),
		confirm:       map[string]*metrics.Counter{},
		suppressed:    map[string]*metrics.Counter{},
	}
	for _, r := range []string{"requested", "confirmed", "refuted", "busy", "timeout", "rate_limited", "served", "slow_probe"} {
		m.confirm[r] = s.NewCounter(`vantage_confirmations_total{result="` + r + `"}`)
	}
	return m
}

func (m *clusterMetrics) suppressedFor(region string) *metrics.Counter {
	if c, ok := m.suppressed[region]; ok {
		return c
	}
	c := m.set.GetOrCreateCounter(`vantage_suppressed_failures_total{region="` + escapeLabel(region) + `"}`)
	m.suppressed[region] = c
	return c
}

func escapeLabel(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\', '"':
			out = append(out, '\\', s[i])
		case '\n':
			out = append(out, '\\', 'n')
		default:
			out = append(out, s[i])
		}
	}
	return string(out)
}

// repairs is every entry sent to repair a peer, of every kind.
func (m *clusterMetrics) repairs() uint64 {
	return m.digestEntries.Get() + m.repairedV.Get() + m.repairedI.Get()
}
