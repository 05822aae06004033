package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/vantage-probe/vantage/deploy/grafana"
)

func runDashboards(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("dashboards", "Usage: vantage dashboards -out DIR [-force] [-grafana-path DIR]\n\n"+
		"Writes Vantage's Grafana dashboards (Grafana 10 or 11) and the provisioning files that load them:\n"+
		"  DIR/vantage-fleet.json              fleet overview: down, incidents, time to detect, suppressed, agents\n"+
		"  DIR/vantage-target.json             one target: verdict, regions, latency by phase, certificate, DNS, HTTP\n"+
		"  DIR/vantage-slo.json                availability, error budget left, burn rates (needs `vantage rules`)\n"+
		"  DIR/provisioning/dashboards.yaml    a file provider: copy it to Grafana's provisioning/dashboards/\n"+
		"                                      and the dashboards to -grafana-path\n"+
		"  DIR/provisioning/datasource.yaml    an example Prometheus datasource\n"+
		"Each dashboard picks its Prometheus in its Data source variable, so the UI import\n"+
		"(Dashboards > New > Import, upload the file) asks for nothing. Existing files are kept\n"+
		"unless -force. README.md, Dashboards, lists every panel.", stderr)
	out := fs.String("out", "", "directory to write into, created if missing (required)")
	force := fs.Bool("force", false, "overwrite files that exist")
	gpath := fs.String("grafana-path", grafana.DashboardsPath, "directory Grafana reads the dashboards from: the path in provisioning/dashboards.yaml")
	if c := parse(fs, args); c >= 0 {
		return c
	}
	if fs.NArg() > 0 || *out == "" {
		fmt.Fprintln(stderr, "dashboards: -out DIR is required, and no arguments: vantage dashboards -out DIR")
		return exitUsage
	}
	if *gpath == "" || strings.ContainsAny(*gpath, "\n\r") {
		fmt.Fprintf(stderr, "dashboards: -grafana-path %q: want a directory\n", *gpath)
		return exitUsage
	}
	files := grafana.Files()
	prov := "provisioning/dashboards.yaml"
	files[prov] = []byte(strings.Replace(string(files[prov]), "path: "+grafana.DashboardsPath+"\n", "path: "+yamlPath(*gpath)+"\n", 1))

	names := slices.Sorted(maps.Keys(files))
	if !*force {
		var exist []string
		for _, n := range names {
			p := filepath.Join(*out, filepath.FromSlash(n))
			if _, err := os.Lstat(p); err == nil {
				exist = append(exist, p)
			} else if !errors.Is(err, os.ErrNotExist) {
				fmt.Fprintf(stderr, "dashboards: %v\n", err)
				return exitFail
			}
		}
		if len(exist) > 0 {
			fmt.Fprintf(stderr, "dashboards: not overwriting %s (use -force to overwrite); nothing written\n", strings.Join(exist, ", "))
			return exitFail
		}
	}
	for _, n := range names {
		p := filepath.Join(*out, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			fmt.Fprintf(stderr, "dashboards: %v\n", err)
			return exitFail
		}
		if err := os.WriteFile(p, files[n], 0o644); err != nil {
			fmt.Fprintf(stderr, "dashboards: %v\n", err)
			return exitFail
		}
		fmt.Fprintf(stdout, "wrote %s (%d bytes)\n", p, len(files[n]))
	}
	return exitOK
}

var plainPath = regexp.MustCompile(`^[A-Za-z0-9_./-]+$`)

// yamlPath is p as a YAML scalar: plain when it is a simple path, else
// double-quoted (a JSON string is a valid YAML double-quoted scalar).
func yamlPath(p string) string {
	if plainPath.MatchString(p) {
		return p
	}
	return strconv.Quote(p)
}
