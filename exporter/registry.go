// Package exporter serves what an agent knows: /metrics in the Prometheus
// text format, the JSON API, the status page and health endpoints.
package exporter

import (
	"bytes"
	"io"
	"runtime"
	"strings"
	"sync"

	"github.com/VictoriaMetrics/metrics"
)

// Registry is one agent's metrics: a metrics.Set for its own counters and
// gauges, plus writers for the per-target series, which are written straight
// from the agent's state at scrape time rather than registered one object per
// series (10k targets x a dozen series would cost tens of MB and make
// removing a target's series a chore).
type Registry struct {
	set *metrics.Set

	mu      sync.Mutex
	writers []func(b *Buf)
	bufPool sync.Pool // *Buf, at most spillAt plus a line each
}

// Buf is what writers append to: a bytes.Buffer that WritePrometheus sends
// on to the response whenever it holds spillAt bytes (Spill), so that a
// scrape of 10k targets (~20 MB of text) streams through 64 KB instead of
// building the whole response in memory. A Buf with no destination (the
// zero value) just accumulates.
type Buf struct {
	bytes.Buffer
	out io.Writer
	err error // the first write error: a scraper that went away
}

// spillAt is how much a Buf holds before Spill sends it on: large enough
// for few, large writes to the connection.
const spillAt = 64 << 10

// Spill sends what b holds to its destination once it holds spillAt bytes
// or more. Writers call it between samples, never inside one.
func (b *Buf) Spill() {
	if b.out == nil || b.Len() < spillAt {
		return
	}
	b.flush()
}

func (b *Buf) flush() {
	if b.err == nil && b.Len() > 0 {
		_, b.err = b.out.Write(b.Bytes())
	}
	b.Reset()
}

// NewRegistry returns an empty registry. VictoriaMetrics/metrics decides
// whether to write TYPE lines with a package-level switch; we turn it on
// here (the only global we touch, and it is idempotent).
func NewRegistry() *Registry {
	metrics.ExposeMetadata(true)
	return &Registry{set: metrics.NewSet()}
}

// Set is where components register their own metrics.
func (r *Registry) Set() *metrics.Set { return r.set }

// AddWriter registers a function that appends complete metric families
// (HELP, TYPE and samples) at scrape time, calling b.Spill between samples.
func (r *Registry) AddWriter(f func(b *Buf)) {
	r.mu.Lock()
	r.writers = append(r.writers, f)
	r.mu.Unlock()
}

// WritePrometheus writes every metric to w: the set's, then Go and process
// metrics, then the per-target writers'. HELP lines get their text from
// Help. It streams: memory use does not grow with the response.
func (r *Registry) WritePrometheus(w io.Writer) {
	b, _ := r.bufPool.Get().(*Buf)
	if b == nil {
		b = &Buf{}
		b.Grow(spillAt + 4<<10)
	}
	b.Reset()
	b.out, b.err = w, nil
	var tmp bytes.Buffer
	r.set.WritePrometheus(&tmp)
	// Go and process metrics, but not WriteProcessMetrics' third part: the
	// library's push metrics live in a package-level set shared by every
	// agent in the process; vantage_push_* are this agent's own.
	metrics.WriteGoMetrics(&tmp)
	metrics.WriteProcMetrics(&tmp)
	fillHelp(&b.Buffer, tmp.Bytes())
	r.mu.Lock()
	writers := make([]func(b *Buf), len(r.writers))
	copy(writers, r.writers)
	r.mu.Unlock()
	for _, f := range writers {
		f(b)
		b.Spill()
	}
	b.flush()
	b.out = nil
	// A writer that never spilled can leave a large buffer behind: only
	// small ones are kept (kept, a buffer is live heap all the time).
	if b.Cap() <= 4*spillAt {
		r.bufPool.Put(b)
	}
}

