package lab

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"
)

// clientFrom is an HTTP client whose connections leave from source ip, as
// an agent's probes do.
func clientFrom(ip string, timeout time.Duration) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

func status(t *testing.T, c *http.Client, url string) int {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestFarmFailsByModeAndBySourcePrefix(t *testing.T) {
	f, err := StartFarm([]string{"a", "b"}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	eu, us := clientFrom("127.77.1.1", 5*time.Second), clientFrom("127.77.2.1", 5*time.Second)

	if s := status(t, eu, f.URL("a")); s != http.StatusOK {
		t.Fatalf("healthy target: %d, want 200", s)
	}
	if s := status(t, eu, f.URL("nope")); s != http.StatusNotFound {
		t.Errorf("unknown target: %d, want 404", s)
	}
	before := time.Now()
	flipped := f.Set("a", Down)
	if flipped.Before(before) || time.Since(flipped) > time.Second {
		t.Errorf("Set returned %v, not the moment of the flip (called at %v)", flipped, before)
	}
	if s := status(t, us, f.URL("a")); s != http.StatusServiceUnavailable {
		t.Errorf("down target: %d, want 503", s)
	}
	if s := status(t, us, f.URL("b")); s != http.StatusOK {
		t.Errorf("the other target: %d, want 200", s)
	}
	f.Set("a", Healthy)

	// One region's prefix fails; the other region still gets 200.
	f.Block("b", "127.77.1.", true)
	if s := status(t, eu, f.URL("b")); s != http.StatusBadGateway {
		t.Errorf("blocked region: %d, want 502", s)
	}
	if s := status(t, us, f.URL("b")); s != http.StatusOK {
		t.Errorf("other region: %d, want 200", s)
	}
	f.Block("b", "127.77.1.", false)
	f.BlockAll("127.77.2.", true)
	if status(t, us, f.URL("a")) != http.StatusBadGateway || status(t, us, f.URL("b")) != http.StatusBadGateway {
		t.Errorf("a region cut off from every target still gets answers")
	}
	if s := status(t, eu, f.URL("a")); s != http.StatusOK {
		t.Errorf("the region not cut off: %d, want 200", s)
	}
	f.BlockAll("127.77.2.", false)
	if s := status(t, us, f.URL("b")); s != http.StatusOK {
		t.Errorf("after unblocking: %d, want 200", s)
	}

	hits := f.Hits("b", before, time.Now().Add(time.Second))
	var fromEU, fromUS int
	for _, h := range hits {
		switch h.From {
		case "127.77.1.1":
			fromEU++
		case "127.77.2.1":
			fromUS++
		}
	}
	if len(hits) != 5 || fromEU != 1 || fromUS != 4 {
		t.Errorf("hits on b since the flip: %d (eu %d, us %d), want 5 (eu 1, us 4): %+v", len(hits), fromEU, fromUS, hits)
	}
}

func TestFarmSlowTargetOutlastsTheTimeout(t *testing.T) {
	f, err := StartFarm([]string{"s"}, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	f.Set("s", Slow)
	c := clientFrom("127.77.3.1", 300*time.Millisecond)
	_, err = c.Get(f.URL("s"))
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("slow target answered within 300ms: %v", err)
	}
	// Close must not wait for the slow handler's delay.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.Close() }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("Close waited for a slow request")
	}
}
