// Package vmtest runs a real single-node VictoriaMetrics for tests and
// harnesses: the store agents push to with [exporter.push], queried back
// through its Prometheus API.
package vmtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vantage-probe/vantage/internal/testenv"
)

// Package is the Debian package with victoria-metrics and vmalert.
const Package = "victoria-metrics"

// Binary finds the victoria-metrics binary.
func Binary() (string, error) { return testenv.Binary(Package, "victoria-metrics") }

// Options configure a server.
type Options struct {
	// Addr is the loopback host:port to listen on; empty picks a free one.
	// A restart passes the address of the server it replaces.
	Addr string
	// Args are extra command-line flags.
	Args []string
}

// Server is a running VictoriaMetrics or vmalert.
type Server struct {
	name   string
	cmd    *exec.Cmd
	addr   string
	client *http.Client
	log    testenv.Output // what it printed, up to 1 MB
	exited chan struct{}
}

// Start runs VictoriaMetrics with its storage in dir and waits until it
// answers /health. VictoriaMetrics cannot take a bound socket, so a free
// port is picked, freed and passed; a lost race is retried (with a fixed
// Addr, the port is the caller's).
func Start(ctx context.Context, dir string, o Options) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	return start(ctx, "victoria-metrics", bin, o.Addr, func(addr string) []string {
		return append([]string{"-httpListenAddr=" + addr, "-storageDataPath=" + filepath.Join(dir, "data"),
			"-loggerLevel=WARN"}, o.Args...)
	})
}

// AlertOptions configure a vmalert.
type AlertOptions struct {
	Rules       []byte // the rule file
	Datasource  string // VictoriaMetrics' base URL: http://host:port
	RemoteWrite string // where recording rules and alert state go; usually Datasource
	Notifier    string // Alertmanager's base URL
	Args        []string
}

// StartVMAlert runs vmalert with its rule file in dir and waits until it
// answers /health.
func StartVMAlert(ctx context.Context, dir string, o AlertOptions) (*Server, error) {
	bin, err := testenv.Binary(Package, "vmalert")
	if err != nil {
		return nil, err
	}
	rules := filepath.Join(dir, "rules.yml")
	if err := os.WriteFile(rules, o.Rules, 0o644); err != nil {
		return nil, err
	}
	return start(ctx, "vmalert", bin, "", func(addr string) []string {
		return append([]string{"-httpListenAddr=" + addr, "-rule=" + rules, "-datasource.url=" + o.Datasource,
			"-remoteWrite.url=" + o.RemoteWrite, "-notifier.url=" + o.Notifier, "-loggerLevel=WARN"}, o.Args...)
	})
}

func start(ctx context.Context, name, bin, fixed string, args func(addr string) []string) (*Server, error) {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		addr := fixed
		if addr == "" {
			var err error
			if addr, err = testenv.FreePort(); err != nil {
				return nil, err
			}
		}
		s := &Server{name: name, addr: addr, client: &http.Client{Timeout: 30 * time.Second}, exited: make(chan struct{}),
			log: testenv.Output{Limit: 1 << 20}}
		s.cmd = exec.Command(bin, args(addr)...)
		s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
		if err := s.cmd.Start(); err != nil {
			return nil, err
		}
		go func() { _ = s.cmd.Wait(); close(s.exited) }()
		if err := s.waitReady(ctx); err != nil {
			lastErr = err
			s.Close()
			if fixed != "" {
				break
			}
			continue
		}
		return s, nil
	}
	return nil, fmt.Errorf("%s did not start: %w", name, lastErr)
}

// Log is what the process printed so far (for failure messages).
func (s *Server) Log() string { return s.log.String() }

func (s *Server) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := s.client.Get("http://" + s.addr + "/health")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("%s exited: %s", s.name, s.Log())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New(s.name + " not ready after 60s: " + s.Log())
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return s.addr }

// ImportURL is the endpoint agents push to.
func (s *Server) ImportURL() string { return "http://" + s.addr + "/api/v1/import/prometheus" }

// Close stops the server (SIGTERM, then kill after 10s) and waits for it.
func (s *Server) Close() {
	if s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

func (s *Server) get(ctx context.Context, path string, v url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.addr+path, strings.NewReader(v.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %v: %s: %s", path, v, resp.Status, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s: %w: %.200s", path, err, body)
	}
	return nil
}

// Series returns the label sets (with __name__) of every series matching
// match that has samples since start: /api/v1/series.
func (s *Server) Series(ctx context.Context, match string, start time.Time) ([]map[string]string, error) {
	var r struct {
		Status string              `json:"status"`
		Error  string              `json:"error"`
		Data   []map[string]string `json:"data"`
	}
	v := url.Values{"match[]": {match}, "start": {strconv.FormatInt(start.Unix(), 10)}}
	if err := s.get(ctx, "/api/v1/series", v, &r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("series %q: %s", match, r.Error)
	}
	return r.Data, nil
}

// Exported is one series' raw samples, as /api/v1/export returns them.
type Exported struct {
	Metric     map[string]string
	Values     []float64
	Timestamps []time.Time
}

// Export returns the raw samples of every series matching match:
// /api/v1/export, which reads what is stored, without the query engine's
// latency offset or lookback.
func (s *Server) Export(ctx context.Context, match string) ([]Exported, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.addr+"/api/v1/export",
		strings.NewReader(url.Values{"match[]": {match}}.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("export %q: %s: %s", match, resp.Status, b)
	}
	var out []Exported
	dec := json.NewDecoder(resp.Body)
	for {
		var line struct {
			Metric     map[string]string `json:"metric"`
			Values     []float64         `json:"values"`
			Timestamps []int64           `json:"timestamps"`
		}
		if err := dec.Decode(&line); err == io.EOF {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("export %q: %w", match, err)
		}
		e := Exported{Metric: line.Metric, Values: line.Values}
		for _, ts := range line.Timestamps {
			e.Timestamps = append(e.Timestamps, time.UnixMilli(ts))
		}
		out = append(out, e)
	}
}

// Sample is one element of an instant query's result.
type Sample struct {
	Metric map[string]string
	Value  float64
}

// Query runs an instant query at now.
func (s *Server) Query(ctx context.Context, q string) ([]Sample, error) {
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := s.get(ctx, "/api/v1/query", url.Values{"query": {q}}, &r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", q, r.Error)
	}
	out := make([]Sample, 0, len(r.Data.Result))
	for _, e := range r.Data.Result {
		str, _ := e.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("query %q: value %q: %w", q, str, err)
		}
		out = append(out, Sample{Metric: e.Metric, Value: v})
	}
	return out, nil
}

// Alert is one alert of vmalert's /api/v1/alerts.
type Alert struct {
	Name   string            `json:"name"`
	State  string            `json:"state"` // pending, firing
	Labels map[string]string `json:"labels"`
	Value  string            `json:"value"`
}

// Alerts are vmalert's active alerts.
func (s *Server) Alerts(ctx context.Context) ([]Alert, error) {
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Alerts []Alert `json:"alerts"`
		} `json:"data"`
	}
	if err := s.get(ctx, "/api/v1/alerts", url.Values{}, &r); err != nil {
		return nil, err
	}
	return r.Data.Alerts, nil
}