// renames fixes the few VictoriaMetrics runtime metric names that break
// Prometheus naming conventions (promtool check metrics flags them): a
// counter must end in _total, a gauge must not end in _count.
var renames = map[string]string{
	"go_cgo_calls_count": "go_cgo_calls_total",
	"go_gc_forced_count": "go_gc_forced_total",
	"go_cpu_count":       "go_cpus",
}

// fillHelp copies src to dst, giving each bare "# HELP name" line its text,
// typing cumulative *_total families as counters and applying renames.
func fillHelp(dst *bytes.Buffer, src []byte) {
	for len(src) > 0 {
		i := bytes.IndexByte(src, '\n')
		line := src
		if i >= 0 {
			line = src[:i+1]
			src = src[i+1:]
		} else {
			src = nil
		}
		for from, to := range renames {
			if bytes.Contains(line, []byte(from)) {
				line = bytes.Replace(line, []byte(from), []byte(to), 1) // returns a copy
			}
		}
		if bytes.HasPrefix(line, []byte("# TYPE ")) && bytes.HasSuffix(line, []byte("_total gauge\n")) {
			// Copy: line aliases src, and appending in place would
			// overwrite the next line.
			line = append(append([]byte(nil), bytes.TrimSuffix(line, []byte("gauge\n"))...), "counter\n"...)
		}
		if bytes.HasPrefix(line, []byte("# HELP ")) {
			name := strings.TrimSpace(string(line[len("# HELP "):]))
			if !strings.Contains(name, " ") {
				dst.WriteString("# HELP ")
				dst.WriteString(name)
				dst.WriteByte(' ')
				dst.WriteString(helpFor(name))
				dst.WriteByte('\n')
				continue
			}
		}
		dst.Write(line)
	}
}

func helpFor(name string) string {
	if h, ok := Help[name]; ok {
		return h
	}
	switch {
	case strings.HasPrefix(name, "go_"):
		return "Go runtime metric " + name + "."
	case strings.HasPrefix(name, "process_"):
		return "Process metric " + name + "."
	}
	return "Vantage metric " + name + "."
}

