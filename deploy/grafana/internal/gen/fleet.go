package gen

// fleet is the overview on-call opens first: what is down, how fast the
// fleet noticed, what it suppressed, and whether the fleet itself is
// healthy.
func fleet() *Dashboard {
	vt := []string{mJob, mTeam, mTargets} // verdict series of the selected targets
	up := "min by(target) (" + sel("vantage_target_up", vt...) + ")"
	unknown := "max by(target) (" + sel("vantage_target_verdict_unknown", vt...) + ")"
	downSince := "max by(target) (" + sel("vantage_target_down_since_timestamp_seconds", vt...) + ")"
	detection := sel("vantage_detection_seconds_bucket", mJob)

	l := &layout{}
	l.row("Now", false,
		stat("Targets down",
			"How many targets does the fleet call down right now? Down means at least the target's quorum of regions "+
				"(min_regions) sees it failing: a failure one region alone sees never counts. The minimum over leader "+
				"agents, as the VantageTargetDown rule takes it, so a leader hand-over cannot hide a down verdict. "+
				"Not zero: VantageTargetDown is paging (unless the target is in maintenance).", 4, 4,
			instant("count("+up+" == 0) or vector(0)", "down")).
			thresholds(thresholds("green", 1, "red")),
		stat("Targets unknown",
			"For how many targets can the fleet not decide, because fewer regions than the quorum have fresh results? "+
				"An outage of those targets would go unnoticed. Look for missing agents or regions (Agents row); "+
				"VantageVerdictUnknown opens a ticket after 5 minutes.", 4, 4,
			instant("count("+unknown+" == 1) or vector(0)", "unknown")).
			thresholds(thresholds("green", 1, "orange")),
		stat("Open incidents",
			"How many incidents are open now? An incident opens when the quorum calls a target down and resolves once "+
				"the quorum has seen it up for one interval, so a flapping target holds one incident, not one per flap. "+
				"The table What is down now names them.", 4, 4,
			instant("count("+downSince+" > 0) or vector(0)", "open")).
			thresholds(thresholds("green", 1, "red")),
		stat("Regions isolated",
			"Is any region cut off from the network? An agent that sees most of its targets fail while other regions "+
				"see them up marks its region isolated; its failures then count toward no verdict and no SLI. "+
				"Not zero: VantageRegionIsolated; check that region's egress, DNS and firewall.", 4, 4,
			instant("count(max by(region) ("+sel("vantage_region_isolated", mJob, mRegion)+") == 1) or vector(0)", "isolated")).
			thresholds(thresholds("green", 1, "orange")),
		stat("Agents not scraped",
			"Can Prometheus scrape every agent? An agent it cannot scrape for 2 minutes raises VantageAgentMissing; "+
				"its targets move to the other agents of its region, and a region without agents has no votes.", 4, 4,
			instant("count("+sel("up", mJob)+" == 0) or vector(0)", "not scraped")).
			thresholds(thresholds("green", 1, "orange")),
		stat("Time to detect, p95",
			"How long after the first failed probe did the quorum call the outages of the selected time range (95th "+
				"percentile)? With confirm-on-failure this is about one probe timeout; a probe interval or more means "+
				"confirmations are not answered (see Confirmation traffic). Over every agent: the histogram has no "+
				"target label.", 4, 4,
			instant("histogram_quantile(0.95, sum by(le) (increase("+detection+"[$__range])))", "p95")).
			unit("s").decimals(1).nanText("no incident").thresholds(thresholds("green", 5, "orange", 30, "red")),
	)

	l.row("Targets", false,
		stateTimeline("Verdict by target",
			"Which targets were down or undecided, and when? Each band is the fleet's verdict on one target: up, "+
				"DOWN by quorum, or unknown (too few regions report to decide). Hover a band for its start and length.", 24, 8,
			q(up+" + 2 * "+unknown, "{{target}}")).
			valueText("0", "DOWN", "red", "1", "up", "green", "2", "DOWN", "red", "3", "unknown", "orange"),
		timeseries("Regions failing per target",
			"How many regions see each target failing? Below the quorum (dashed: the smallest quorum among the shown "+
				"targets) it is a problem of one region's path, suppressed and paging nobody; at the quorum it is an outage.", 12, 8,
			q("max by(target) ("+sel("vantage_target_regions_failing", vt...)+")", "{{target}}"),
			q("min("+sel("vantage_target_quorum", vt...)+")", "quorum")).
			decimals(0).override("byName", "quorum", dashedRed()...),
		tablePanel("What is down now",
			"What is down right now, since when, and in how many regions? Down since is the incident's start: the "+
				"first failed probe in any region, not the moment the quorum agreed. Empty while nothing is down.", 12, 8,
			map[string]string{"target": "Target", "type": "Type", "Value #A": "Down since", "Value #B": "Open for", "Value #C": "Regions failing"},
			table(downSince+" * 1000 > 0"),
			table("time() - ("+downSince+" > 0)"),
			table("max by(target) ("+sel("vantage_target_regions_failing", vt...)+") and on(target) ("+downSince+" > 0)")).
			noValue("nothing is down").
			override("byName", "Down since", Property{ID: "unit", Value: "dateTimeAsIso"}).
			override("byName", "Open for", Property{ID: "unit", Value: "s"}),
		barGauge("Incidents per target",
			"Which targets had incidents in the selected time range, and how many? Counted by each target's leader "+
				"when it opens one; a new leader continuing an open incident does not count it again.", 24, 6,
			instant("round(sum by(target) (increase("+sel("vantage_incidents_total", vt...)+"[$__range]))) > 0", "{{target}}")).
			decimals(0).noValue("no incidents").thresholds(thresholds("orange", 2, "red")),
	)

	l.row("Detection and suppression", false,
		heatmap("Time to detect",
			"How long did the fleet take to call each outage, over time? Each cell counts the incidents detected in "+
				"that interval by their time from the first failed probe anywhere to the quorum verdict. Seconds mean "+
				"confirm-on-failure works; tens of seconds mean detection waits for probe intervals.", 12, 8,
			q("sum by(le) (increase("+detection+rateWindow+"))", "{{le}}")),
		timeseries("Time to detect, p50 and p95",
			"Is detection getting slower? Median and 95th percentile of the time to detect of the incidents "+
				"detected in each interval; a point only where incidents were detected.", 12, 8,
			q("histogram_quantile(0.5, sum by(le) (rate("+detection+rateWindow+")))", "p50"),
			q("histogram_quantile(0.95, sum by(le) (rate("+detection+rateWindow+")))", "p95")).
			unit("s").points(),
		timeseries("Suppressed one-region failures by region",
			"Which regions see failures the others do not? Each is a failure that stayed below the quorum and paged "+
				"nobody, counted once per streak in the region that saw it. Many from one region: that region's network "+
				"path (route, DNS, egress); from every region in turn: a flaky target. The series has no target label: "+
				"the status page names the target.", 12, 8,
			// The counter of a region is created at its first suppression.
			q("sum by(region) ("+increaseInWindow(sel("vantage_suppressed_failures_total", mJob, mRegion), "$__rate_interval")+")", "{{region}}")).
			bars().decimals(0),
		timeseries("Confirmation traffic",
			"Are failures confirmed at once? On a new failure an agent asks the other regions to re-probe (requested); "+
				"they run it (served) and agree (confirmed) or not (refuted). busy, timeout and rate_limited are "+
				"confirmations lost: time to detect then grows to a probe interval. slow_probe: a probe running far "+
				"longer than usual asked for confirmation before it timed out.", 12, 8,
			q("sum by(result) (rate("+sel("vantage_confirmations_total", mJob)+rateWindow+"))", "{{result}}")).
			unit("reqps"),
	)

	l.row("Agents", true,
		stateTimeline("Isolated regions",
			"When was a region cut off? isolated: its agent saw most targets fail while other regions saw them up, "+
				"so its votes were left out of every verdict and of the SLI until its results agreed again.", 12, 6,
			q("max by(region) ("+sel("vantage_region_isolated", mJob, mRegion)+")", "{{region}}")).
			valueText("0", "reachable", "green", "1", "isolated", "red"),
		timeseries("Members per region and state",
			"Does every region have live agents? The most members any agent sees in each region and state (alive, "+
				"suspect, dead, left). Dead members and none alive in a region is VantageRegionMissing; alive and dead "+
				"at once in one region usually means a partition.", 12, 6,
			q("max by(region, state) ("+sel("vantage_cluster_members", mJob, mRegion)+") > 0", "{{region}} {{state}}")).
			decimals(0),
		timeseries("Targets probed per agent",
			"Is the work spread evenly, and did an agent lose or take over targets? A join or leave moves only the "+
				"targets it must; an agent at zero probes nothing.", 12, 6,
			q(withRegion(sel("vantage_targets_assigned", mJob)), "{{region}} {{instance}}")).
			decimals(0),
		timeseries("Config reloads failing",
			"Is every agent running its current config file? 0: the last reload failed and the agent keeps its last "+
				"good config (VantageConfigReloadFailed after 5 minutes; vantage check-config FILE shows why).", 12, 6,
			q(withRegion(sel("vantage_config_last_reload_successful", mJob)), "{{region}} {{instance}}")).
			decimals(0).minMax(ptr(0.0), ptr(1.0)).colorByThresholds().thresholds(thresholds("red", 1, "green")),
	)

	l.row("Direct alert delivery", true,
		stateTimeline("Alert delivery by agent",
			"Can each agent page Alertmanager itself? delivering: an Alertmanager accepted its last request, so its "+
				"targets page a second after the quorum and the VantageTargetDown rule stays quiet for them. not "+
				"delivering: no [alerting], or no Alertmanager answers; Prometheus' rule then pages for it, a scrape and "+
				"an evaluation later.", 24, 6,
			q(withRegion(sel("vantage_alerting_healthy", mJob)), "{{region}} {{instance}}")).
			valueText("0", "not delivering", "orange", "1", "delivering", "green"),
		timeseries("Alerts sent by result",
			"Do the alerts reach every Alertmanager? Requests per second to each, by result: failure and dropped "+
				"mean an Alertmanager is refusing or unreachable (the status page names it and the error).", 12, 7,
			q("sum by(alertmanager, result) (rate("+sel("vantage_alerts_sent_total", mJob)+rateWindow+"))", "{{alertmanager}} {{result}}")).
			unit("reqps"),
		timeseries("Alerts waiting for delivery",
			"Are alerts piling up for an Alertmanager? Alerts queued for each; a queue that grows means that "+
				"Alertmanager is not accepting them.", 12, 7,
			q("sum by(alertmanager) ("+sel("vantage_alerts_pending", mJob)+")", "{{alertmanager}}")).
			decimals(0),
	)

	return dashboard("vantage-fleet", "Vantage / Fleet overview",
		"What is down, how fast the fleet noticed, what it suppressed, and whether the agents themselves are healthy.",
		[]Variable{datasourceVar(), jobVar(), teamVar(), targetsVar(), regionVar()},
		[]Annotation{incidentAnnotation(vt...)}, l)
}
