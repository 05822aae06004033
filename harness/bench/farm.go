package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync/atomic"
	"time"

	"github.com/vantage-probe/vantage/probe/probetest"
	"github.com/vantage-probe/vantage/probe/probetest/healthsrv"
)

// DefaultFarmListeners is how many servers the farm runs per protocol.
// Targets share them (HTTP targets by path, TCP targets by address), which
// is realistic: what costs an agent is a fresh connection per probe, and
// agent-side state per target, not distinct server sockets. Several ports
// per protocol spread the connections' 4-tuples so that TIME_WAIT sockets
// of ~1,000 connections/s never exhaust the ephemeral port range of one
// destination.
const DefaultFarmListeners = 8

// FarmOptions configure the target farm.
type FarmOptions struct {
	// Listeners is the number of servers per protocol; 0 means
	// DefaultFarmListeners.
	Listeners int
	// Dir receives ca.pem, the CA that signed the HTTPS servers' certificate.
	Dir string
}

// FarmInfo is what a running farm serves. The farm process prints it as
// one JSON line on stdout once every server is listening.
type FarmInfo struct {
	HTTP   []string `json:"http"`    // base URLs, http://127.0.0.1:PORT
	HTTPS  []string `json:"https"`   // base URLs, https://127.0.0.1:PORT (HTTP/2 and HTTP/1.1 by ALPN)
	TCP    []string `json:"tcp"`     // 127.0.0.1:PORT, accepting and holding until the client closes
	GRPC   []string `json:"grpc"`    // 127.0.0.1:PORT, a gRPC health server (healthsrv), plaintext
	GRPCS  []string `json:"grpcs"`   // 127.0.0.1:PORT, the same over TLS
	CAFile string   `json:"ca_file"` // PEM of the CA that signed the HTTPS and gRPC certificate
	Stats  string   `json:"stats"`   // URL of the counters (FarmStats as JSON)
}

// FarmStats counts what the farm served since it started: HTTP requests
// answered over plain HTTP and over TLS, TCP connections accepted, health
// checks answered, and echo requests the kernel received (it answers
// them). Counting on the serving side measures every driver (the agent,
// the bare client, blackbox_exporter) the same way. ICMP is counted for
// the whole network namespace (the Icmp InEchos of /proc/net/snmp): other
// pings on the machine during a window count too.
type FarmStats struct {
	HTTP  int64 `json:"http"`
	HTTPS int64 `json:"https"`
	TCP   int64 `json:"tcp"`
	GRPC  int64 `json:"grpc"`
	GRPCS int64 `json:"grpcs"`
	ICMP  int64 `json:"icmp"`
}

// Total is every probe the farm served.
func (s FarmStats) Total() int64 { return s.HTTP + s.HTTPS + s.TCP + s.GRPC + s.GRPCS + s.ICMP }

func (s FarmStats) sub(o FarmStats) FarmStats {
	return FarmStats{HTTP: s.HTTP - o.HTTP, HTTPS: s.HTTPS - o.HTTPS, TCP: s.TCP - o.TCP,
		GRPC: s.GRPC - o.GRPC, GRPCS: s.GRPCS - o.GRPCS, ICMP: s.ICMP - o.ICMP}
}

