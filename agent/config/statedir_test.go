package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStateDirAndRetention(t *testing.T) {
	dir := writeFiles(t, map[string]string{"main.toml": "[agent]\nnode = \"a\"\nstate_dir = \"state\"\nretention = \"60d\"\n[cluster]\nbind = \"127.0.0.1:0\"\n"})
	cfg, err := Load(filepath.Join(dir, "main.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "state"); cfg.Agent.StateDir != want {
		t.Errorf("state_dir %q, want %q (relative to the file)", cfg.Agent.StateDir, want)
	}
	if cfg.Agent.Retention != 60*24*time.Hour {
		t.Errorf("retention %v", cfg.Agent.Retention)
	}
	if err := cfg.CheckStart(); err != nil {
		t.Errorf("CheckStart: %v", err)
	}

	dir = writeFiles(t, map[string]string{"main.toml": "[agent]\nnode = \"a\"\n[slo]\nwindow = \"7d\"\n"})
	cfg, err = Load(filepath.Join(dir, "main.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Agent.StateDir != "" || cfg.Agent.Retention != 14*24*time.Hour {
		t.Errorf("defaults: state_dir %q (want none until the agent picks one), retention %v (want the window + 7d)", cfg.Agent.StateDir, cfg.Agent.Retention)
	}
	cfg.UseDefaultStateDir()
	if !strings.HasSuffix(cfg.Agent.StateDir, filepath.Join("vantage", "a")) {
		t.Errorf("default state dir %q: want .../vantage/a", cfg.Agent.StateDir)
	}
}

func TestStateDirErrors(t *testing.T) {
	for _, tc := range []struct{ src, field, msg string }{
		{"[agent]\nnode = \"a\"\nretention = \"7d\" # ERR\n", "agent.retention", "shorter than the SLO window (672h0m0s)"},
		{"[agent]\nnode = \"a\"\nretention = \"-1h\" # ERR\n", "agent.retention", "negative"},
		{"[agent]\nnode = \"a\"\nretention = \"a week\" # ERR\n", "agent.retention", "want a number and a unit"},
		{"[agent]\nnode = \"a\"\nstate_dir = \"\" # ERR\n", "agent.state_dir", "leave it out for the default"},
		{"[agent]\nnode = \"a\"\nstate_dir = 5 # ERR\n", "agent.state_dir", ""},
	} {
		dir := writeFiles(t, map[string]string{"main.toml": tc.src})
		errs := loadErrors(t, dir)
		if len(errs) != 1 || errs[0].Field != tc.field || int(errs[0].Pos.Line) != markedLine(t, tc.src) || !strings.Contains(errs[0].Msg, tc.msg) {
			t.Errorf("%q: got %v, want one error on line %d, field %s, saying %q", tc.src, errs, markedLine(t, tc.src), tc.field, tc.msg)
		}
	}
}

// The agent refuses a state directory it cannot write, and check-config
// (CheckStart) refuses it with the same words at the same position.
func TestCheckStartRefusesUnusableStateDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plain")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	src := "[agent]\nnode = \"a\"\nstate_dir = \"plain/state\" # ERR\n[cluster]\nbind = \"127.0.0.1:0\"\n"
	if err := os.WriteFile(filepath.Join(dir, "main.toml"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(filepath.Join(dir, "main.toml"))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.CheckStart()
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 || errs[0].Field != "agent.state_dir" || errs[0].Pos.Line != 3 ||
		!strings.Contains(errs[0].Msg, "not a directory") {
		t.Fatalf("CheckStart: %v", err)
	}
	if err := CheckStateDir(file); err == nil || !strings.Contains(err.Error(), "is not a directory") {
		t.Errorf("CheckStateDir(a file): %v", err)
	}
	if err := CheckStateDir(filepath.Join(dir, "new", "deeper")); err != nil {
		t.Errorf("CheckStateDir(to be made under a writable dir): %v", err)
	}
}
