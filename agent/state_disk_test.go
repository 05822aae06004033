package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/agent/state"
	"github.com/vantage-probe/vantage/exporter"
	"github.com/vantage-probe/vantage/internal/testenv"
	"github.com/vantage-probe/vantage/probe/probetest"
)

// smallDisk mounts a tmpfs of size bytes on a fresh directory (root
// only; the test skips otherwise) and unmounts it at cleanup.
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file on dir's file system until it is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			return p
		}
	}
}

// TestFullDiskKeepsProbing: the state's disk fills up under a running
// agent. The agent says so in its log, once (not once a flush), counts
// every failed write in vantage_state_write_errors_total and the API, and
// goes on probing and answering; once there is room again, the next flush
// writes what the failed ones carried.
func TestFullDiskKeepsProbing(t *testing.T) {
	disk := smallDisk(t, 256<<10)
	srv, err := probetest.StartHTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") }))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var targets strings.Builder
	for i := range 100 {
		fmt.Fprintf(&targets, "[[target]]\nname = \"t%03d\"\ntype = \"http\"\nurl = \"%s/%d\"\n", i, srv.URL, i)
	}
	path := filepath.Join(t.TempDir(), "vantage.toml")
	writeConfig(t, path, fmt.Sprintf(`
[agent]
node = "solo"
listen = "127.0.0.1:0"
state_dir = %q
[cluster]
bind = "127.0.0.1:0"
[quorum]
min_regions = 1
[defaults]
interval = "1s"
timeout = "500ms"
%s`, filepath.Join(disk, "state"), targets.String()))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.Output{}
	a, err := New(Options{ConfigPath: path, Config: cfg, Version: "test", WatchEvery: -1, ClusterTuning: fastCluster,
		StateFlushEvery: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	filler := fill(t, disk) // the store is open; nothing more fits
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()

	testenv.Poll(t, 20*time.Second, "three failed writes", func() bool { return a.persist.errors.Get() >= 3 })
	probes := func() uint64 {
		var n uint64
		for _, v := range a.Targets(exporter.TargetQuery{}).Views {
			if v.Local != nil {
				n += v.Local.Success + v.Local.Failure
			}
		}
		return n
	}
	n0 := probes()
	testenv.Poll(t, 20*time.Second, "probing to go on while writes fail", func() bool { return probes() > n0+100 })
	if code, _ := get(t, a, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz %d while the disk is full", code)
	}
	if v := a.Self().State; v == nil || v.OK || v.WriteErrors < 3 {
		t.Errorf("API state %+v, want not ok with write errors", v)
	}
	if m := scrape(t, a); !strings.Contains(m, "vantage_state_write_errors_total ") {
		t.Errorf("no vantage_state_write_errors_total in /metrics")
	}
	if n := strings.Count(logs.String(), "writing the state failed"); n != 1 {
		t.Errorf("%d log lines about failed writes after %d failures, want 1 (rate-limited):\n%s", n, a.persist.errors.Get(), logs)
	}
	if !strings.Contains(logs.String(), "no space left on device") {
		t.Errorf("the log does not say why:\n%s", logs)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	since := time.Now()
	testenv.Poll(t, 20*time.Second, "a write to succeed once there is room", func() bool {
		v := a.Self().State
		return v != nil && v.OK && v.LastWrite.After(since)
	})
	if !strings.Contains(logs.String(), "writing the state works again") {
		t.Errorf("the log does not say writes recovered")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil
	st, err := state.OpenReadOnly(filepath.Join(disk, "state"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	snap, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.History) != 100 || len(snap.Targets) != 100 {
		t.Errorf("after the disk had room again the state holds %d histories and %d targets, want 100 each", len(snap.History), len(snap.Targets))
	}
}

// TestReadOnlyStateDirIsRefused: a state directory on a read-only file
// system is refused at start, by the agent and by check-config's
// CheckStart alike, naming the key and why; a disk that turns read-only
// later is a failed write like a full one (TestFullDiskKeepsProbing).
func TestReadOnlyStateDirIsRefused(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a read-only tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	path := filepath.Join(t.TempDir(), "vantage.toml")
	writeConfig(t, path, fmt.Sprintf("[agent]\nnode = \"ro\"\nlisten = \"127.0.0.1:0\"\nstate_dir = %q\n[cluster]\nbind = \"127.0.0.1:0\"\n", filepath.Join(dir, "state")))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	checked := cfg.CheckStart()
	_, err = New(Options{ConfigPath: path, Config: cfg, Version: "test", WatchEvery: -1})
	for _, e := range []error{checked, err} {
		if e == nil || !strings.Contains(e.Error(), "agent.state_dir") || !strings.Contains(e.Error(), "read-only file system") {
			t.Errorf("a read-only state directory: %v, want a refusal naming agent.state_dir and why", e)
		}
	}
	if checked != nil && err != nil && checked.Error() != err.Error() {
		t.Errorf("check-config says %q, the agent %q", checked, err)
	}
}
