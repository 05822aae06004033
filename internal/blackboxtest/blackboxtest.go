//go:build linux

// Package blackboxtest runs a real Prometheus blackbox_exporter for tests,
// so that what Vantage exports can be set beside what blackbox_exporter
// writes for the same probe of the same target.
package blackboxtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/internal/mono"
	"github.com/vantage-probe/vantage/internal/testenv"
)

// Exporter is a running blackbox_exporter.
type Exporter struct {
	// URL is its base URL, http://127.0.0.1:PORT.
	URL    string
	client *http.Client
}

// Start runs blackbox_exporter with modules (the YAML of its config
// file, `modules:` and below) on a loopback port for the test, skipping
// the test when it is not installed (see testenv.RequireBinary), and stops
// it at cleanup. The port is bound here and handed over (systemd socket
// activation), never freed and bound again.
func Start(t testing.TB, modules string) *Exporter {
	t.Helper()
	bin := testenv.RequireBinary(t, "prometheus-blackbox-exporter", "prometheus-blackbox-exporter", "blackbox_exporter")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "blackbox.yml")
	if err := os.WriteFile(cfg, []byte(modules), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File() // a duplicate: the child's fd 3
	_ = ln.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	addr := ln.Addr().String()
	// go-systemd takes the listener only when LISTEN_PID is the
	// exporter's own pid, known after fork: a shell exports its $$ and
	// execs the exporter in its place.
	cmd := exec.Command("/bin/sh", "-c", `export LISTEN_PID=$$; exec "$0" "$@"`, bin,
		"--web.systemd-socket", "--web.external-url=http://"+addr+"/", "--config.file="+cfg, "--log.level=warn")
	cmd.Env = append(os.Environ(), "LISTEN_FDS=1")
	cmd.ExtraFiles = []*os.File{f}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var logs tail
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("blackbox_exporter %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	e := &Exporter{URL: "http://" + addr, client: &http.Client{Timeout: 30 * time.Second}}
	healthy := mono.Poll(context.Background(), 15*time.Second, 50*time.Millisecond, func() bool {
		select {
		case <-exited:
			return true
		default:
		}
		resp, err := e.client.Get(e.URL + "/-/healthy")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	select {
	case <-exited:
		t.Fatalf("blackbox_exporter exited: %s", logs.String())
	default:
	}
	if !healthy {
		t.Fatalf("blackbox_exporter not healthy within 15s: %s", logs.String())
	}
	return e
}

// Probe asks the exporter to probe target with module, as Prometheus
// would, and returns the text it answers.
func (e *Exporter) Probe(ctx context.Context, module, target string) (string, error) {
	q := url.Values{"module": {module}, "target": {target}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.URL+"/probe?"+q.Encode(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "10")
	resp, err := e.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("/probe?%s: status %d: %s", q.Encode(), resp.StatusCode, b)
	}
	return string(b), nil
}

// Sample is one sample of the text format.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Family is a metric family of the text format: its TYPE and samples.
type Family struct {
	Type    string
	Samples []Sample
}

// Parse reads the Prometheus text format (as the exporters here write it:
// no timestamps, no exemplars) into families by name.
func Parse(text string) (map[string]*Family, error) {
	out := map[string]*Family{}
	get := func(name string) *Family {
		f := out[name]
		if f == nil {
			f = &Family{}
			out[name] = f
		}
		return f
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(rest, " ")
			get(name).Type = typ
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, labels, value, err := parseSample(line)
		if err != nil {
			return nil, err
		}
		f := get(name)
		f.Samples = append(f.Samples, Sample{Labels: labels, Value: value})
	}
	return out, sc.Err()
}

func parseSample(line string) (string, map[string]string, float64, error) {
	labels := map[string]string{}
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return "", nil, 0, fmt.Errorf("sample %q: no value", line)
	}
	name, rest := line[:i], line[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, ", ")
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			k, v, ok := strings.Cut(rest, `="`)
			if !ok {
				return "", nil, 0, fmt.Errorf("sample %q: bad labels", line)
			}
			var val strings.Builder
			j := 0
			for ; j < len(v) && v[j] != '"'; j++ {
				if v[j] == '\\' && j+1 < len(v) {
					j++
					if v[j] == 'n' {
						val.WriteByte('\n')
						continue
					}
				}
				val.WriteByte(v[j])
			}
			if j == len(v) {
				return "", nil, 0, fmt.Errorf("sample %q: unterminated label value", line)
			}
			labels[k] = val.String()
			rest = v[j+1:]
		}
	}
	value, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
	if err != nil {
		return "", nil, 0, fmt.Errorf("sample %q: %v", line, err)
	}
	return name, labels, value, nil
}

// tail keeps the last 8 KB written: the exporter's log, for errors.
type tail struct {
	mu sync.Mutex
	b  []byte
}

func (w *tail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if len(w.b) > 8<<10 {
		w.b = append(w.b[:0], w.b[len(w.b)-8<<10:]...)
	}
	return len(p), nil
}

func (w *tail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}
