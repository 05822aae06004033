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
// (vantage_config_last_reload_successful 0), and returned.
func (a *Agent) Reload(ov Overrides) error {
	if a.opts.ConfigPath == "" {
		return nil
	}
	cfg, err := config.Load(a.opts.ConfigPath)
	if err == nil {
		err = cfg.ApplyOverrides(ov)
	}
	if err == nil {
		err = a.swap(cfg)
	}
	a.mu.Lock()
	a.reloadOK = err == nil
	a.reloadAt = time.Now()
	a.reloadErr = ""
	if err != nil {
		a.reloadErr = err.Error()
	}
	a.mu.Unlock()
	a.reloadOKG.Store(err == nil)
	if err != nil {
		a.log.Error("config reload failed; still running the last good config", "file", a.opts.ConfigPath, "err", err)
		return err
	}
	a.reloadTS.Store(time.Now().Unix())
	a.log.Info("config reloaded", "file", a.opts.ConfigPath, "summary", cfg.Summary())
	return nil
}

// swap installs a validated config. Identity settings (node, region,
// listen and bind addresses) need a restart; a change is logged.
func (a *Agent) swap(cfg *config.Config) error {
	old := a.cfg.Load()
	if cfg.Agent.Node != old.Agent.Node || cfg.Agent.Region != old.Agent.Region ||
		cfg.Agent.Listen != old.Agent.Listen || cfg.Cluster.Bind != old.Cluster.Bind {
		a.log.Warn("node, region, listen and bind changes take effect on restart")
		cfg.Agent.Node, cfg.Agent.Region, cfg.Agent.Listen, cfg.Cluster.Bind =
			old.Agent.Node, old.Agent.Region, old.Agent.Listen, old.Cluster.Bind
	}
	if err := a.srv.SetWebConfig(webConfig(cfg)); err != nil {
		return err
	}
	if ctx := a.runCtx.Load(); ctx != nil {
		if err := a.configureAlerting(*ctx, cfg); err != nil {
			return err
		}
	}
	prev := a.cfg.Swap(cfg)
	if err := a.applyTargets(cfg); err != nil {
		a.cfg.Store(prev)
		return err
	}
	if keys, err := loadKeys(cfg.Cluster.SecretKeyFile); err == nil && len(keys) > 0 {
		if err := a.clu().SetKeys(keys); err != nil {
			a.log.Error("gossip key rotation failed", "err", err)
		}
	} else if err != nil {
		a.log.Error("gossip key file", "err", err)
	}
	a.clu().SetTargets(clusterTargets(cfg))
	a.reschedule()
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
