// Package push sends an agent's series to VictoriaMetrics (single-node,
// vminsert or vmagent) every interval, for agents that nothing can scrape.
// The HTTP request is VictoriaMetrics/metrics' own (PushMetricsExt: the
// Prometheus text format, gzipped, extra labels added to every line); this
// package decides when to push, counts the outcome and keeps the state the
// status page shows.
//
// A push is never queued: one that fails is counted and the next interval
// pushes the state of that moment. Memory is one exposition (the body the
// library builds), whatever the length of an outage.
package push

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Config is one pusher's settings.
type Config struct {
	URL      string        // the import endpoint, /api/v1/import/prometheus
	Interval time.Duration // between pushes; also each push's timeout
	// Labels are added to every series: job and instance, which a scrape
	// would add, and the operator's.
	Labels                           map[string]string
	BasicAuthUser, BasicAuthPassword string
	BearerToken                      string
	// Write writes every series in the Prometheus text format, as /metrics
	// serves them.
	Write func(w io.Writer)
	// Metrics receives vantage_push_total{result} and
	// vantage_push_last_success_timestamp_seconds.
	Metrics *metrics.Set
	Logger  *slog.Logger
}

// ErrInvalidConfig is wrapped by every error New returns.
var ErrInvalidConfig = errors.New("push: invalid config")

// Status is how pushing goes, for the API and the status page.
type Status struct {
	URL      string
	Interval time.Duration
	// Success and Errors count this pusher's pushes (since the last start
	// or reload); vantage_push_total counts them all.
	Success, Errors uint64
	LastSuccess     time.Time
	LastError       string
	LastErrorAt     time.Time
	// LastDuration is how long the last push took; LastBytes the size of
	// its body before compression.
	LastDuration time.Duration
	LastBytes    int
}

// OK reports whether the last push succeeded.
func (s Status) OK() bool { return !s.LastSuccess.IsZero() && !s.LastSuccess.Before(s.LastErrorAt) }

// Pusher pushes on an interval until its Run's context ends.
type Pusher struct {
	cfg     Config
	opts    *metrics.PushOptions
	success *metrics.Counter
	errors  *metrics.Counter
	last    *metrics.Gauge
	log     *slog.Logger

	mu sync.Mutex
	st Status
}

// maxErrorLen bounds an error kept for the page: a proxy's error page can
// be large, and the library quotes the response body.
const maxErrorLen = 300

var labelNameRe = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// New checks cfg and returns a Pusher that sends nothing until Run.
func New(cfg Config) (*Pusher, error) {
	var errs []error
	if cfg.URL == "" {
		errs = append(errs, fmt.Errorf("%w: no URL", ErrInvalidConfig))
	}
	if cfg.Interval <= 0 {
		errs = append(errs, fmt.Errorf("%w: interval %v: must be above zero", ErrInvalidConfig, cfg.Interval))
	}
	if cfg.Write == nil || cfg.Metrics == nil {
		errs = append(errs, fmt.Errorf("%w: Write and Metrics are required", ErrInvalidConfig))
	}
	for k, v := range cfg.Labels {
		if !labelNameRe.MatchString(k) || v == "" {
			errs = append(errs, fmt.Errorf("%w: label %q=%q: want a Prometheus label name and a value", ErrInvalidConfig, k, v))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Labels = maps.Clone(cfg.Labels)
	opts := &metrics.PushOptions{
		ExtraLabels: extraLabels(cfg.Labels),
		// POST, not the library's default GET: proxies in front of
		// VictoriaMetrics (vmauth, nginx) may drop the body of a GET.
		Method: http.MethodPost,
	}
	switch {
	case cfg.BearerToken != "":
		opts.Headers = []string{"Authorization: Bearer " + cfg.BearerToken}
	case cfg.BasicAuthUser != "":
		opts.Headers = []string{"Authorization: Basic " +
			base64.StdEncoding.EncodeToString([]byte(cfg.BasicAuthUser+":"+cfg.BasicAuthPassword))}
	}
	s := cfg.Metrics
	return &Pusher{
		cfg:     cfg,
		opts:    opts,
		success: s.GetOrCreateCounter(`vantage_push_total{result="success"}`),
		errors:  s.GetOrCreateCounter(`vantage_push_total{result="error"}`),
		// Settable (no callback): the gauge outlives this Pusher when a
		// reload replaces it, and keeps the last success it saw.
		last: s.GetOrCreateGauge("vantage_push_last_success_timestamp_seconds", nil),
		log:  cfg.Logger,
		st:   Status{URL: cfg.URL, Interval: cfg.Interval},
	}, nil
}

// extraLabels renders labels as the library's ExtraLabels, sorted.
func extraLabels(labels map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteString(`="`)
		b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(labels[k]))
		b.WriteByte('"')
	}
	return b.String()
}

// Run pushes at once (an agent shows up as soon as it starts), then every
// interval, until ctx ends. A push still running when the next is due
// delays it: pushes never overlap and never queue.
func (p *Pusher) Run(ctx context.Context) {
	p.Push(ctx)
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.Push(ctx)
		}
	}
}

// Push sends the series once, within one interval, and records the
// outcome. A push cut short by ctx (the agent stopping) counts as neither.
func (p *Pusher) Push(ctx context.Context) {
	start := time.Now()
	var size int
	write := func(w io.Writer) {
		cw := &countWriter{w: w}
		p.cfg.Write(cw)
		size = cw.n
	}
	pctx, cancel := context.WithTimeout(ctx, p.cfg.Interval)
	err := metrics.PushMetricsExt(pctx, p.cfg.URL, write, p.opts)
	cancel()
	if ctx.Err() != nil {
		// The library reports a cancelled request as success.
		return
	}
	end := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.st.LastDuration, p.st.LastBytes = end.Sub(start), size
	if err == nil {
		p.success.Inc()
		p.last.Set(float64(end.UnixMilli()) / 1e3)
		if p.st.Errors > 0 && p.st.LastErrorAt.After(p.st.LastSuccess) {
			p.log.Info("push recovered", "url", p.cfg.URL, "failed_since", p.st.LastErrorAt)
		}
		p.st.Success++
		p.st.LastSuccess = end
		return
	}
	p.errors.Inc()
	msg := err.Error()
	if len(msg) > maxErrorLen {
		msg = msg[:maxErrorLen] + "…"
	}
	// One line per streak of failures (and when the error changes), not
	// one per interval for the length of an outage.
	if !p.st.LastErrorAt.After(p.st.LastSuccess) || msg != p.st.LastError {
		p.log.Warn("push failed; the next interval pushes the state of that moment", "url", p.cfg.URL, "err", msg)
	}
	p.st.Errors++
	p.st.LastError, p.st.LastErrorAt = msg, end
}

// Status is the pusher's state now.
func (p *Pusher) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

type countWriter struct {
	w io.Writer
	n int
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += n
	return n, err
}
