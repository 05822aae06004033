package agent

import (
	"context"
	"os"
	"time"

	"github.com/vantage-probe/vantage/agent/config"
)

// Overrides are the command-line flags that win over the config file; they
// are re-applied on every reload.
type Overrides = config.Overrides

// Reload parses and validates the config file again and swaps it in. On any
// error the running config stays, the error is logged and exported
// (vantage_config_last_reload_successful 0), and returned. Reloads are
// serialised: SIGHUP and the file watcher may ask at the same moment.
func (a *Agent) Reload(ov Overrides) error {
	if a.opts.ConfigPath == "" {
		return nil
	}
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	cfg, err := config.Load(a.opts.ConfigPath)
	if err == nil {
		err = cfg.ApplyOverrides(ov)
	}
	if err == nil {
		err = a.swap(cfg)
	}
	now := time.Now()
	prev := a.reload.Load()
	st := &reloadStatus{ok: err == nil, at: now, lastGood: prev.lastGood}
	if err != nil {
		st.err = err.Error()
		a.reload.Store(st)
		a.log.Error("config reload failed; still running the last good config", "file", a.opts.ConfigPath, "err", err)
		return err
	}
	st.lastGood = now
	a.reload.Store(st)
	a.log.Info("config reloaded", "file", a.opts.ConfigPath, "summary", cfg.Summary())
	return nil
}

// swap installs a validated config. Identity settings (node, region,
// listen and bind addresses) need a restart; a change is logged. A swap
// that fails part-way puts back what it had changed: the last good config
// keeps running whole.
func (a *Agent) swap(cfg *config.Config) error {
	old := a.cfg.Load()
	if cfg.Agent.Node != old.Agent.Node || cfg.Agent.Region != old.Agent.Region ||
		cfg.Agent.Listen != old.Agent.Listen || cfg.Cluster.Bind != old.Cluster.Bind {
		a.log.Warn("node, region, listen and bind changes take effect on restart")
		cfg.Agent.Node, cfg.Agent.Region, cfg.Agent.Listen, cfg.Cluster.Bind =
			old.Agent.Node, old.Agent.Region, old.Agent.Listen, old.Cluster.Bind
	}
	if cfg.Agent.StateDir != "" && cfg.Agent.StateDir != old.Agent.StateDir {
		a.log.Warn("state_dir changes take effect on restart", "state_dir", old.Agent.StateDir)
	}
	cfg.Agent.StateDir = old.Agent.StateDir // the default, when the file sets none
	if err := a.srv.SetWebConfig(webConfig(cfg)); err != nil {
		return err
	}
	undo := func() {
		if err := a.srv.SetWebConfig(webConfig(old)); err != nil {
			a.log.Error("restoring the last good web config", "err", err)
		}
	}
	prev := a.cfg.Swap(cfg)
	if err := a.applyTargets(cfg); err != nil {
		a.cfg.Store(prev)
		undo()
		return err
	}
	if ctx := a.runCtx.Load(); ctx != nil {
		if err := a.configureAlerting(*ctx, cfg); err != nil {
			a.cfg.Store(prev)
			_ = a.applyTargets(prev)
			undo()
			return err
		}
		if err := a.configurePush(*ctx, cfg); err != nil {
			a.cfg.Store(prev)
			_ = a.applyTargets(prev)
			_ = a.configureAlerting(*ctx, prev)
			undo()
			return err
		}
	}
	if keys, err := config.ReadGossipKeys(cfg.Cluster.SecretKeyFile); err == nil && len(keys) > 0 {
		if err := a.Cluster().SetKeys(keys); err != nil {
			a.log.Error("gossip key rotation failed", "err", err)
		}
	} else if err != nil {
		a.log.Error("gossip key file", "err", err)
	}
	a.Cluster().SetTargets(clusterTargets(cfg))
	a.reschedule()
	if a.opts.Memory != nil {
		a.opts.Memory.Update(cfg.Agent.MemoryLimit, len(cfg.Targets))
	}
	return nil
}

// watch reloads when any config file (main or include) changes.
func (a *Agent) watch(ctx context.Context) {
	stamp := func() map[string]time.Time {
		m := map[string]time.Time{}
		for _, f := range a.cfg.Load().Files {
			if fi, err := os.Stat(f); err == nil {
				m[f] = fi.ModTime()
			}
		}
		return m
	}
	last := stamp()
	t := time.NewTicker(a.opts.WatchEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := stamp()
		changed := len(now) != len(last)
		for f, m := range now {
			if !last[f].Equal(m) {
				changed = true
			}
		}
		if changed {
			a.log.Info("config file changed; reloading")
			_ = a.Reload(a.opts.Overrides)
			last = stamp()
		}
	}
}
