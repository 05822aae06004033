package main

import (
	"context"
	"fmt"
	"io"

	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/exporter/rules"
)

func runRules(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("rules", "Usage: vantage rules -config FILE [-job RE] [-runbook-base URL] > vantage-rules.yml\n"+
		"       vantage rules -alertmanager > alertmanager.yml\n\n"+
		"Prints a Prometheus rule file for the config: quorum down alerts with the targets'\n"+
		"labels, multi-window multi-burn-rate SLO alerts and recording rules, certificate expiry,\n"+
		"agent/region missing, region isolated, verdict unknown, config reload failed. The rules\n"+
		"aggregate by target: their number does not grow with the targets, and per-target\n"+
		"thresholds (slo_objective, min_days_left) reach Prometheus as series. Regenerate only\n"+
		"when targets start using a new label name or the [slo] window changes.\n"+
		"Check it with: promtool check rules --lint-fatal vantage-rules.yml\n\n"+
		"-alertmanager prints an Alertmanager configuration instead: pages routed at once, the\n"+
		"inhibit rules that keep one outage to one page, placeholder receivers to replace.", stderr)
	cfgPath := fs.String("config", "vantage.toml", "config file")
	job := fs.String("job", rules.DefaultJob, "regex on the job label of the Vantage scrape jobs")
	runbook := fs.String("runbook-base", rules.DefaultRunbookBase, "runbook URL prefix for targets without a runbook label")
	am := fs.Bool("alertmanager", false, "print an Alertmanager configuration (route, inhibit rules) instead of the rules")
	if c := parse(fs, args); c >= 0 {
		return c
	}
	if *am {
		_, _ = stdout.Write(rules.Alertmanager())
		return exitOK
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	out, err := rules.Generate(cfg, rules.Options{Job: *job, RunbookBase: *runbook})
	if err != nil {
		fmt.Fprintf(stderr, "rules: %v\n", err)
		return exitFail
	}
	_, _ = stdout.Write(out)
	return exitOK
}
