package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vantage-probe/vantage/deploy/grafana"
)

func TestDashboardsCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "grafana")
	code, out, errs := runCLI("dashboards", "-out", dir)
	if code != exitOK {
		t.Fatalf("dashboards: code %d, %s", code, errs)
	}
	for name, want := range grafana.Files() {
		p := filepath.Join(dir, filepath.FromSlash(name))
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %v, or not the embedded file", p, err)
		}
		if !strings.Contains(out, "wrote "+p+" (") {
			t.Errorf("output does not name %s:\n%s", p, out)
		}
	}

	// Again: nothing is overwritten, and the refusal names the files.
	fleet := filepath.Join(dir, "vantage-fleet.json")
	if err := os.WriteFile(fleet, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCLI("dashboards", "-out", dir)
	if code != exitFail || out != "" || !strings.Contains(errs, fleet) || !strings.Contains(errs, "-force") {
		t.Errorf("second run: code %d, stdout %q, stderr %q", code, out, errs)
	}
	if b, _ := os.ReadFile(fleet); string(b) != "mine" {
		t.Error("overwrote a file without -force")
	}

	code, _, errs = runCLI("dashboards", "-out", dir, "-force", "-grafana-path", "/srv/grafana dashboards")
	if code != exitOK {
		t.Fatalf("-force: code %d, %s", code, errs)
	}
	if b, _ := os.ReadFile(fleet); !bytes.Equal(b, grafana.Files()["vantage-fleet.json"]) {
		t.Error("-force did not overwrite")
	}
	prov, _ := os.ReadFile(filepath.Join(dir, "provisioning", "dashboards.yaml"))
	if !strings.Contains(string(prov), "\n      path: \"/srv/grafana dashboards\"\n") {
		t.Errorf("-grafana-path not in the provider:\n%s", prov)
	}

	if code, _, _ := runCLI("dashboards"); code != exitUsage {
		t.Errorf("no -out: code %d, want %d", code, exitUsage)
	}
	if code, _, _ := runCLI("dashboards", "-out", dir, "extra"); code != exitUsage {
		t.Errorf("an argument: code %d, want %d", code, exitUsage)
	}
}
