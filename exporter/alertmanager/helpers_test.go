package alertmanager

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/vantage-probe/vantage/exporter/alertmanager/amtest"
	"github.com/vantage-probe/vantage/probe/probetest"
)

// waitLimit bounds every wait of these tests: generous, for -race on two
// busy cores; a passing run waits far less.
const waitLimit = 30 * time.Second

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if err := amtest.Poll(waitCtx(t), 5*time.Millisecond, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// observe lets d pass. It is for asserting that something does NOT happen
// (a second notification, a retry): absence can only be watched for a
// while, never polled for.
func observe(t *testing.T, d time.Duration) {
	select {
	case <-time.After(d):
	case <-t.Context().Done():
	}
}

// logBuf collects a notifier's log lines; they are printed if the test
// fails.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the lines containing all of subs.
func (l *logBuf) lines(subs ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for line := range strings.Lines(l.b.String()) {
		if !slices.ContainsFunc(subs, func(s string) bool { return !strings.Contains(line, s) }) {
			out = append(out, line)
		}
	}
	return out
}

// newNotifier makes a Notifier with a fresh metrics set and a captured log
// unless cfg has its own.
func newNotifier(t *testing.T, cfg Config) (*Notifier, *logBuf) {
	t.Helper()
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewSet()
	}
	logs := &logBuf{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("notifier log:\n%s", strings.Join(logs.lines(), ""))
		}
	})
	return n, logs
}

// start runs n until the returned stop is called or the test ends; stop
// waits for Run to return.
func start(t *testing.T, n *Notifier) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Run(ctx)
	}()
	stop = sync.OnceFunc(func() {
		cancel()
		<-done
	})
	t.Cleanup(stop)
	return stop
}

func update(t *testing.T, n *Notifier, alerts ...Alert) {
	t.Helper()
	if err := n.Update(alerts); err != nil {
		t.Fatal(err)
	}
}

// down is the alert the agent sends for target, started at startsAt.
func down(target string, startsAt time.Time) Alert {
	return Alert{
		Labels:      map[string]string{"alertname": "VantageTargetDown", "target": target, "severity": "page"},
		Annotations: map[string]string{"summary": target + " is down"},
		StartsAt:    startsAt,
	}
}

// ms is a time as Alertmanager's API shows it: to the millisecond.
func ms(t time.Time) time.Time { return t.Truncate(time.Millisecond) }

func metricsText(set *metrics.Set) string {
	var b bytes.Buffer
	set.WritePrometheus(&b)
	return b.String()
}

// metricValue returns the value of series in text, or -1 if absent.
func metricValue(text, series string) float64 {
	for line := range strings.Lines(text) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return -1
			}
			return f
		}
	}
	return -1
}

func sentSeries(url, result string) string {
	return fmt.Sprintf(`vantage_alerts_sent_total{alertmanager=%q,result=%q}`, url, result)
}

// postedAlert is what a fake Alertmanager decodes; unknown fields are an
// error, so the notifier sends exactly the postableAlert fields.
type postedAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
}

type fakeRequest struct {
	Path   string
	Header http.Header
	Alerts []postedAlert
	Err    error // the body did not decode
	Status int   // what the fake answered; 0 while in flight
}

// fakeAM stands in for an Alertmanager where a real one cannot show the
// fault: it records every POST and answers what respond says for the
// n-th one (1-based); respond may block until ctx ends.
type fakeAM struct {
	*probetest.HTTPServer
	respond func(ctx context.Context, n int) int

	mu   sync.Mutex
	reqs []fakeRequest
}

func startFake(t *testing.T, respond func(ctx context.Context, n int) int) *fakeAM {
	f := &fakeAM{respond: respond}
	srv, err := probetest.StartHTTP(http.HandlerFunc(f.serve))
	if err != nil {
		t.Fatal(err)
	}
	f.HTTPServer = srv
	t.Cleanup(func() { _ = srv.Close() })
	return f
}

func (f *fakeAM) serve(w http.ResponseWriter, r *http.Request) {
	req := fakeRequest{Path: r.URL.Path, Header: r.Header.Clone()}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	req.Err = dec.Decode(&req.Alerts)
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	i := len(f.reqs)
	f.mu.Unlock()
	status := http.StatusBadRequest
	if req.Err == nil {
		status = f.respond(r.Context(), i)
	}
	f.mu.Lock()
	f.reqs[i-1].Status = status
	f.mu.Unlock()
	w.WriteHeader(status)
	fmt.Fprintf(w, "fake says %d\n", status)
}

func (f *fakeAM) requests() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

// answered returns the requests answered with status, and how many
// alerts they carried.
func (f *fakeAM) answered(status int) (reqs []fakeRequest, alerts int) {
	for _, r := range f.requests() {
		if r.Status == status {
			reqs = append(reqs, r)
			alerts += len(r.Alerts)
		}
	}
	return reqs, alerts
}

func always(status int) func(context.Context, int) int {
	return func(context.Context, int) int { return status }
}