// RunFarm serves the target farm until ctx is done: o.Listeners HTTP,
// HTTPS and TCP servers on 127.0.0.1, answering any path with 200 "ok".
// It writes the FarmInfo as one JSON line to out once everything listens.
// It is meant to run in a process of its own (`vantage bench farm`), so
// that the CPU the farm spends serving is not counted as the agent's.
func RunFarm(ctx context.Context, o FarmOptions, out io.Writer) error {
	if o.Dir == "" {
		return errors.New("farm: dir is empty: it receives ca.pem")
	}
	n := o.Listeners
	if n <= 0 {
		n = DefaultFarmListeners
	}
	ca, err := probetest.NewCA("vantage bench CA")
	if err != nil {
		return fmt.Errorf("farm: CA: %w", err)
	}
	leaf, err := ca.Leaf(time.Now().AddDate(1, 0, 0), "127.0.0.1")
	if err != nil {
		return fmt.Errorf("farm: certificate: %w", err)
	}
	caFile, err := ca.WriteCAFile(o.Dir)
	if err != nil {
		return fmt.Errorf("farm: dir %q: %w", o.Dir, err)
	}

	var stats FarmStats
	counted := func(c *int64) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			atomic.AddInt64(c, 1)
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "ok\n")
		})
	}
	info := FarmInfo{CAFile: caFile}
	var closers []func() error
	defer func() {
		for _, c := range closers {
			_ = c()
		}
	}()
	var tcps []*probetest.TCPServer
	var grpcs, grpcss []*healthsrv.Server
	for range n {
		h, err := probetest.StartHTTP(counted(&stats.HTTP))
		if err != nil {
			return fmt.Errorf("farm: %w", err)
		}
		closers = append(closers, h.Close)
		info.HTTP = append(info.HTTP, h.URL)

		hs, err := probetest.StartHTTPS(counted(&stats.HTTPS), leaf)
		if err != nil {
			return fmt.Errorf("farm: %w", err)
		}
		closers = append(closers, hs.Close)
		info.HTTPS = append(info.HTTPS, hs.URL)

		// Echo with no banner holds each connection until the client
		// closes it, as a real service would; the prober hangs up first.
		t, err := probetest.StartTCP(probetest.TCPEcho, "")
		if err != nil {
			return fmt.Errorf("farm: %w", err)
		}
		closers = append(closers, t.Close)
		tcps = append(tcps, t)
		info.TCP = append(info.TCP, t.Addr)

		for _, secure := range []bool{false, true} {
			var cert *tls.Certificate
			if secure {
				cert = &leaf
			}
			g, err := healthsrv.Start(cert)
			if err != nil {
				return fmt.Errorf("farm: %w", err)
			}
			closers = append(closers, func() error { g.Close(); return nil })
			if secure {
				grpcss = append(grpcss, g)
				info.GRPCS = append(info.GRPCS, g.Addr)
			} else {
				grpcs = append(grpcs, g)
				info.GRPC = append(info.GRPC, g.Addr)
			}
		}
	}

	statsH := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s := FarmStats{HTTP: atomic.LoadInt64(&stats.HTTP), HTTPS: atomic.LoadInt64(&stats.HTTPS), ICMP: icmpEchos()}
		for _, t := range tcps {
			s.TCP += t.Accepted()
		}
		for _, g := range grpcs {
			s.GRPC += g.Calls()
		}
		for _, g := range grpcss {
			s.GRPCS += g.Calls()
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s)
	})
	st, err := probetest.StartHTTP(statsH)
	if err != nil {
		return fmt.Errorf("farm: %w", err)
	}
	closers = append(closers, st.Close)
	info.Stats = st.URL + "/stats"

	line, err := json.Marshal(info)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(out, "%s\n", line); err != nil {
		return fmt.Errorf("farm: writing its addresses: %w", err)
	}
	<-ctx.Done()
	return nil
}

// farmProc is a farm running in a child process. The child exits when its
// stdin closes, so it never outlives the benchmark, even one that is killed.
type farmProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	done   chan error
	info   FarmInfo
	client *http.Client
}

// startFarm runs argv (plus -dir and -listeners flags) with env added to
// the environment and waits for the FarmInfo line.
func startFarm(ctx context.Context, argv, env []string, o FarmOptions) (*farmProc, error) {
	if len(argv) == 0 {
		return nil, errors.New("farm command is empty")
	}
	args := append(append([]string(nil), argv[1:]...), "-dir", o.Dir, "-listeners", fmt.Sprint(o.Listeners))
	cmd := exec.Command(argv[0], args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	setChildAttrs(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("farm command %q: %w", argv[0], err)
	}
	f := &farmProc{cmd: cmd, stdin: stdin, done: make(chan error, 1),
		client: &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}}
	lines := make(chan []byte, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		if sc.Scan() {
			lines <- append([]byte(nil), sc.Bytes()...)
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout) // keep the pipe drained
	}()
	go func() { f.done <- cmd.Wait() }()
	fail := func(err error) (*farmProc, error) {
		_ = f.Close()
		return nil, err
	}
	select {
	case line, ok := <-lines:
		if !ok {
			return fail(fmt.Errorf("farm command %q exited before listening", argv[0]))
		}
		if err := json.Unmarshal(line, &f.info); err != nil {
			return fail(fmt.Errorf("farm output %q: %w", line, err))
		}
	case <-time.After(time.Minute):
		return fail(errors.New("farm did not start within a minute"))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	return f, nil
}

// stats fetches the farm's counters.
func (f *farmProc) stats(ctx context.Context) (FarmStats, error) {
	var s FarmStats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.info.Stats, nil)
	if err != nil {
		return s, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return s, fmt.Errorf("farm stats: %w", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return s, fmt.Errorf("farm stats: %w", err)
	}
	return s, nil
}

// Close ends the farm (by closing its stdin) and waits for it, killing it
// if it has not exited within 10 s.
func (f *farmProc) Close() error {
	f.client.CloseIdleConnections()
	_ = f.stdin.Close()
	select {
	case err := <-f.done:
		return err
	case <-time.After(10 * time.Second):
		_ = f.cmd.Process.Kill()
		return <-f.done
	}
}

// ServeFarm is the body of `vantage bench farm`: it runs the farm until
// stdin reaches EOF (the parent closed it or died) or ctx is done.
func ServeFarm(ctx context.Context, o FarmOptions, stdin io.Reader, stdout io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		cancel()
	}()
	return RunFarm(ctx, o, stdout)
}

// loopbackListener binds 127.0.0.1:0 for a child process to serve on.
func loopbackListener() (*net.TCPListener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return ln.(*net.TCPListener), nil
}
