package rules

import (
	"bytes"
	"strings"
)

// InhibitRules are the Alertmanager inhibit rules that keep one outage to
// one page: while VantageTargetDown fires for a target, its burn-rate and
// verdict-unknown alerts are held back (the rules already leave the
// outage's burn out of the fast-burn alert for its short window; this
// covers the moments between two evaluations and the slow burn ticket).
// The certificate alert is not inhibited: an expiring certificate is
// another problem with its own fix.
var InhibitRules = []Inhibit{{
	Source: `alertname="` + AlertTargetDown + `"`,
	Target: `alertname=~"` + alertFastBurn + `|` + alertSlowBurn + `|` + alertVerdictUnknown + `"`,
	Equal:  []string{"target"},
}}

// Inhibit is one Alertmanager inhibit rule.
type Inhibit struct {
	Source, Target string // one matcher each
	Equal          []string
}

// Alertmanager returns an Alertmanager configuration (YAML) that routes
// Vantage's alerts: pages at once (group_wait 0s: the fleet's verdict is
// already debounced, and one target is one group), tickets batched, and the
// inhibit rules. Its receivers are webhooks at placeholder URLs to replace
// with the real integrations (PagerDuty, Opsgenie, Slack, email).
func Alertmanager() []byte {
	var b bytes.Buffer
	b.WriteString(`# Alertmanager configuration for Vantage, printed by ` + "`vantage rules -alertmanager`" + `.
# Replace the receivers' webhook URLs with your integrations (pagerduty_configs,
# opsgenie_configs, slack_configs, email_configs); keep the route and inhibit rules.
route:
  receiver: tickets
  # One group per alert and target: an outage of one target never waits for,
  # or is merged with, another's.
  group_by: [alertname, target]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    # Pages go out at once: the fleet's verdict is already debounced (a quorum
    # of regions agreeing), so waiting only delays the page.
    - matchers: ['severity="page"']
      receiver: pager
      group_wait: 0s
inhibit_rules:
`)
	for _, l := range strings.SplitAfter(InhibitRulesYAML(), "\n") {
		if l != "" {
			b.WriteString("  " + l)
		}
	}
	b.WriteString(`receivers:
  - name: pager
    webhook_configs:
      - url: "http://pager.example.com/vantage"
  - name: tickets
    webhook_configs:
      - url: "http://tickets.example.com/vantage"
`)
	return b.Bytes()
}

// InhibitRulesYAML is the value of Alertmanager's inhibit_rules for
// InhibitRules: a YAML list, one rule per item, not indented.
func InhibitRulesYAML() string {
	var b strings.Builder
	for _, r := range InhibitRules {
		b.WriteString("- source_matchers: [" + yamlQuote(r.Source) + "]\n")
		b.WriteString("  target_matchers: [" + yamlQuote(r.Target) + "]\n")
		b.WriteString("  equal: [" + strings.Join(r.Equal, ", ") + "]\n")
	}
	return b.String()
}
