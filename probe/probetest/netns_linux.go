//go:build linux

package probetest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// netnsEnv marks the child process InNetNS starts, and names its test.
const netnsEnv = "VANTAGE_TEST_NETNS"

// InNetNS runs the calling test in a network namespace of its own, where
// it may set sysctls, add routes and open raw sockets without touching the
// host: it runs the test binary again, for this test alone, in a new
// namespace (CLONE_NEWNET; with CLONE_NEWUSER too when not root), passes
// on the outcome and returns false. In that namespace it brings lo up and
// returns true. Call it first, from a top-level test:
//
//	func TestX(t *testing.T) {
//		if !probetest.InNetNS(t) {
//			return
//		}
//		... runs in the namespace
//	}
//
// It skips the test when no namespace can be made.
func InNetNS(t *testing.T) bool {
	t.Helper()
	if os.Getenv(netnsEnv) == t.Name() {
		if err := linkUp("lo"); err != nil {
			t.Fatalf("in the network namespace: lo up: %v", err)
		}
		return true
	}
	if strings.Contains(t.Name(), "/") {
		t.Fatalf("InNetNS: call it from a top-level test, not %s", t.Name())
	}
	args := []string{"-test.run=^" + regexp.QuoteMeta(t.Name()) + "$", "-test.v", "-test.count=1", "-test.timeout=5m"}
	if testing.Short() {
		args = append(args, "-test.short")
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), netnsEnv+"="+t.Name())
	attr := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() != 0 {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}
	}
	cmd.SysProcAttr = attr
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Skipf("no network namespace for this test (needs root, or unprivileged user namespaces): %v", err)
	}
	err := cmd.Wait()
	if err == nil && bytes.Contains(out.Bytes(), []byte("--- SKIP: "+t.Name()+" ")) {
		t.Skipf("in a network namespace:\n%s", out.Bytes())
	}
	if err != nil {
		t.Fatalf("in a network namespace: %v\n%s", err, out.Bytes())
	}
	t.Logf("in a network namespace:\n%s", out.Bytes())
	return false
}

// Sysctl sets a sysctl (dotted, e.g. net.ipv4.ping_group_range) in the
// test's network namespace. It refuses outside InNetNS, so that no test
// changes the host.
func Sysctl(t testing.TB, name, value string) {
	t.Helper()
	if os.Getenv(netnsEnv) == "" {
		t.Fatalf("Sysctl %s: only inside InNetNS", name)
	}
	p := filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/"))
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		t.Fatalf("sysctl %s=%q: %v", name, value, err)
	}
}

// IPCommand runs ip(8) with args in the test's network namespace (to add
// routes or addresses), skipping the test when ip is not installed.
func IPCommand(t testing.TB, args ...string) {
	t.Helper()
	if os.Getenv(netnsEnv) == "" {
		t.Fatalf("IPCommand %v: only inside InNetNS", args)
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		for _, p := range []string{"/usr/sbin/ip", "/sbin/ip"} {
			if _, serr := os.Stat(p); serr == nil {
				ip, err = p, nil
				break
			}
		}
	}
	if err != nil {
		t.Skipf("ip(8) is not installed: %v", err)
	}
	if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// linkUp sets IFF_UP on the named interface with SIOCSIFFLAGS.
func linkUp(name string) error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	var ifr [40]byte // struct ifreq: the name, then a union whose first member here is the flags
	copy(ifr[:syscall.IFNAMSIZ-1], name)
	ioctl := func(req uintptr) error {
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(&ifr[0]))); e != 0 {
			return e
		}
		return nil
	}
	if err := ioctl(syscall.SIOCGIFFLAGS); err != nil {
		return err
	}
	flags := binary.NativeEndian.Uint16(ifr[syscall.IFNAMSIZ:])
	binary.NativeEndian.PutUint16(ifr[syscall.IFNAMSIZ:], flags|syscall.IFF_UP)
	if err := ioctl(syscall.SIOCSIFFLAGS); err != nil {
		return errors.Join(errors.New("SIOCSIFFLAGS"), err)
	}
	return nil
}