// Help is the HELP text of every metric family Vantage exports. It is also
// the metrics reference in README.md.
var Help = map[string]string{
	// Observations (blackbox_exporter compatible).
	"probe_success":                                 "Whether the last probe of the target from this agent succeeded (1) or failed (0).",
	"probe_duration_seconds":                        "Duration of the last probe in seconds.",
	"probe_dns_lookup_time_seconds":                 "Time the last probe took to resolve the target's host name (a DNS target's server), in seconds; 0 for an IP literal.",
	"probe_ip_protocol":                             "IP version of the address the last probe connected to (4 or 6).",
	"probe_ip_addr_hash":                            "Hash of the address the last probe connected to (FNV-1a of its bytes, as blackbox_exporter's): it changes when the address does.",
	"probe_failed_due_to_regex":                     "Whether the last probe failed because a regular expression on the body, a header or the bytes read did not match (or matched where it must not).",
	"probe_http_status_code":                        "HTTP status code of the last probe's final response.",
	"probe_http_duration_seconds":                   "Duration of each phase of the last HTTP probe, summed over redirects.",
	"probe_http_version":                            "HTTP version of the last probe's final response (1.1, 2, 3).",
	"probe_http_content_length":                     "Length the last probe's final response declared (Content-Length); -1 when it declared none.",
	"probe_http_uncompressed_body_length":           "Bytes of response body the last probe read, after decompression.",
	"probe_http_redirects":                          "Redirects followed by the last probe.",
	"probe_http_ssl":                                "Whether the last probe's final response came over TLS.",
	"probe_http_last_modified_timestamp_seconds":    "Last-Modified date of the last probe's final response, Unix seconds; absent when it sent none.",
	"probe_ssl_earliest_cert_expiry":                "Earliest NotAfter of the presented certificate chain, Unix seconds; exported even when verification failed.",
	"probe_ssl_last_chain_expiry_timestamp_seconds": "Over verified chains, the latest of each chain's earliest NotAfter, Unix seconds.",
	"probe_ssl_last_chain_info":                     "The leaf certificate the server presented: SHA-256 fingerprint, issuer, subject and DNS names; always 1.",
	"probe_tls_version_info":                        "TLS version negotiated by the last probe.",
	"probe_dns_rcode":                               "DNS response code of the last probe; absent when no answer came.",
	"probe_dns_query_succeeded":                     "Whether the last DNS probe got an answer, whatever its rcode and records.",
	"probe_dns_serial":                              "Serial of the SOA record in the last DNS answer; absent without one.",
	"probe_dns_answer_rrs":                          "Answer resource records in the last DNS response.",
	"probe_dns_authority_rrs":                       "Authority resource records in the last DNS response.",
	"probe_dns_additional_rrs":                      "Additional resource records in the last DNS response.",
	"probe_dns_duration_seconds":                    "Duration of each phase of the last DNS probe.",
	"probe_tcp_duration_seconds":                    "Duration of each phase of the last TCP or TLS probe.",
	"probe_icmp_duration_seconds":                   "Duration of each phase of the last ICMP probe: resolve, setup (socket and request), rtt (the mean round trip of the replies).",
	"probe_icmp_reply_hop_limit":                    "TTL (IPv4) or hop limit (IPv6) of the last ICMP echo reply.",
	"vantage_icmp_packets_sent":                     "Echo requests the last ICMP probe sent.",
	"vantage_icmp_packets_received":                 "Echo replies the last ICMP probe received (duplicates counted once).",
	"probe_grpc_duration_seconds":                   "Duration of each phase of the last gRPC health check: resolve, connect, tls, check (blackbox_exporter's check spans connect, tls and check).",
	"probe_grpc_healthcheck_response":               "Serving status of the last gRPC health check: 1 for the status answered, 0 for the others (all 0 when the RPC failed).",
	"probe_grpc_status_code":                        "gRPC status code of the last health check RPC (0 OK, 5 NotFound, 12 Unimplemented, 14 Unavailable...).",
	"probe_grpc_ssl":                                "Whether the last gRPC health check connected over TLS.",
	"vantage_probes_total":                          "Probes run by this agent, by result: the SLI.",
	"vantage_probe_duration_seconds":                "Probe duration histogram (enable with [exporter] latency_histogram).",
	"vantage_probe_failing":                         "Whether this agent calls the target failing (after its consecutive-failure threshold).",
	"vantage_probe_consecutive_failures":            "Consecutive failed probes of the target from this agent.",
	"vantage_probe_last_run_timestamp_seconds":      "When this agent last probed the target, Unix seconds.",
	// Verdicts (exported by the target's leader only).
	"vantage_target_up":                           "1 unless a quorum of regions reports the target failing (0); exported by the target's leader only.",
	"vantage_target_verdict_unknown":              "1 when too few regions have fresh results to decide the target's state.",
	"vantage_target_regions_failing":              "Regions with a fresh failing vote for the target.",
	"vantage_target_regions_reporting":            "Regions with a fresh vote for the target.",
	"vantage_target_quorum":                       "Regions that must report failing for the target to be down.",
	"vantage_target_down_since_timestamp_seconds": "Start of the open incident (first failed observation), Unix seconds; 0 when up.",
	"vantage_incidents_total":                     "Incidents opened for the target while this agent led it.",
	"vantage_target_flaps_total":                  "Times the target recovered from an incident while this agent led it.",
	"vantage_target_maintenance":                  "1 while the target is in a maintenance window.",
	"vantage_target_slo_objective":                "The target's SLO objective (success ratio): the burn-rate rules compare against it.",
	"vantage_target_availability":                 "Share of the SLO window ([slo].window, or the time observed when shorter) the fleet's verdict had the target up, from the incident records: the figure the API and the status page show.",
	"vantage_target_cert_min_days_left":           "Days before its certificate expires that the target warns (VantageCertExpiringSoon); absent for targets without a certificate.",
	"vantage_detection_seconds":                   "Time from the first failed observation in any region to the quorum verdict.",
	"vantage_suppressed_failures_total":           "Failures seen by a region that stayed below quorum, by region.",
	// The agent itself.
	"vantage_cluster_members":                              "Cluster members this agent sees, by region and state.",
	"vantage_targets_assigned":                             "Targets this agent probes.",
	"vantage_targets_configured":                           "Targets in the loaded configuration.",
	"vantage_region_isolated":                              "1 when this agent believes its region is cut off; its failures then do not count.",
	"vantage_confirmations_total":                          "Confirm-on-failure requests by outcome: requested, confirmed, refuted, busy, timeout, rate_limited, served.",
	"vantage_config_last_reload_successful":                "Whether the last configuration reload succeeded.",
	"vantage_state_write_errors_total":                     "Writes of the agent's state directory that failed (a full or read-only disk); what they carried is written by the next write that succeeds.",
	"vantage_state_last_write_timestamp_seconds":           "When the agent last wrote its state directory successfully, Unix seconds; 0 before the first write.",
	"vantage_state_size_bytes":                             "Size of the agent's state file.",
	"vantage_config_last_reload_success_timestamp_seconds": "When the configuration was last loaded successfully, Unix seconds.",
	"vantage_build_info":                                   "Build information; always 1.",
	"vantage_memory_limit_bytes":                           "The agent's soft memory limit (the Go runtime's GOMEMLIMIT), by where it came from: env (GOMEMLIMIT), cgroup (90% of the container's limit), config ([agent] memory_limit), targets (derived from the number of targets).",
	"vantage_memory_limit_steps":                           "Steps (each 1/8 of it, at most 4) by which a memory limit derived from the targets has given way because the collector needed more than a quarter of the CPU to hold it; 0 when it holds. Set [agent] memory_limit to choose the trade yourself.",
	"vantage_probes_skipped_total":                         "Scheduled probes not run, by reason (overlap: previous run still going; max_in_flight).",
	"vantage_schedule_lateness_seconds":                    "How late scheduled probes started.",
	"vantage_probes_in_flight":                             "Probes running now.",
	"vantage_gossip_results_received_total":                "Observations received from other agents.",
	"vantage_gossip_messages_dropped_total":                "Gossip messages dropped, by reason.",
	"vantage_gossip_send_errors_total":                     "Direct gossip sends that failed.",
	"vantage_gossip_errors_total":                          "Errors memberlist reported (undecodable or unauthenticated packets, failed pushes); the log shows at most one per kind every 10s.",
	"vantage_gossip_heartbeat_gaps_total":                  "Heartbeats that revealed a missed observation (repaired by push/pull).",
	"vantage_cluster_incidents_opened_total":               "Incidents opened by this agent as leader, all targets.",
	"vantage_cluster_config_mismatch":                      "Members whose target set differs from this agent's.",
	"vantage_alerting_healthy":                             "1 when this agent delivers alerts to Alertmanager itself ([alerting]) and one accepted a request lately; the rule path then stays quiet for its verdicts.",
	"vantage_alerts_sent_total":                            "Alerts sent to each Alertmanager, by result (success, failure, dropped).",
	"vantage_alerts_pending":                               "Alerts waiting for delivery to each Alertmanager.",
	"vantage_alert_delivery_seconds":                       "From an alert's change of state (firing, resolved) to an Alertmanager accepting it.",
	"vantage_alertmanager_last_success_timestamp_seconds":  "When each Alertmanager last accepted alerts, Unix seconds.",
	"vantage_push_total":                                   "Pushes of this agent's series to [exporter.push].url, by result (success, error); a failed push is not retried, the next interval pushes the state of that moment.",
	"vantage_push_last_success_timestamp_seconds":          "When a push last succeeded, Unix seconds.",
}

// goVersion is exported for vantage_build_info.
var goVersion = runtime.Version()
