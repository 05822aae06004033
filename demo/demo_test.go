package demo

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemoDetectsFirstIncidentWithin30s runs the real demo (farm, six
// agents, fault script) until the fleet narrates the first incident.
func TestDemoDetectsFirstIncidentWithin30s(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a six-agent fleet for ~10s")
	}
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- Run(ctx, Options{Listen: "127.0.0.1:0", Out: &out}) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "INCIDENT api is DOWN") {
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("no incident within 30s of start; narration:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("first incident narrated %v after start", time.Since(start).Round(100*time.Millisecond))
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("demo: %v", err)
	}
	text := out.String()
	for _, want := range []string{"status page: http://", "6 agents in 3 regions", "api starts answering 503"} {
		if !strings.Contains(text, want) {
			t.Errorf("narration lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "suppressed: api") {
		t.Errorf("an all-region outage was narrated as suppressed:\n%s", text)
	}
}
