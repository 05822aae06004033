package push

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/vantage-probe/vantage/internal/testenv"
)

// receiver is an import endpoint that keeps every request it answers.
type receiver struct {
	*httptest.Server
	status atomic.Int32 // answered; 0 means 204
	mu     sync.Mutex
	reqs   []received
}

type received struct {
	method, auth, encoding string
	body                   string // decompressed
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body io.Reader = req.Body
		if req.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.reqs = append(r.reqs, received{req.Method, req.Header.Get("Authorization"), req.Header.Get("Content-Encoding"), string(b)})
		r.mu.Unlock()
		if s := r.status.Load(); s != 0 {
			http.Error(w, "cannot parse line", int(s))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) received() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.reqs...)
}

// counting writes a family whose value is the number of writes so far, so
// a body says which write it came from.
type counting struct{ n atomic.Int64 }

func (c *counting) write(w io.Writer) {
	n := c.n.Add(1)
	fmt.Fprintf(w, "# HELP writes_total Writes.\n# TYPE writes_total counter\nwrites_total %d\nprobe_success{target=\"web\",region=\"eu\"} 1\n", n)
}

func newPusher(t *testing.T, url string, set *metrics.Set, c *counting, mod func(*Config)) *Pusher {
	t.Helper()
	cfg := Config{URL: url + "/api/v1/import/prometheus", Interval: time.Second,
		Labels: map[string]string{"job": "vantage", "instance": "eu-1", "fleet": `a "quoted" one`},
		Write:  c.write, Metrics: set}
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func metricValue(set *metrics.Set, series string) string {
	var b bytes.Buffer
	set.WritePrometheus(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// TestPushSendsEverySeriesWithItsLabels: one POST, gzipped, each sample
// line with job, instance and the operator's labels first (escaped), the
// comments as written; counted as a success.
func TestPushSendsEverySeriesWithItsLabels(t *testing.T) {
	r := newReceiver(t)
	set := metrics.NewSet()
	p := newPusher(t, r.URL, set, &counting{}, func(c *Config) { c.BearerToken = "t0ken" })
	p.Push(context.Background())
	reqs := r.received()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	got := reqs[0]
	want := "# HELP writes_total Writes.\n# TYPE writes_total counter\n" +
		`writes_total{fleet="a \"quoted\" one",instance="eu-1",job="vantage"} 1` + "\n" +
		`probe_success{fleet="a \"quoted\" one",instance="eu-1",job="vantage",target="web",region="eu"} 1` + "\n"
	if got.method != http.MethodPost || got.encoding != "gzip" || got.auth != "Bearer t0ken" || got.body != want {
		t.Errorf("request %s, encoding %q, auth %q, body:\n%s\nwant POST, gzip, the bearer token, body:\n%s", got.method, got.encoding, got.auth, got.body, want)
	}
	st := p.Status()
	if !st.OK() || st.Success != 1 || st.Errors != 0 || st.LastBytes != len("# HELP writes_total Writes.\n# TYPE writes_total counter\nwrites_total 1\nprobe_success{target=\"web\",region=\"eu\"} 1\n") {
		t.Errorf("status after a push: %+v", st)
	}
	if v := metricValue(set, `vantage_push_total{result="success"}`); v != "1" {
		t.Errorf(`vantage_push_total{result="success"} = %q, want 1`, v)
	}
	if v := metricValue(set, "vantage_push_last_success_timestamp_seconds"); v == "" || v == "0" {
		t.Errorf("vantage_push_last_success_timestamp_seconds = %q", v)
	}
}

// TestPushBasicAuth: the credentials as a Basic Authorization header.
func TestPushBasicAuth(t *testing.T) {
	r := newReceiver(t)
	p := newPusher(t, r.URL, metrics.NewSet(), &counting{}, func(c *Config) { c.BasicAuthUser, c.BasicAuthPassword = "vantage", "s3cret" })
	p.Push(context.Background())
	if reqs := r.received(); len(reqs) != 1 || reqs[0].auth != "Basic dmFudGFnZTpzM2NyZXQ=" {
		t.Errorf("requests: %+v", reqs)
	}
}

// TestFailedPushesAreCountedNeverQueued: while the endpoint refuses, each
// push is one error and one request; the first push that succeeds carries
// the state of its own moment once, nothing of the failed ones.
func TestFailedPushesAreCountedNeverQueued(t *testing.T) {
	r := newReceiver(t)
	r.status.Store(http.StatusServiceUnavailable)
	set := metrics.NewSet()
	c := &counting{}
	p := newPusher(t, r.URL, set, c, nil)
	for range 5 {
		p.Push(context.Background())
	}
	st := p.Status()
	if st.OK() || st.Errors != 5 || st.Success != 0 || !strings.Contains(st.LastError, "503") || st.LastErrorAt.IsZero() {
		t.Errorf("status after 5 refusals: %+v", st)
	}
	if v := metricValue(set, `vantage_push_total{result="error"}`); v != "5" {
		t.Errorf(`vantage_push_total{result="error"} = %q, want 5`, v)
	}
	if v := metricValue(set, "vantage_push_last_success_timestamp_seconds"); v != "0" {
		t.Errorf("last success %q before any success", v)
	}
	r.status.Store(0)
	p.Push(context.Background())
	reqs := r.received()
	if len(reqs) != 6 {
		t.Fatalf("%d requests for 6 pushes", len(reqs))
	}
	last := reqs[5].body
	if strings.Count(last, "\nwrites_total{") != 1 || !strings.Contains(last, `job="vantage"} 6`) {
		t.Errorf("the push after the outage:\n%s\nwant one sample, the sixth write's", last)
	}
	if st := p.Status(); !st.OK() || st.Success != 1 || st.Errors != 5 {
		t.Errorf("status after recovery: %+v", st)
	}
}

// TestUnreachableEndpoint: a refused connection is an error with the
// URL in it, at once (not a hang until the timeout).
func TestUnreachableEndpoint(t *testing.T) {
	r := newReceiver(t)
	url := r.URL
	r.Close()
	p := newPusher(t, url, metrics.NewSet(), &counting{}, nil)
	start := time.Now()
	p.Push(context.Background())
	st := p.Status()
	if st.Errors != 1 || !strings.Contains(st.LastError, url) || time.Since(start) > 900*time.Millisecond {
		t.Errorf("status %+v after %v", st, time.Since(start))
	}
}

// TestSlowEndpointTimesOutWithinTheInterval: a push never outlives its
// interval, so pushes cannot pile up behind a stalled endpoint.
func TestSlowEndpointTimesOutWithinTheInterval(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	p := newPusher(t, srv.URL, metrics.NewSet(), &counting{}, nil)
	start := time.Now()
	p.Push(context.Background())
	if d := time.Since(start); d < time.Second || d > 3*time.Second {
		t.Errorf("push against a stalled endpoint took %v, want its 1s interval", d)
	}
	if st := p.Status(); st.Errors != 1 || !strings.Contains(st.LastError, "deadline") {
		t.Errorf("status %+v", st)
	}
}

// TestRunPushesAtOnceThenEveryInterval, and a push cut short by the agent
// stopping counts as neither success nor error.
func TestRunPushesAtOnceThenEveryInterval(t *testing.T) {
	r := newReceiver(t)
	p := newPusher(t, r.URL, metrics.NewSet(), &counting{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	start := time.Now()
	go func() { p.Run(ctx); close(done) }()
	testenv.Poll(t, 5*time.Second, "the first push", func() bool { return len(r.received()) >= 1 })
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("first push after %v: not at once", d)
	}
	testenv.Poll(t, 5*time.Second, "the second push counted", func() bool { return p.Status().Success >= 2 })
	cancel()
	<-done
	// Every push was counted but one that the cancel may have cut short.
	if st, n := p.Status(), uint64(len(r.received())); st.Errors != 0 || st.Success > n || st.Success+1 < n {
		t.Errorf("status %+v for %d requests", st, n)
	}

	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the body: only then does net/http watch the connection
		// and end the request's context when the client goes.
		_, _ = io.Copy(io.Discard, r.Body)
		arrived <- struct{}{}
		<-r.Context().Done()
	}))
	defer srv.Close()
	p = newPusher(t, srv.URL, metrics.NewSet(), &counting{}, func(c *Config) { c.Interval = time.Minute })
	ctx, cancel = context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	<-arrived // the push is in flight
	cancel()
	<-done
	if st := p.Status(); st.Success != 0 || st.Errors != 0 {
		t.Errorf("a push cut short by shutdown was counted: %+v", st)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	_, err := New(Config{Labels: map[string]string{"bad-name": "x", "empty": ""}})
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("err %v", err)
	}
	for _, w := range []string{"no URL", "interval", "Write and Metrics", `"bad-name"`, `"empty"`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
}
