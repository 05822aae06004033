package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/vantage-probe/vantage/agent"
	"github.com/vantage-probe/vantage/agent/config"
	"github.com/vantage-probe/vantage/exporter/page"
	"github.com/vantage-probe/vantage/internal/memlimit"
)

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("-log-format %q: want text or json", format)
}

func runAgent(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("agent", "Usage: vantage agent -config FILE [flags]\n\n"+
		"Runs one agent: probes the targets the cluster assigns to it, shares results over\n"+
		"gossip, exports /metrics, the JSON API and the status page. Flags override the file.\n"+
		"SIGHUP or a change to the file (or an include) reloads; a bad file keeps the last good config.", stderr)
	cfgPath := fs.String("config", "vantage.toml", "config file (TOML)")
	region := fs.String("region", "", "region of this agent (overrides [agent] region)")
	node := fs.String("node", "", "unique node name (overrides [agent] node; default hostname)")
	listen := fs.String("listen", "", "HTTP listen address for /metrics, API and status page (overrides [agent] listen)")
	bind := fs.String("bind", "", "gossip bind address host:port (overrides [cluster] bind)")
	join := fs.String("join", "", "comma-separated seeds host:port to join (overrides [cluster] join)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if c := parse(fs, args); c >= 0 {
		return c
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "agent: unexpected argument %q (did you mean -config %s?)\n", fs.Arg(0), fs.Arg(0))
		return exitUsage
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "agent: %v\n", err)
		return exitUsage
	}
	ov := config.Overrides{Node: *node, Region: *region, Listen: *listen, Bind: *bind}
	if *join != "" {
		ov.Join = strings.Split(*join, ",")
	}
	cfg, err := config.Load(*cfgPath)
	if err == nil {
		err = cfg.ApplyOverrides(ov)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return exitFail
	}
	cfg.UseDefaultStateDir()
	// The soft memory limit, from GOMEMLIMIT, the container, memory_limit
	// or the number of targets (internal/memlimit), logged at start and
	// kept current through reloads; GOGC stays the runtime's (100 unless
	// the environment sets it).
	mem := memlimit.NewTuner(memlimit.Input{}, log)
	a, err := agent.New(agent.Options{ConfigPath: *cfgPath, Config: cfg, Version: version, Logger: log, Overrides: ov,
		Memory: mem})
	if err != nil {
		fmt.Fprintf(stderr, "agent: %v\n", err)
		return exitFail
	}
	a.Server().Page = page.New(a, page.Options{})
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("SIGHUP: reloading config")
				_ = a.Reload(ov)
			}
		}
	}()
	fmt.Fprintf(stderr, "vantage agent %s: node %s, region %s, status page http://%s/\n",
		version, cfg.Agent.Node, cfg.Agent.Region, a.HTTPAddr())
	if err := a.Run(ctx); err != nil {
		log.Error("agent stopped", "err", err)
		return exitFail
	}
	return exitOK
}

func runCheckConfig(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check-config", "Usage: vantage check-config FILE...\n\n"+
		"Validates each config file (and its includes). Prints every problem as FILE:LINE:COL: message\n"+
		"and exits 1 if there is any; otherwise prints a one-line summary per file and exits 0.", stderr)
	if c := parse(fs, args); c >= 0 {
		return c
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "check-config: name at least one config file")
		return exitUsage
	}
	code := exitOK
	for _, f := range fs.Args() {
		cfg, err := config.Load(f)
		if err == nil {
			cfg.UseDefaultStateDir()
			err = cfg.CheckStart() // what the agent also refuses at start
		}
		if err != nil {
			fmt.Fprintln(stdout, strings.TrimRight(err.Error(), "\n"))
			code = exitFail
			continue
		}
		fmt.Fprintf(stdout, "%s: ok, %s\n", f, cfg.Summary())
	}
	return code
}
