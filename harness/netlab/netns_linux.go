//go:build linux

package netlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Unavailable says why the lab cannot run here ("" when it can): it needs
// root, iproute2 with network namespaces, and iptables.
func Unavailable() string {
	if os.Geteuid() != 0 {
		return fmt.Sprintf("needs root to make network namespaces (running as uid %d)", os.Geteuid())
	}
	for _, b := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Sprintf("%s is not on PATH (Debian packages iproute2 and iptables)", b)
		}
	}
	probe := Prefix + "probe"
	_ = sh("ip", "netns", "del", probe)
	if err := sh("ip", "netns", "add", probe); err != nil {
		return "ip netns is unavailable here: " + err.Error()
	}
	defer func() { _ = sh("ip", "netns", "del", probe) }()
	if err := sh("ip", "netns", "exec", probe, "iptables", "-S"); err != nil {
		return "iptables does not work in a network namespace here: " + err.Error()
	}
	return ""
}

// sh runs a command and returns its output in the error when it fails.
func sh(name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// shIn runs a command inside namespace ns.
func shIn(ns string, name string, args ...string) error {
	return sh("ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// RemoveLeftovers ends what an earlier run left behind: processes in the
// lab's namespaces (an earlier harness killed before its cleanup; its
// agents die with it, but a namespace may hold a straggler), then the
// namespaces, whose veths and iptables rules go with them. Everything the
// lab makes is inside a namespace named with Prefix, so nothing else is
// touched. It returns what it removed.
func RemoveLeftovers() ([]string, error) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns list: %w", err)
	}
	var removed []string
	var errs []error
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], Prefix) {
			continue
		}
		ns := f[0]
		if pids, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
			for _, p := range strings.Fields(string(pids)) {
				if pid, err := strconv.Atoi(p); err == nil && pid > 1 {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		if err := sh("ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, ns)
	}
	return removed, errors.Join(errs...)
}

// topology is the lab's network: a hub namespace holding a bridge, one
// namespace per region and one for the farm, each joined to the bridge by
// a veth pair (eth0 inside, the region's name in the hub). Nothing lives
// in the root namespace: it has no route to 10.77.0.0/16, so no packet of
// the lab can leave the machine, and the harness reaches agents and farm
// by opening its sockets inside their namespaces (nsHandle).
type topology struct {
	regions []string // namespace of region i+1
	farm    string
	hub     string
	handles map[string]*nsHandle
}

const (
	chainIn  = "VNL-IN"
	chainOut = "VNL-OUT"
)

// buildTopology makes the namespaces, the bridge, the veths and the
// addresses, and in every region namespace two iptables chains the faults
// fill (VNL-IN from INPUT, VNL-OUT from OUTPUT). On error, what was made is
// removed.
func buildTopology(regions, agentsPerRegion int) (_ *topology, err error) {
	t := &topology{hub: Prefix + "hub", farm: Prefix + "farm", handles: map[string]*nsHandle{}}
	for i := 1; i <= regions; i++ {
		t.regions = append(t.regions, Prefix+"r"+strconv.Itoa(i))
	}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	steps := [][]string{
		{"ip", "netns", "add", t.hub},
		{"ip", "-n", t.hub, "link", "set", "lo", "up"},
		{"ip", "-n", t.hub, "link", "add", "br0", "type", "bridge"},
		{"ip", "-n", t.hub, "link", "set", "br0", "up"},
	}
	port := func(ns, hubSide string, addrs ...string) {
		steps = append(steps,
			[]string{"ip", "netns", "add", ns},
			[]string{"ip", "-n", ns, "link", "set", "lo", "up"},
			[]string{"ip", "-n", t.hub, "link", "add", hubSide, "type", "veth", "peer", "name", "eth0", "netns", ns},
			[]string{"ip", "-n", t.hub, "link", "set", hubSide, "master", "br0"},
			[]string{"ip", "-n", t.hub, "link", "set", hubSide, "up"})
		for _, a := range addrs {
			steps = append(steps, []string{"ip", "-n", ns, "addr", "add", a + "/16", "dev", "eth0"})
		}
		steps = append(steps, []string{"ip", "-n", ns, "link", "set", "eth0", "up"})
	}
	port(t.farm, "farm", FarmAddr)
	for i, ns := range t.regions {
		var addrs []string
		for n := 1; n <= agentsPerRegion; n++ {
			addrs = append(addrs, AgentAddr(i, n))
		}
		port(ns, "r"+strconv.Itoa(i+1), addrs...)
		ipt := []string{"ip", "netns", "exec", ns, "iptables", "-w"}
		steps = append(steps,
			append(ipt[:len(ipt):len(ipt)], "-N", chainIn),
			append(ipt[:len(ipt):len(ipt)], "-N", chainOut),
			append(ipt[:len(ipt):len(ipt)], "-A", "INPUT", "-j", chainIn),
			append(ipt[:len(ipt):len(ipt)], "-A", "OUTPUT", "-j", chainOut))
	}
	for _, s := range steps {
		if err := sh(s[0], s[1:]...); err != nil {
			return nil, fmt.Errorf("building the lab network: %w", err)
		}
	}
	for _, ns := range append([]string{t.farm}, t.regions...) {
		h, err := openNS(ns)
		if err != nil {
			return nil, err
		}
		t.handles[ns] = h
	}
	return t, nil
}

// close removes every namespace of the topology (and so its veths and
// rules). Agents must be gone first: a namespace with a process in it
// outlives its name.
func (t *topology) close() {
	for _, h := range t.handles {
		h.close()
	}
	for _, ns := range append(append([]string{}, t.regions...), t.farm, t.hub) {
		_ = sh("ip", "netns", "del", ns)
	}
}

// region returns the namespace of region i (0-based).
func (t *topology) region(i int) string { return t.regions[i] }

// linkDown cuts region i from everything: its veth goes down.
func (t *topology) linkDown(i int) error {
	return sh("ip", "-n", t.regions[i], "link", "set", "eth0", "down")
}

// linkUp undoes linkDown.
func (t *topology) linkUp(i int) error {
	return sh("ip", "-n", t.regions[i], "link", "set", "eth0", "up")
}

// drop appends DROP rules in region i's namespace: out for packets it
// sends to dst, in for packets it receives from dst.
func (t *topology) drop(i int, in, out bool, dsts ...string) error {
	for _, d := range dsts {
		if out {
			if err := shIn(t.regions[i], "iptables", "-w", "-A", chainOut, "-d", d, "-j", "DROP"); err != nil {
				return err
			}
		}
		if in {
			if err := shIn(t.regions[i], "iptables", "-w", "-A", chainIn, "-s", d, "-j", "DROP"); err != nil {
				return err
			}
		}
	}
	return nil
}

// heal removes every rule drop added in region i.
func (t *topology) heal(i int) error {
	return errors.Join(shIn(t.regions[i], "iptables", "-w", "-F", chainIn), shIn(t.regions[i], "iptables", "-w", "-F", chainOut))
}

// nsHandle opens sockets inside a network namespace from this process: a
// socket belongs to the namespace of the thread that created it, so the
// harness switches one locked OS thread into the namespace, creates the
// socket, and switches back.
type nsHandle struct {
	name string
	// mu keeps the namespace's file open while a thread enters it: a
	// dial an HTTP client started may still be under way when the
	// topology closes (a race the detector caught in CI).
	mu     sync.RWMutex
	f      *os.File
	closed bool
}

func openNS(name string) (*nsHandle, error) {
	f, err := os.Open("/run/netns/" + name)
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", name, err)
	}
	return &nsHandle{name: name, f: f}, nil
}

func (h *nsHandle) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	_ = h.f.Close()
}

// errClosed is a dial or listen after the topology closed.
var errClosed = errors.New("network namespace closed")

func setns(fd uintptr) error { return unix.Setns(int(fd), unix.CLONE_NEWNET) }

// do runs fn on an OS thread inside the namespace. It uses a goroutine of
// its own: if switching back failed, that goroutine ends still locked to
// its thread, and the runtime then discards the thread rather than let
// other goroutines run in the wrong namespace.
func (h *nsHandle) do(fn func() error) error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return fmt.Errorf("%s: %w", h.name, errClosed)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer self.Close()
		if err := setns(h.f.Fd()); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering namespace %s: %w", h.name, err)
			return
		}
		ferr := fn()
		if err := setns(self.Fd()); err != nil {
			errc <- fmt.Errorf("leaving namespace %s: %w", h.name, err)
			return // still locked: the thread is discarded
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// dial connects from inside the namespace.
func (h *nsHandle) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := h.do(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// listen listens inside the namespace.
func (h *nsHandle) listen(network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := h.do(func() error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}
