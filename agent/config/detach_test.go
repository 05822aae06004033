package config

import (
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

// A loaded config must not keep the file's text alive through its strings
// (each decoded string is a slice of the whole text): the agent holds its
// config for months. A config padded with 8 MB of comments must cost its
// values, not its text.
func TestConfigKeepsNoneOfTheFileText(t *testing.T) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	var b strings.Builder
	b.WriteString("[agent]\nregion = \"eu-west\"\n[exporter]\nbasic_auth_users = { ops = \"$2a$10$abcdefghijklmnopqrstuv\" }\n")
	for i := range 4 {
		b.WriteString("# " + strings.Repeat("x", 2<<20) + "\n")
		b.WriteString("[[target]]\nname = \"t" + string(rune('a'+i)) + "\"\ntype = \"http\"\nurl = \"https://svc.example/health\"\nlabels = { team = \"pay\" }\n[target.http]\nheaders = { X-Team = \"pay\" }\nbody_regex = \"ok\"\njson = [{ path = \"status\", equals = \"UP-and-running\" }]\n")
		b.WriteString("[[target]]\nname = \"g" + string(rune('a'+i)) + "\"\ntype = \"grpc\"\naddress = \"orders.example:50051\"\n[target.grpc]\nservice = \"orders.v1.Orders\"\n")
		b.WriteString("[[target]]\nname = \"i" + string(rune('a'+i)) + "\"\ntype = \"icmp\"\naddress = \"gw.example\"\n")
	}
	text := b.String()
	b.Reset()
	cfg, err := Parse("padded.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	text = ""
	runtime.GC()
	runtime.ReadMemStats(&ms)
	if grown := int64(ms.HeapAlloc) - int64(before); grown > 2<<20 {
		t.Errorf("the loaded config holds %d KB, over 8 MB of text: it keeps the text alive", grown>>10)
	}
	// Still the same values, and equal strings are one copy.
	ta, tb := cfg.Target("ta"), cfg.Target("tb")
	if ta == nil || ta.HTTP().URL != "https://svc.example/health" || ta.Labels["team"] != "pay" || ta.HTTP().Headers["X-Team"] != "pay" ||
		cfg.Agent.Region != "eu-west" || cfg.Exporter.BasicAuthUsers["ops"] == "" || len(ta.HTTP().JSON) != 1 ||
		ta.HTTP().JSON[0].Value != "UP-and-running" || cfg.Target("gb").GRPC.Service != "orders.v1.Orders" || cfg.Target("ic").ICMP.Address != "gw.example" {
		t.Fatalf("values lost: %+v", ta)
	}
	if unsafe.StringData(ta.url) != unsafe.StringData(tb.url) {
		t.Errorf("two targets' equal URLs are two copies")
	}
	runtime.KeepAlive(cfg)
}
