package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/vantage-probe/vantage/probe/probetest"
)

// TestProbeICMPWithoutPermission runs `vantage probe -type icmp` where
// neither kind of ICMP socket may be opened: in a network namespace whose
// net.ipv4.ping_group_range allows no group, from a user namespace of its
// own, which holds no CAP_NET_RAW over that network namespace (root in it
// or not). The failure must name both ways to allow ICMP.
func TestProbeICMPWithoutPermission(t *testing.T) {
	if !probetest.InNetNS(t) {
		return
	}
	probetest.Sysctl(t, "net.ipv4.ping_group_range", "1 0")
	cmd := exec.Command(os.Args[0], "probe", "-type", "icmp", "127.0.0.1")
	cmd.Env = append(os.Environ(), cliEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Skipf("no user namespace for the unprivileged probe: %v", err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitFail {
		t.Fatalf("exit %v, want %d (probe failed)\n%s%s", err, exitFail, out.String(), errb.String())
	}
	for _, want := range []string{"icmp 127.0.0.1: FAIL config_error", "no ICMP socket allowed for IPv4",
		"net.ipv4.ping_group_range", "sysctl -w net.ipv4.ping_group_range=", "CAP_NET_RAW"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
