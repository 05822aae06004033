package gen

// target is one target, in depth: the verdict and its vote, what each
// region sees, where the time goes, the certificate, DNS and HTTP facts.
// The panels in the Regions, Latency and Protocol rows read only
// blackbox_exporter's series names (README.md, Dashboards).
func target() *Dashboard {
	v := []string{mJob, mTarget}          // the target's verdict series (exported by its leader)
	o := []string{mJob, mTarget, mRegion} // its observations, from every agent that probes it

	l := &layout{}
	l.row("Verdict", false,
		stat("Verdict",
			"Is this target up, down or undecided right now? DOWN: at least its quorum of regions sees it failing, "+
				"and VantageTargetDown pages. unknown: too few regions report fresh results to decide.", 6, 5,
			instant("min("+sel("vantage_target_up", v...)+") + 2 * max("+sel("vantage_target_verdict_unknown", v...)+")", "verdict")).
			valueText("0", "DOWN", "red", "1", "up", "green", "2", "DOWN", "red", "3", "unknown", "orange"),
		stat("Down since",
			"When did the open incident start? Its first failed probe in any region, which is earlier than the moment "+
				"the quorum agreed.", 6, 5,
			instant("max("+sel("vantage_target_down_since_timestamp_seconds", v...)+") * 1000", "down since")).
			unit("dateTimeFromNow").valueText("0", "not down", "green").thresholds(thresholds("green", 1, "red")),
		stat("Incidents",
			"How many incidents did this target have in the selected time range? A flapping target holds one "+
				"incident per episode, not one per flap.", 6, 5,
			instant("round(sum(increase("+sel("vantage_incidents_total", v...)+"[$__range])))", "incidents")).
			decimals(0).thresholds(thresholds("green", 1, "orange")),
		stat("Error budget left",
			"How much of its error budget does the target have left over the SLO window, and what is its objective? "+
				"Below 0 the SLO is missed. The budget is recorded every 4 minutes.", 6, 5,
			instant("last_over_time("+sel("vantage:slo_error_budget_remaining:ratio", mTarget)+"[10m])", "budget left"),
			instant("max("+sel("vantage_target_slo_objective", v...)+")", "objective")).
			unit("percentunit").decimals(2).thresholds(thresholds("red", 0, "orange", 0.25, "green")).
			override("byName", "objective", Property{ID: "color", Value: map[string]any{"fixedColor": "blue", "mode": "fixed"}}, Property{ID: "decimals", Value: 3}),
		timeseries("Regions failing, reporting and quorum",
			"How close is the target to down? Regions failing against the quorum (down when failing reaches it) and "+
				"regions reporting fresh results (unknown when fewer than the quorum report).", 12, 8,
			q("max("+sel("vantage_target_regions_failing", v...)+")", "failing"),
			q("max("+sel("vantage_target_regions_reporting", v...)+")", "reporting"),
			q("max("+sel("vantage_target_quorum", v...)+")", "quorum")).
			decimals(0).
			override("byName", "quorum", dashedRed()...).
			override("byName", "failing", Property{ID: "color", Value: map[string]any{"fixedColor": "orange", "mode": "fixed"}}),
		stateTimeline("Success by region",
			"Which regions could reach the target, and when did that change? The last probe of each region (failed "+
				"if any of the region's agents failed). Failures in one region only are that region's path and are "+
				"suppressed; failures in the quorum's worth of regions at once are an outage.", 12, 8,
			q("min by(region) ("+sel("probe_success", o...)+")", "{{region}}")).
			valueText("0", "failed", "red", "1", "ok", "green"),
	)

	l.row("Latency", false,
		timeseries("Probe duration by region",
			"How long does a whole probe take from each region? A region much slower than the others points at its "+
				"network path; all slower at once, at the target.", 12, 8,
			q("max by(region) ("+sel("probe_duration_seconds", o...)+")", "{{region}}")).
			unit("s"),
		timeseries("Latency by phase",
			"Where does the time go? HTTP: resolve, connect, tls, processing (waiting for the server), transfer; DNS, "+
				"TCP/TLS, ICMP (resolve, setup, rtt) and gRPC (resolve, connect, tls, check) targets: their own phases. Stacked, averaged over the selected regions: pick one region to "+
				"see its own. Only the query of the target's type returns data.", 12, 8,
			q("avg by(phase) ("+sel("probe_http_duration_seconds", o...)+")", "{{phase}}"),
			q("avg by(phase) ("+sel("probe_dns_duration_seconds", o...)+")", "{{phase}}"),
			q("avg by(phase) ("+sel("probe_tcp_duration_seconds", o...)+")", "{{phase}}"),
			q("avg by(phase) ("+sel("probe_icmp_duration_seconds", o...)+")", "{{phase}}"),
			q("avg by(phase) ("+sel("probe_grpc_duration_seconds", o...)+")", "{{phase}}")).
			unit("s").stacked(),
		timeseries("Failed probes by region",
			"What share of each region's probes failed? The SLI the error budget is spent from, region by region: "+
				"one region failing alone burns budget without the target ever being down.", 24, 7,
			q("sum by(region) (rate("+sel("vantage_probes_total", append(o, `result="failure"`)...)+rateWindow+")) / "+
				"sum by(region) (rate("+sel("vantage_probes_total", o...)+rateWindow+"))", "{{region}}")).
			unit("percentunit").minMax(ptr(0.0), ptr(1.0)),
	)

	l.row("Protocol", false,
		timeseries("Certificate days left",
			"When does the certificate the target presents expire, as each region sees it? The earliest NotAfter "+
				"of the chain, also for an expired or unverifiable certificate. Below the dashed warning line "+
				"(min_days_left, 14 days unless set) VantageCertExpiringSoon opens a ticket; the target stays up until "+
				"the certificate has expired.", 12, 8,
			q("min by(region) ("+sel("probe_ssl_earliest_cert_expiry", o...)+" - time()) / 86400", "{{region}}"),
			q("max("+sel("vantage_target_cert_min_days_left", v...)+")", "warning threshold")).
			unit("d").decimals(1).override("byName", "warning threshold", dashedRed()...),
		stateTimeline("HTTP status by region",
			"What did the target answer each region? The final status code after redirects: red for 5xx, orange for "+
				"4xx, green for 2xx. Whether a status fails the probe depends on the target's valid_status.", 12, 8,
			q("max by(region) ("+sel("probe_http_status_code", o...)+")", "{{region}}")).
			thresholds(thresholds("red", 200, "green", 300, "blue", 400, "orange", 500, "red")),
		timeseries("DNS answers and response code",
			"Does the resolver still answer, with how many records? Answer records per region, and the response "+
				"code (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, 5 REFUSED). Answers dropping to 0 with NOERROR: the name lost "+
				"its records.", 12, 8,
			q("min by(region) ("+sel("probe_dns_answer_rrs", o...)+")", "{{region}} answers"),
			q("max by(region) ("+sel("probe_dns_rcode", o...)+")", "{{region}} rcode")).
			decimals(0).override("byRegexp", ".* rcode", dashedRed()...),
		stateTimeline("HTTP version by region",
			"Which HTTP version does the target answer each region with (1.1, 2, 3)? A change after a deploy (HTTP/2 "+
				"or HTTP/3 lost) often explains a change in latency.", 12, 8,
			q("max by(region) ("+sel("probe_http_version", o...)+")", "{{region}}")).
			thresholds(thresholds("blue")),
	)

	return dashboard("vantage-target", "Vantage / Target",
		"One target in depth: the fleet's verdict and its vote, what each region sees, where the time goes, the certificate, DNS and HTTP facts.",
		[]Variable{datasourceVar(), jobVar(), teamVar(), targetVar(), regionVar()},
		[]Annotation{incidentAnnotation(v...)}, l)
}
