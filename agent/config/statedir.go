package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// RetentionMargin is what the default retention keeps beyond the SLO
// window: a report of the window that just ended still finds its start.
const RetentionMargin = 7 * 24 * time.Hour

// SystemStateDir is where `vantage agent` keeps its state by default when
// it may write there (a system service: StateDirectory=vantage, the
// image's VOLUME).
const SystemStateDir = "/var/lib/vantage"

// StateFile is the name of the state file in a state directory (the
// agent/state package's FileName; config imports nothing of it).
const stateFile = "vantage.db"

// StateRootEnv, when set, replaces the default state directories' root:
// the state directory is $VANTAGE_STATE_ROOT/<node> (packagers, tests).
const StateRootEnv = "VANTAGE_STATE_ROOT"

// DefaultStateDir is the state directory of an agent whose config sets
// none: $VANTAGE_STATE_ROOT/<node> when that is set, else
// /var/lib/vantage/<node> when /var/lib/vantage is writable (or may be
// created), else $XDG_STATE_HOME/vantage/<node>, else
// ~/.local/state/vantage/<node>, else the user's cache directory.
func DefaultStateDir(node string) string {
	name := strings.NewReplacer("/", "_", string(filepath.Separator), "_").Replace(node)
	if name == "" || name == "." || name == ".." {
		name = "agent"
	}
	if r := os.Getenv(StateRootEnv); filepath.IsAbs(r) {
		return filepath.Join(r, name)
	}
	if CheckStateDir(SystemStateDir) == nil {
		return filepath.Join(SystemStateDir, name)
	}
	if x := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "vantage", name)
	}
	if h, err := os.UserHomeDir(); err == nil && h != "" && h != "/" {
		return filepath.Join(h, ".local", "state", "vantage", name)
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "vantage", name)
	}
	return filepath.Join(os.TempDir(), "vantage", name)
}

// CheckStateDir reports why an agent could not keep its state in dir: it
// (or, when it does not exist yet, the nearest directory above it, where
// it would be made) must be a directory this process may write, and a
// state file already there must be writable. It makes nothing.
func CheckStateDir(dir string) error {
	p := filepath.Clean(dir)
	for {
		fi, err := os.Stat(p)
		if err == nil {
			if !fi.IsDir() {
				if p == filepath.Clean(dir) {
					return fmt.Errorf("%q is not a directory", dir)
				}
				return fmt.Errorf("%q cannot be made: %q is not a directory", dir, p)
			}
			if err := unix.Access(p, unix.W_OK|unix.X_OK); err != nil {
				if p == filepath.Clean(dir) {
					return fmt.Errorf("%q is not writable: %v", dir, err)
				}
				return fmt.Errorf("%q cannot be made: %q is not writable: %v", dir, p, err)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%q: %v", dir, unwrapPath(err))
		}
		up := filepath.Dir(p)
		if up == p {
			return fmt.Errorf("%q: no existing directory above it", dir)
		}
		p = up
	}
	f := filepath.Join(dir, stateFile)
	if fi, err := os.Stat(f); err == nil {
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%q is not a regular file", f)
		}
		if err := unix.Access(f, unix.R_OK|unix.W_OK); err != nil {
			return fmt.Errorf("%q is not writable: %v", f, err)
		}
	}
	return nil
}

// UseDefaultStateDir gives a config that sets no [agent].state_dir the
// default one (DefaultStateDir): what `vantage agent` and check-config do,
// so both judge the directory the agent will use.
func (c *Config) UseDefaultStateDir() {
	if c.Agent.StateDir == "" {
		c.Agent.StateDir = DefaultStateDir(c.Agent.Node)
	}
}
