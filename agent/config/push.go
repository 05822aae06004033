package config

import (
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/vantage-probe/vantage/probe"
)

// Push defaults, each with why.
const (
	defaultPushInterval = 15 * time.Second // a common scrape interval: the same resolution as pull
	minPushInterval     = time.Second      // VictoriaMetrics' timestamps are milliseconds, but below 1s a push is load
	defaultPushJob      = "vantage"        // what a scrape job would be called; rules.DefaultJob matches it
)

// pushReserved are the label names the agent's own series carry, besides
// the targets' labels: a push label with one of them would give a series
// that label twice. instance is the push's own (the node name), as a
// scrape sets it. TestPushLabelsCannotShadowSeriesLabels checks this list
// against a real agent's /metrics.
var pushReserved = []string{
	"instance", "alertname",
	"target", "type", "region", "phase", "result", "le", "quantile", "reason", "state", "alertmanager", "node", "loop",
	"version", "goversion", "compiler", "GOARCH", "GOOS", "GOROOT",
}

// buildPush validates [exporter.push]. It runs after the targets are
// built: a push label may not be one of their label names.
func (l *loader) buildPush(sc scope, in *pushSchema, out *Push, targets []*Target) {
	if in == nil {
		return
	}
	switch {
	case !in.URL.Set:
		sc.errf(ErrRequired, "", "url is required: the import endpoint, such as http://victoriametrics:8428/api/v1/import/prometheus")
	case in.URL.ok():
		out.URL = pushURL(sc, in.URL.V)
	}
	out.Interval = defaultPushInterval
	if d, ok := sc.duration("interval", in.Interval, 0); ok {
		if d < minPushInterval {
			sc.errf(ErrInvalid, "interval", "%q: must be at least %v", in.Interval.V, minPushInterval)
		} else {
			out.Interval = d
		}
	}
	out.Labels = map[string]string{"job": defaultPushJob}
	for _, k := range slices.Sorted(maps.Keys(in.Labels.or(nil))) {
		v := in.Labels.V[k]
		key := "labels." + k
		switch {
		case !labelNameRe.MatchString(k):
			sc.errf(ErrLabel, key, "%q is not a valid Prometheus label name", k)
		case strings.HasPrefix(k, "__"):
			sc.errf(ErrLabel, key, "%q: names starting with __ are reserved to Prometheus", k)
		case k == "instance":
			sc.errf(ErrLabel, key, `"instance" is set by the push itself: the agent's node name ([agent].node or -node), so that every agent's series stay apart`)
		case slices.Contains(pushReserved, k):
			sc.errf(ErrLabel, key, "%q is a label of the agent's own series; pushed, they would carry it twice", k)
		case v == "":
			sc.errf(ErrLabel, key, "empty value: VictoriaMetrics drops empty labels, so the pushed series would differ from a scrape")
		default:
			if t := targetWithLabel(targets, k); t != nil {
				sc.errf(ErrLabel, key, "%q is also a label of target %q (%s): its series would carry it twice", k, t.Name, t.Pos)
				continue
			}
			out.Labels[k] = v
		}
	}
	out.BasicAuthUser, out.BasicAuthPassword, out.BearerToken = sc.clientAuth(in.BasicAuth, in.BearerTokenFile, in.BearerTokenEnv)
	for _, k := range tlsKeysSet(&in.tlsClientSchema) {
		sc.errf(ErrUnsupported, k, "not supported for push: VictoriaMetrics/metrics pushes with Go's default HTTP client "+
			"(system CA roots, no client certificate). For a private CA or mTLS, push to a vmagent next to the agent "+
			"(http://127.0.0.1:8429/api/v1/import/prometheus) and let it remote-write over TLS")
	}
	if !out.Enabled() {
		// Without a usable URL nothing pushes: no interval, no labels.
		*out = Push{}
	}
}

// pushURL validates the import endpoint's URL; "" when it is unusable.
func pushURL(sc scope, raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		sc.errf(ErrInvalid, "url", "%q: %v", probe.RedactURL(raw), probe.RedactParseError(raw, err))
	case u.Scheme != "http" && u.Scheme != "https":
		sc.errf(ErrInvalid, "url", "%q: scheme must be http or https", probe.RedactURL(raw))
	case u.Host == "":
		sc.errf(ErrInvalid, "url", "%q: no host", probe.RedactURL(raw))
	case u.User != nil:
		sc.errf(ErrSecret, "url", "%q: credentials in the URL would show in logs and on the status page; use basic_auth with password_file", probe.RedactURL(raw))
	case u.Fragment != "":
		sc.errf(ErrInvalid, "url", "%q: a fragment is never sent", probe.RedactURL(raw))
	case u.Path == "" || u.Path == "/":
		sc.errf(ErrInvalid, "url", "%q: no path; want the import endpoint: %s for VictoriaMetrics single-node or vmagent, "+
			"%s for vminsert (tenant 0)", probe.RedactURL(raw), u.JoinPath("/api/v1/import/prometheus"), u.JoinPath("/insert/0/prometheus/api/v1/import/prometheus"))
	default:
		if err := checkPort(u); err != nil {
			sc.errf(ErrInvalid, "url", "%q: %v", probe.RedactURL(raw), err)
			return ""
		}
		return raw
	}
	return ""
}

// targetWithLabel is the first target that has label name k, or nil.
func targetWithLabel(targets []*Target, k string) *Target {
	for _, t := range targets {
		if _, ok := t.Labels[k]; ok {
			return t
		}
	}
	return nil
}
