//go:build linux

package netlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procState is what the harness knows of an agent's process.
type procState int

const (
	procDown     procState = iota // not running: never started, killed, or exited
	procStarting                  // spawned, /healthz not answered yet
	procRunning
	procStopped // SIGSTOP
)

func (s procState) String() string {
	return [...]string{"down", "starting", "running", "stopped"}[s]
}

// agentProc is one `vantage agent` process in a region's namespace.
type agentProc struct {
	Node, Region string
	RegionIdx    int    // 0-based
	Addr         string // 10.77.R.N: probes, gossip and HTTP
	cfgPath      string
	logPath      string
	ns           *nsHandle
	client       *http.Client

	mu       sync.Mutex
	state    procState
	cmd      *exec.Cmd
	spawned  time.Time // of the current process
	resumed  time.Time // last SIGCONT
	expected bool      // the harness ended it: an exit is no surprise
	exited   chan struct{}
}

func (a *agentProc) snapshot() (procState, time.Time, time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state, a.spawned, a.resumed
}

func (a *agentProc) setState(s procState) {
	a.mu.Lock()
	a.state = s
	a.mu.Unlock()
}

func (a *agentProc) httpAddr() string { return net.JoinHostPort(a.Addr, strconv.Itoa(HTTPPort)) }

// spawner starts every child from one OS thread that stays alive until the
// lab ends: the children's parent-death signal (SIGKILL, so no agent
// outlives a killed harness) fires when the thread that forked them ends,
// and Go may end other threads.
type spawner struct{ req chan spawnReq }

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

func newSpawner() *spawner {
	s := &spawner{req: make(chan spawnReq)}
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the lab
		for r := range s.req {
			r.done <- r.cmd.Start()
		}
	}()
	return s
}

func (s *spawner) start(cmd *exec.Cmd) error {
	done := make(chan error, 1)
	s.req <- spawnReq{cmd: cmd, done: done}
	return <-done
}

// close ends the spawner's thread, which kills any child still running.
func (s *spawner) close() { close(s.req) }

// fleet is the agents.
type fleet struct {
	bin     string
	dir     string
	agents  []*agentProc
	spawner *spawner
	events  func(at time.Time, node, what string) // process events, for the lab's timeline
	onExit  func(a *agentProc, err error)         // an exit the harness did not cause
}

func (f *fleet) agent(node string) *agentProc {
	for _, a := range f.agents {
		if a.Node == node {
			return a
		}
	}
	return nil
}

func (f *fleet) seeds(except *agentProc) string {
	var s []string
	for _, a := range f.agents {
		if a != except {
			s = append(s, net.JoinHostPort(a.Addr, strconv.Itoa(GossipPort)))
		}
	}
	return strings.Join(s, ",")
}

// start spawns agent a in its region's namespace, with the same flags
// every time (a restart keeps its node name and addresses).
func (f *fleet) start(a *agentProc) error {
	a.mu.Lock()
	if a.state != procDown {
		a.mu.Unlock()
		return fmt.Errorf("agent %s is %s, not down", a.Node, a.state)
	}
	a.mu.Unlock()
	logf, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "=== netlab: starting %s at %s\n", a.Node, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command("ip", "netns", "exec", a.ns.name, f.bin, "agent",
		"-config", a.cfgPath, "-node", a.Node, "-region", a.Region,
		"-listen", a.httpAddr(), "-bind", net.JoinHostPort(a.Addr, strconv.Itoa(GossipPort)),
		"-join", f.seeds(a))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := f.spawner.start(cmd); err != nil {
		logf.Close()
		return fmt.Errorf("starting agent %s: %w", a.Node, err)
	}
	now := time.Now()
	exited := make(chan struct{})
	a.mu.Lock()
	a.cmd, a.state, a.spawned, a.expected, a.exited = cmd, procStarting, now, false, exited
	a.mu.Unlock()
	f.events(now, a.Node, "start")
	go func() {
		err := cmd.Wait()
		logf.Close()
		a.mu.Lock()
		expected := a.expected
		if a.cmd == cmd {
			a.state = procDown
		}
		a.mu.Unlock()
		close(exited)
		if !expected {
			f.onExit(a, err)
		}
	}()
	return nil
}

// signal sends sig to a's process.
func (f *fleet) signal(a *agentProc, sig syscall.Signal) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd == nil || a.state == procDown {
		return fmt.Errorf("agent %s is not running", a.Node)
	}
	return a.cmd.Process.Signal(sig)
}

// kill crashes a (SIGKILL) and waits for its process to be gone.
func (f *fleet) kill(a *agentProc) error {
	a.mu.Lock()
	a.expected = true
	exited := a.exited
	a.mu.Unlock()
	if err := f.signal(a, syscall.SIGKILL); err != nil {
		return err
	}
	now := time.Now()
	<-exited
	a.setState(procDown)
	f.events(now, a.Node, "kill")
	return nil
}

// stop freezes a (SIGSTOP): no packet in or out, its sockets open.
func (f *fleet) stop(a *agentProc) error {
	if err := f.signal(a, syscall.SIGSTOP); err != nil {
		return err
	}
	now := time.Now()
	a.setState(procStopped)
	f.events(now, a.Node, "stop")
	return nil
}

// cont resumes a stopped agent (SIGCONT).
func (f *fleet) cont(a *agentProc) error {
	if err := f.signal(a, syscall.SIGCONT); err != nil {
		return err
	}
	now := time.Now()
	a.mu.Lock()
	a.state, a.resumed = procRunning, now
	a.mu.Unlock()
	f.events(now, a.Node, "cont")
	return nil
}

// shutdown ends every agent: SIGTERM (a graceful leave), SIGKILL for any
// still running after d.
func (f *fleet) shutdown(d time.Duration) {
	var wg sync.WaitGroup
	for _, a := range f.agents {
		a.mu.Lock()
		cmd, exited, state := a.cmd, a.exited, a.state
		a.expected = true
		a.mu.Unlock()
		if cmd == nil || state == procDown {
			continue
		}
		if state == procStopped {
			_ = cmd.Process.Signal(syscall.SIGCONT)
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		wg.Go(func() {
			select {
			case <-exited:
			case <-time.After(d):
				_ = cmd.Process.Kill()
				<-exited
			}
		})
	}
	wg.Wait()
}

// get fetches path from a's HTTP server within ctx.
func (a *agentProc) get(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.httpAddr()+path, nil)
	if err != nil {
		return nil, err
	}
	return a.client.Do(req)
}

// newAgentClient is an HTTP client whose connections are opened inside the
// agent's namespace, so scrapes reach it whatever the faults do to its
// veth and its iptables rules (they match other addresses).
func newAgentClient(h *nsHandle) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         h.dial,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}}
}

// writeFile replaces path atomically (the agents' file watcher must never
// read half a file).
func writeFile(path, text string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, werr := tmp.WriteString(text)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
