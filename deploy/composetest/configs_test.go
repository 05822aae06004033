package composetest

import (
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vantage-probe/vantage/agent/config"
)

// These tests need no Docker: they check that every config shipped under
// deploy/ loads, and that the compose fleet's files agree with each other
// (an advertise address that is not the agent's backbone address makes a
// fleet that starts, turns healthy in its own region and never forms).

func repoPath(t *testing.T, elem ...string) string {
	t.Helper()
	return filepath.Join(append([]string{"..", ".."}, elem...)...)
}

func TestImageDefaultConfigLoads(t *testing.T) {
	cfg, err := config.Load(repoPath(t, "deploy", "docker", "vantage.toml"))
	if err != nil {
		t.Fatal(err)
	}
	// The image's HEALTHCHECK asks 127.0.0.1:9115; published ports need all
	// interfaces; with no key the gossip must stay on loopback.
	if cfg.Agent.Listen != "0.0.0.0:9115" {
		t.Errorf("listen %q, want 0.0.0.0:9115", cfg.Agent.Listen)
	}
	if !strings.HasPrefix(cfg.Cluster.Bind, "127.") || len(cfg.Cluster.Join) != 0 || cfg.Cluster.SecretKeyFile != "" {
		t.Errorf("bind %q join %v key %q: want loopback gossip, no seeds, no key", cfg.Cluster.Bind, cfg.Cluster.Join, cfg.Cluster.SecretKeyFile)
	}
}

func TestKubernetesConfigLoads(t *testing.T) {
	path := repoPath(t, "deploy", "kubernetes", "base", "vantage.toml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The key comes from the Secret mounted in the pod; stand in for it.
	const inPod = `secret_key_file = "/var/run/secrets/vantage/gossip.key"`
	if !strings.Contains(string(data), inPod) {
		t.Fatalf("%s: no line %s (deployment.yaml mounts the Secret there)", path, inPod)
	}
	key := filepath.Join(t.TempDir(), "gossip.key")
	if err := os.WriteFile(key, []byte("mjGo9vmlIPQSKWosEYAtSiPLeJEUqCCuHTH0f8eDy5g=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.Replace(string(data), inPod, `secret_key_file = "`+filepath.ToSlash(key)+`"`, 1))
	cfg, err := config.Parse(path, data)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Agent.Listen != "0.0.0.0:9115" {
		t.Errorf("listen %q: the kubelet's probes and Prometheus need the pod address", cfg.Agent.Listen)
	}
	if !slices.Contains(cfg.Cluster.Join, "vantage-gossip:7946") {
		t.Errorf("join %v: want the headless Service vantage-gossip:7946", cfg.Cluster.Join)
	}
}

func TestComposeConfigsAgree(t *testing.T) {
	yml, err := os.ReadFile(repoPath(t, "deploy", "compose", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := serviceBlocks(string(yml))
	if !strings.Contains(string(yml), "subnet: "+backboneSubnet) {
		t.Fatalf("docker-compose.yml: no backbone subnet %s", backboneSubnet)
	}
	subnet := netip.MustParsePrefix(backboneSubnet)
	backboneIP := map[string]string{} // agent -> address in docker-compose.yml
	ipRe := regexp.MustCompile(`ipv4_address:\s*([0-9.]+)`)
	for _, a := range fleetAgents() {
		m := ipRe.FindStringSubmatch(blocks[a])
		if m == nil {
			t.Fatalf("docker-compose.yml: service %s has no backbone ipv4_address", a)
		}
		backboneIP[a] = m[1]
		if !strings.Contains(blocks[a], "/etc/vantage/"+a+".toml") {
			t.Errorf("docker-compose.yml: service %s does not run config/%s.toml", a, a)
		}
	}
	var all []string
	for _, a := range fleetAgents() {
		cfg, err := config.Load(repoPath(t, "deploy", "compose", "config", a+".toml"))
		if err != nil {
			t.Errorf("%s: %v", a, err)
			continue
		}
		region := a[:strings.LastIndex(a, "-")]
		if cfg.Agent.Node != a || cfg.Agent.Region != region {
			t.Errorf("%s.toml: node %q region %q, want %q %q", a, cfg.Agent.Node, cfg.Agent.Region, a, region)
		}
		if want := backboneIP[a] + ":7946"; cfg.Cluster.Advertise != want {
			t.Errorf("%s.toml: advertise %q, but docker-compose.yml gives it %s on the backbone", a, cfg.Cluster.Advertise, want)
		}
		for _, seed := range cfg.Cluster.Join {
			ap, err := netip.ParseAddrPort(seed)
			if err != nil || !subnet.Contains(ap.Addr()) || !slices.Contains(mapValues(backboneIP), ap.Addr().String()) {
				t.Errorf("%s.toml: seed %q is not an agent's backbone address", a, seed)
			}
		}
		if cfg.Agent.Listen != "0.0.0.0:9115" || filepath.Base(cfg.Cluster.SecretKeyFile) != "gossip.demo.key" {
			t.Errorf("%s.toml: listen %q key %q", a, cfg.Agent.Listen, cfg.Cluster.SecretKeyFile)
		}
		var names []string
		for _, tg := range cfg.Targets {
			names = append(names, tg.Name)
		}
		if len(names) != wantTargets {
			t.Errorf("%s.toml: %d targets %v, want %d", a, len(names), names, wantTargets)
		}
		// The partition test tells targets on the cut region's agents from
		// the others by name.
		if !slices.Contains(names, a+"-http") {
			t.Errorf("%s.toml: no target %s-http among %v", a, a, names)
		}
		all = append(all, strings.Join(names, ","))
	}
	for i := 1; i < len(all); i++ {
		if all[i] != all[0] {
			t.Errorf("agents disagree on the target list: %s vs %s", all[0], all[i])
		}
	}
}

// serviceBlocks splits the services of a compose file by their two-space
// indented keys; enough for our own file, with no YAML library.
func serviceBlocks(yml string) map[string]string {
	out := map[string]string{}
	name, in := "", false
	keyRe := regexp.MustCompile(`^  ([A-Za-z0-9_.-]+):\s*$`)
	for _, line := range strings.Split(yml, "\n") {
		switch {
		case line == "services:":
			in = true
			continue
		case in && line != "" && !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "#"):
			in = false
		}
		if !in {
			continue
		}
		if m := keyRe.FindStringSubmatch(line); m != nil {
			name = m[1]
			continue
		}
		if name != "" {
			out[name] += line + "\n"
		}
	}
	return out
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
