// Package promtest runs a real Prometheus server for tests and harnesses:
// the one that checks what Vantage exports and evaluates the rules
// `vantage rules` writes.
package promtest

import (
	"bytes"
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

// Binary finds the prometheus binary (Debian package prometheus).
func Binary() (string, error) { return testenv.Binary("prometheus", "prometheus") }

// Options configure a server.
type Options struct {
	// Config is the prometheus.yml body; "{{RULES}}" in it is replaced by
	// the rule files' paths as a YAML list.
	Config string
	// Rules are rule files to write and load, by file name.
	Rules map[string][]byte
	// Args are extra command-line flags.
	Args []string
}

// Server is a running Prometheus.
type Server struct {
	cmd    *exec.Cmd
	addr   string
	dir    string
	client *http.Client
	log    testenv.Output // what it printed, up to 1 MB
	exited chan struct{}
}

// Start runs Prometheus in dir (config, rules and TSDB go there) on a free
// loopback port and waits until it is ready. Prometheus cannot take a bound
// socket, so the port is picked, freed and passed; a lost race is retried.
func Start(ctx context.Context, dir string, o Options) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	var ruleList bytes.Buffer
	for name, body := range o.Rules {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, body, 0o644); err != nil {
			return nil, err
		}
		ruleList.WriteString("  - " + strconv.Quote(p) + "\n")
	}
	cfg := bytes.ReplaceAll([]byte(o.Config), []byte("{{RULES}}"), []byte("\n"+ruleList.String()))
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		addr, err := testenv.FreePort()
		if err != nil {
			return nil, err
		}
		s := &Server{addr: addr, dir: dir, client: &http.Client{Timeout: 30 * time.Second}, exited: make(chan struct{}),
			log: testenv.Output{Limit: 1 << 20}}
		args := append([]string{"--config.file=" + cfgPath, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=" + addr, "--log.level=warn"}, o.Args...)
		s.cmd = exec.Command(bin, args...)
		s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
		if err := s.cmd.Start(); err != nil {
			return nil, err
		}
		go func() { _ = s.cmd.Wait(); close(s.exited) }()
		if err := s.waitReady(ctx); err != nil {
			lastErr = err
			s.Close()
			continue
		}
		return s, nil
	}
	return nil, fmt.Errorf("prometheus did not start: %w", lastErr)
}

// Log is what the process printed so far (for failure messages).
func (s *Server) Log() string { return s.log.String() }

func (s *Server) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("prometheus exited: %s", s.Log())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := s.client.Get("http://" + s.addr + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return errors.New("prometheus not ready after 60s: " + s.Log())
}

// Pid is the server's process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Addr is host:port of the server.
func (s *Server) Addr() string { return s.addr }

// Close stops the server (SIGTERM, then kill after 10s).
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

// OwnMetrics fetches Prometheus' own /metrics and returns the samples of
// family name: each series' labels and value.
func (s *Server) OwnMetrics(ctx context.Context, name string) ([]Sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var out []Sample
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		labels := map[string]string{}
		if strings.HasPrefix(rest, "{") {
			end := strings.LastIndex(rest, "}")
			if end < 0 {
				continue
			}
			for _, kv := range splitLabels(rest[1:end]) {
				k, v, _ := strings.Cut(kv, "=")
				if uq, err := strconv.Unquote(v); err == nil {
					labels[k] = uq
				}
			}
			rest = rest[end+1:]
		} else if !strings.HasPrefix(rest, " ") {
			continue // another family with this prefix
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			continue
		}
		out = append(out, Sample{Metric: labels, Value: v})
	}
	return out, nil
}

// splitLabels splits a="x",b="y,z" at the commas between pairs.
func splitLabels(s string) []string {
	var out []string
	inQuote, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			inQuote = !inQuote
		case ',':
			if !inQuote {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// Sample is one element of an instant query's result.
type Sample struct {
	Metric map[string]string
	Value  float64
}

// Query runs an instant query now.
func (s *Server) Query(ctx context.Context, q string) ([]Sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.addr+"/api/v1/query?query="+url.QueryEscape(q), nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
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
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("query %q: %w: %s", q, err, body)
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

// Point is one value of a range query's series.
type Point struct {
	T time.Time
	V float64 // NaN where the expression had no defined value (0/0, a quantile of nothing)
}

// Series is one element of a range query's result.
type Series struct {
	Metric map[string]string
	Points []Point
}

// QueryRange runs a range query from start to end every step, as a
// dashboard graph does.
func (s *Server) QueryRange(ctx context.Context, q string, start, end time.Time, step time.Duration) ([]Series, error) {
	v := url.Values{}
	v.Set("query", q)
	v.Set("start", strconv.FormatFloat(float64(start.UnixMilli())/1000, 'f', 3, 64))
	v.Set("end", strconv.FormatFloat(float64(end.UnixMilli())/1000, 'f', 3, 64))
	v.Set("step", strconv.FormatFloat(step.Seconds(), 'f', -1, 64))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.addr+"/api/v1/query_range?"+v.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("query %q: %w: %s", q, err, body)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", q, r.Error)
	}
	out := make([]Series, 0, len(r.Data.Result))
	for _, e := range r.Data.Result {
		ser := Series{Metric: e.Metric, Points: make([]Point, 0, len(e.Values))}
		for _, pv := range e.Values {
			ts, _ := pv[0].(float64)
			str, _ := pv[1].(string)
			f, err := strconv.ParseFloat(str, 64) // also "NaN", "+Inf"
			if err != nil {
				return nil, fmt.Errorf("query %q: value %q: %w", q, str, err)
			}
			ser.Points = append(ser.Points, Point{T: time.UnixMilli(int64(ts * 1000)), V: f})
		}
		out = append(out, ser)
	}
	return out, nil
}
