package alertmanager

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/VictoriaMetrics/metrics"

	"github.com/vantage-probe/vantage/probe"
)

// Config is what New needs. Zero values take the defaults named on each
// field.
type Config struct {
	// URLs are the Alertmanagers' base URLs, e.g. http://am-1:9093 or
	// http://host/prefix. Every alert goes to each of them, as Prometheus
	// sends to every member of an Alertmanager cluster: the cluster
	// de-duplicates notifications, and any one member that hears of the
	// alert can page.
	URLs []string
	// Timeout bounds each POST, and the final flush when Run ends.
	// Default 10s.
	Timeout time.Duration
	// ResendInterval is how often active alerts (firing, and resolved ones
	// still in the caller's list) are re-sent. Default 1m.
	ResendInterval time.Duration
	// TLS is the client TLS configuration (CA, client certificate); nil
	// means the system defaults. It is cloned, never modified.
	TLS *tls.Config
	// BasicAuthUser and BasicAuthPassword, or BearerToken (not both), are
	// sent with every request.
	BasicAuthUser, BasicAuthPassword string
	BearerToken                      string
	// ExternalLabels are added to every alert's labels unless the alert
	// sets that label, as Prometheus' external_labels are.
	ExternalLabels map[string]string
	// MaxPending bounds, per Alertmanager, the distinct alerts waiting for
	// delivery; a new alert beyond it is dropped and counted (its next
	// resend tries again). Default 10000.
	MaxPending int
	// Metrics is the agent's own set (never the global one); nil means a
	// private set nobody reads.
	Metrics *metrics.Set
	// Logger gets delivery errors, at most one line per Alertmanager per
	// 10 s. Nil discards.
	Logger *slog.Logger
	// Now is the clock, for tests; default time.Now.
	Now func() time.Time
}

// Defaults, each as Prometheus has it, so that an agent paging directly
// behaves like the Prometheus it short-cuts.
const (
	// DefaultTimeout is Prometheus' alertmanager_config timeout.
	DefaultTimeout = 10 * time.Second
	// DefaultResendInterval is Prometheus' --rules.alert.resend-delay.
	DefaultResendInterval = time.Minute
	// DefaultMaxPending is Prometheus' --alertmanager.notification-queue-capacity:
	// room for every alert of a 10k-target fleet.
	DefaultMaxPending = 10000
)

// endpoint is one validated Alertmanager.
type endpoint struct {
	url  string // as configured, for logs, metrics and Status
	post string // the URL alerts are POSTed to
}

// validate checks c, fills in defaults and returns the endpoints. It reports
// every problem at once, each wrapping ErrInvalidConfig.
func (c *Config) validate() ([]endpoint, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if len(c.URLs) == 0 {
		bad("URLs: no Alertmanager URL")
	}
	var eps []endpoint
	seen := map[string]int{}
	for i, raw := range c.URLs {
		u, err := url.Parse(raw)
		// Errors quote the URL redacted (it is a metric label and shown in
		// logs and on the status page: it should hold no secret, but a
		// refused one may).
		shown := probe.RedactURL(raw)
		switch {
		case err != nil:
			bad("URLs[%d] %q: %v", i, shown, probe.RedactParseError(raw, err))
			continue
		case u.Scheme != "http" && u.Scheme != "https":
			bad("URLs[%d] %q: scheme must be http or https, not %q", i, shown, u.Scheme)
			continue
		case u.Host == "":
			bad("URLs[%d] %q: no host", i, shown)
			continue
		case u.User != nil:
			// The URL is a metric label and appears in logs and on the
			// status page: credentials do not belong in it.
			bad("URLs[%d] %q: credentials in the URL; use BasicAuthUser and BasicAuthPassword", i, shown)
			continue
		case u.RawQuery != "" || u.Fragment != "":
			bad("URLs[%d] %q: a base URL takes no query or fragment", i, shown)
			continue
		}
		key := u.Scheme + "://" + u.Host + strings.TrimRight(u.Path, "/")
		if j, dup := seen[key]; dup {
			// Two senders to one Alertmanager would share metric series.
			bad("URLs[%d] %q: same Alertmanager as URLs[%d]", i, raw, j)
			continue
		}
		seen[key] = i
		eps = append(eps, endpoint{url: raw, post: u.JoinPath("api/v2/alerts").String()})
	}
	if c.Timeout < 0 {
		bad("Timeout %v is negative", c.Timeout)
	}
	if c.ResendInterval < 0 {
		bad("ResendInterval %v is negative", c.ResendInterval)
	}
	if c.MaxPending < 0 {
		bad("MaxPending %d is negative", c.MaxPending)
	}
	if c.BasicAuthPassword != "" && c.BasicAuthUser == "" {
		bad("BasicAuthPassword is set without BasicAuthUser")
	}
	if c.BasicAuthUser != "" && c.BearerToken != "" {
		bad("both basic auth (user %q) and BearerToken are set; choose one", c.BasicAuthUser)
	}
	for k, v := range c.ExternalLabels {
		if !validLabelName(k) {
			bad("ExternalLabels: name %q is not valid ([a-zA-Z_][a-zA-Z0-9_]*)", k)
		}
		if v == "" || !utf8.ValidString(v) {
			bad("ExternalLabels[%q]: value %q must be non-empty UTF-8", k, v)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.ResendInterval == 0 {
		c.ResendInterval = DefaultResendInterval
	}
	if c.MaxPending == 0 {
		c.MaxPending = DefaultMaxPending
	}
	if c.Metrics == nil {
		c.Metrics = metrics.NewSet()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return eps, nil
}
