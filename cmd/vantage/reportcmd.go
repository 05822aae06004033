package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/agent/state"
	"github.com/vantage-probe/vantage/cluster"
)

const reportUsage = `Usage: vantage report [-url AGENT | -state-dir DIR] [-from DATE] [-to DATE] [-format markdown|csv|json] [-target GLOB]

Prints the SLO report of a period: per target the availability, the objective,
the error budget used and left, and the incident count; every incident with its
time to detect and to recover; the regions most often failing.

The figures come from a running agent's HTTP API (-url, the default: the local
agent) or from an agent's state directory (-state-dir), opened read-only; a
running agent holds its state file locked, so read it with -url instead.

DATE is an RFC 3339 time (2026-12-01T09:00:00Z), a day (2026-12-01, UTC), or an
age (7d, 36h: that long before now). The period defaults to the 28 days before
now. Markdown is for pasting into a review; csv has one row per target.
An agent behind basic auth: set VANTAGE_USER and VANTAGE_PASSWORD.

Examples:
  vantage report -from 2026-11-01 -to 2026-12-01 > november.md
  vantage report -url http://probe-eu-1:9115 -target 'checkout-*' -format csv
  vantage report -state-dir /var/lib/vantage/probe-eu-1 -from 7d -format json`

func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("report", reportUsage, stderr)
	agentURL := fs.String("url", "http://127.0.0.1:9115", "base URL of a running agent")
	stateDir := fs.String("state-dir", "", "an agent's state directory, read instead of an agent (read-only)")
	fromS := fs.String("from", "28d", "start of the period: RFC 3339, a day (YYYY-MM-DD, UTC) or an age (7d)")
	toS := fs.String("to", "", "end of the period (default now); same forms as -from")
	format := fs.String("format", "markdown", "markdown, csv or json")
	target := fs.String("target", "", "only targets whose name matches this glob (checkout-*)")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long (the agent's answer, or the state file's lock)")
	insecure := fs.Bool("insecure", false, "accept any certificate of an https:// agent")
	if c := parse(fs, args); c >= 0 {
		return c
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "report: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	now := time.Now()
	to := now
	var err error
	if *toS != "" {
		if to, err = parseWhen(*toS, now); err != nil {
			fmt.Fprintf(stderr, "report: -to: %v\n", err)
			return exitUsage
		}
	}
	from, err := parseWhen(*fromS, now)
	if err != nil {
		fmt.Fprintf(stderr, "report: -from: %v\n", err)
		return exitUsage
	}
	if !from.Before(to) {
		fmt.Fprintf(stderr, "report: -from (%s) must be before -to (%s)\n", from.Format(time.RFC3339), to.Format(time.RFC3339))
		return exitUsage
	}
	if *format != "markdown" && *format != "csv" && *format != "json" {
		fmt.Fprintf(stderr, "report: -format %q: want markdown, csv or json\n", *format)
		return exitUsage
	}
	var rep *state.Report
	if *stateDir != "" {
		st, err := state.OpenReadOnly(*stateDir, *timeout)
		if err != nil {
			fmt.Fprintf(stderr, "report: %v\n", err)
			return exitFail
		}
		defer st.Close()
		if rep, err = st.Report(state.ReportQuery{From: from, To: to, Target: *target}, now); err != nil {
			fmt.Fprintf(stderr, "report: %v\n", err)
			return exitFail
		}
	} else {
		q := url.Values{"from": {from.UTC().Format(time.RFC3339)}, "to": {to.UTC().Format(time.RFC3339)}}
		if *target != "" {
			q.Set("target", *target)
		}
		rep = &state.Report{}
		if err := getJSON(ctx, *agentURL, "/api/v1/report?"+q.Encode(), *timeout, *insecure, rep); err != nil {
			fmt.Fprintf(stderr, "report: %v\n", err)
			return exitFail
		}
	}
	switch *format {
	case "json":
		err = rep.WriteJSON(stdout)
	case "csv":
		err = rep.WriteCSV(stdout)
	default:
		err = rep.WriteMarkdown(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "report: %v\n", err)
		return exitFail
	}
	return exitOK
}

const incidentUsage = `Usage: vantage incident [-url AGENT | -state-dir DIR] [-json] ID

Prints one incident's timeline for a postmortem: the first failed probe and its
reason, the confirmation request to the other regions, the quorum (which regions),
the verdict and its leader, the alert sent to Alertmanager, the resolution; each
with its time and its offset from the first failed probe. IDs are in the status
page, /api/v1/incidents and vantage report (TARGET@UNIX_MS). An agent behind
basic auth: set VANTAGE_USER and VANTAGE_PASSWORD.

Examples:
  vantage incident api@1796605261176
  vantage incident -state-dir /var/lib/vantage/probe-eu-1 -json api@1796605261176`

func runIncident(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("incident", incidentUsage, stderr)
	agentURL := fs.String("url", "http://127.0.0.1:9115", "base URL of a running agent")
	stateDir := fs.String("state-dir", "", "an agent's state directory, read instead of an agent (read-only)")
	asJSON := fs.Bool("json", false, "print the incident record as JSON")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	insecure := fs.Bool("insecure", false, "accept any certificate of an https:// agent")
	if c := parse(fs, args); c >= 0 {
		return c
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "incident: name one incident ID (vantage incident -h)")
		return exitUsage
	}
	id := fs.Arg(0)
	var in cluster.Incident
	if *stateDir != "" {
		st, err := state.OpenReadOnly(*stateDir, *timeout)
		if err != nil {
			fmt.Fprintf(stderr, "incident: %v\n", err)
			return exitFail
		}
		defer st.Close()
		var found bool
		if in, found, err = st.Incident(id); err != nil || !found {
			if err == nil {
				err = fmt.Errorf("no incident %q in %s", id, st.Path())
			}
			fmt.Fprintf(stderr, "incident: %v\n", err)
			return exitFail
		}
	} else if err := getJSON(ctx, *agentURL, "/api/v1/incidents/"+url.PathEscape(id), *timeout, *insecure, &in); err != nil {
		fmt.Fprintf(stderr, "incident: %v\n", err)
		return exitFail
	}
	if *asJSON {
		e := json.NewEncoder(stdout)
		e.SetIndent("", "  ")
		_ = e.Encode(in)
		return exitOK
	}
	_ = state.WriteTimeline(stdout, &in, time.Now())
	return exitOK
}

// parseWhen reads a report bound: RFC 3339, a day (UTC), a minute, or an
// age before now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	if d, err := config.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time (2026-12-01T09:00:00Z), a day (2026-12-01) or an age (7d)", s)
}

// getJSON GETs base+path from an agent and decodes its JSON answer.
func getJSON(ctx context.Context, base, path string, timeout time.Duration, insecure bool, v any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u := strings.TrimRight(base, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if user, pass := os.Getenv("VANTAGE_USER"), os.Getenv("VANTAGE_PASSWORD"); user != "" {
		req.SetBasicAuth(user, pass)
	}
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: insecure}, //nolint:gosec // operator's choice
	}}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("%s: %w", u, err)
	}
	return nil
}
