package gen

// slo shows the error budget as the generated rules compute it: the
// recorded availability and budget over the SLO window, and each burn-rate
// window against the target's budget, with the thresholds of the burn
// alerts. It reads the recording rules of `vantage rules` only (plus the
// objective each leader exports): without them loaded it is empty.
func slo() *Dashboard {
	r := []string{mTeam, mTargets} // recorded series: target, type and the targets' own labels, no job

	// burn is a window's error ratio over the target's error budget
	// (1 - objective), as the burn-rate alerts compare them. The 1d and 3d
	// ratios are recorded every 4 minutes (group vantage.slo.long): where
	// one value is shown (now), the last recording of the past 10 minutes.
	burn := func(window string, now bool) string {
		ratio := sel("vantage:probe_error_ratio:rate"+window, r...)
		if now && (window == "1d" || window == "3d") {
			ratio = "last_over_time(" + ratio + "[10m])"
		}
		return ratio + " / on(target) group_left() vantage:target_error_budget:ratio"
	}
	availability := sel("vantage:slo_availability:ratio_rate${window}", r...)
	budget := sel("vantage:slo_error_budget_remaining:ratio", r...)

	burnPanel := func(title, desc, long, short string, factor float64) *Panel {
		return timeseries(title, desc, 12, 8,
			q(burn(long, false), "{{target}} "+long),
			q(burn(short, false), "{{target}} "+short)).
			decimals(1).thresholds(thresholds("green", factor, "red")).thresholdLines().
			override("byRegexp", ".* "+short, Property{ID: "custom.lineStyle", Value: map[string]any{"dash": []int{4, 4}, "fill": "dash"}})
	}

	l := &layout{}
	l.row("Error budget", false,
		barGauge("Availability over the SLO window",
			"Which targets meet their objective over the SLO window? The share of probes that succeeded, over every "+
				"region (isolated agents and maintenance windows left out, as the verdict leaves them out). Set the "+
				"window variable to your [slo] window: the recording's name carries it.", 12, 8,
			instant("last_over_time("+availability+"[10m])", "{{target}}")).
			unit("percentunit").decimals(3).minMax(ptr(0.99), ptr(1.0)).thresholds(thresholds("red", 0.999, "green")),
		barGauge("Error budget left",
			"How much of its error budget has each target left over the SLO window? 100%: untouched, 0: spent, "+
				"negative: the SLO is missed. The budget is 1 - the target's objective.", 12, 8,
			instant("last_over_time("+budget+"[10m])", "{{target}}")).
			unit("percentunit").decimals(1).minMax(ptr(-1.0), ptr(1.0)).thresholds(thresholds("red", 0, "orange", 0.25, "green")),
		timeseries("Error budget left over time",
			"How fast has the budget gone, and did one event spend most of it? The budget left over the SLO window, "+
				"recorded every 4 minutes.", 12, 8,
			q(budget, "{{target}}")).
			unit("percentunit").thresholds(thresholds("red", 0, "orange", 0.25, "green")).thresholdLines(),
		timeseries("Failed probes, 5m",
			"What share of each target's probes failed in the last 5 minutes, over every region? The SLI that every "+
				"burn rate is built from: isolated agents and maintenance windows are left out.", 12, 8,
			q(sel("vantage:probe_error_ratio:rate5m", r...), "{{target}}")).
			unit("percentunit"),
	)

	windows := []string{"5m", "30m", "1h", "2h", "6h", "1d", "3d"}
	rename := map[string]string{"target": "Target", "Value #A": "Objective"}
	targets := []Target{table("max by(target) (" + sel("vantage_target_slo_objective", mJob, mTeam, mTargets) + ")")}
	for i, w := range windows {
		targets = append(targets, table(burn(w, true)))
		rename["Value #"+string(rune('B'+i))] = "Burn " + w
	}
	l.row("Burn rates", false,
		tablePanel("Burn rates now",
			"Which targets burn their budget fastest now, and over which window? A burn rate of 1 spends exactly "+
				"the budget over the SLO window; the fast-burn page wants 14.4 over 1h and 5m, or 6 over 6h and 30m; the "+
				"slow-burn ticket 3 over 1d and 2h, or 1 over 3d and 6h.", 24, 8,
			rename, targets...).
			decimals(2).
			thresholds(thresholds("green", 1, "yellow", 3, "orange", 6, "red")).
			override("byRegexp", "Burn .*", Property{ID: "custom.cellOptions", Value: map[string]any{"type": "color-text"}}).
			override("byName", "Objective", Property{ID: "unit", Value: "percentunit"}, Property{ID: "decimals", Value: 3}),
		burnPanel("Fast burn: 1h and 5m",
			"Is a target burning budget fast enough to page? VantageErrorBudgetFastBurn fires when both the 1h and "+
				"the 5m burn rate (dashed) stay above 14.4 for a minute: 2% of a 28-day budget in an hour. Not for an "+
				"outage that already paged as VantageTargetDown.", "1h", "5m", 14.4),
		burnPanel("Fast burn: 6h and 30m",
			"Is a target burning budget fast over hours rather than minutes? The fast-burn alert's second pair: both "+
				"the 6h and the 30m burn rate (dashed) above 6 for a minute, 5% of a 28-day budget in 6 hours.", "6h", "30m", 6),
		burnPanel("Slow burn: 1d and 2h",
			"Is a target spending its budget steadily? VantageErrorBudgetSlowBurn (a ticket) fires when both the 1d "+
				"and the 2h burn rate (dashed) are above 3. The 1d window is recorded every 4 minutes.", "1d", "2h", 3),
		burnPanel("Slow burn: 3d and 6h",
			"Will a target run out of budget before the window ends? The slow-burn alert's second pair: both the 3d "+
				"and the 6h burn rate (dashed) above 1, which spends the whole budget within the window. The 3d window "+
				"is recorded every 4 minutes.", "3d", "6h", 1),
	)

	window := Variable{
		Current:     map[string]any{"text": "28d", "value": "28d"},
		Description: "The [slo] window of the agents' config (default 28d): the recording rule vantage:slo_availability:ratio_rate<window> carries it in its name.",
		Label:       "SLO window", Name: "window",
		Options: []any{map[string]any{"selected": true, "text": "28d", "value": "28d"}},
		Query:   "28d", Type: "textbox",
	}
	d := dashboard("vantage-slo", "Vantage / SLO and error budget",
		"Availability and error budget left per target over the SLO window, and the burn rates the burn-rate alerts compare, from the recording rules of `vantage rules`.",
		[]Variable{datasourceVar(), jobVar(), teamVar(), targetsVar(), window},
		[]Annotation{incidentAnnotation(mJob, mTeam, mTargets)}, l)
	d.Time = TimeRange{From: "now-7d", To: "now"}
	return d
}
