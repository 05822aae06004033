package probetest

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

func testLeaf(t *testing.T) (*CA, tls.Certificate) {
	t.Helper()
	ca, err := NewCA("probetest http CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Leaf(Days(30), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return ca, leaf
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", url, err)
	}
	return resp, string(b)
}

func TestHTTPServers(t *testing.T) {
	ca, leaf := testLeaf(t)
	tlsConf := &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
	h := HTTPRespond(201, "made", "X-Test", "yes")

	plain := NewHTTPServer(t, h)
	h2 := NewHTTPSServer(t, h, leaf)
	h1 := NewHTTPS1Server(t, h, leaf)
	h3 := NewHTTP3Server(t, h, leaf)

	tr := &http.Transport{TLSClientConfig: tlsConf, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	h3tr := &http3.Transport{TLSClientConfig: tlsConf}
	t.Cleanup(func() { _ = h3tr.Close() })
	cases := []struct {
		url, proto string
		rt         http.RoundTripper
	}{
		{plain.URL, "HTTP/1.1", tr},
		{h2.URL, "HTTP/2.0", tr},
		{h1.URL, "HTTP/1.1", tr},
		{h3.URL, "HTTP/3.0", h3tr},
	}
	for _, c := range cases {
		resp, body := get(t, &http.Client{Transport: c.rt}, c.url+"/x")
		if resp.StatusCode != 201 || body != "made" || resp.Header.Get("X-Test") != "yes" || resp.Proto != c.proto {
			t.Errorf("%s: %d %q %v %s", c.url, resp.StatusCode, body, resp.Header, resp.Proto)
		}
		if !strings.HasPrefix(c.url, "http://127.0.0.1:") && !strings.HasPrefix(c.url, "https://127.0.0.1:") {
			t.Errorf("URL %q", c.url)
		}
	}
}

func TestHTTPHandlers(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/chain", HTTPRedirectChain(3, HTTPRespond(200, "end")))
	mux.Handle("/large", HTTPLargeBody(100_000))
	mux.Handle("/echo", HTTPEcho())
	mux.Handle("/slow", HTTPSlow(50*time.Millisecond, HTTPRespond(200, "late")))
	srv := NewHTTPServer(t, mux)

	hops := 0
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { hops++; return nil }}
	if resp, body := get(t, c, srv.URL+"/chain"); body != "end" || hops != 3 || resp.Request.URL.RawQuery != "hop=3" {
		t.Errorf("redirect chain: body %q after %d hops to %s", body, hops, resp.Request.URL)
	}
	if _, body := get(t, http.DefaultClient, srv.URL+"/large"); len(body) != 100_000 || strings.Trim(body, "x") != "" {
		t.Errorf("large body: %d bytes", len(body))
	}
	if _, body := get(t, http.DefaultClient, srv.URL+"/echo"); !strings.Contains(body, "method: GET\n") || !strings.Contains(body, "host: "+srv.Addr) {
		t.Errorf("echo: %q", body)
	}
	start := time.Now()
	if _, body := get(t, http.DefaultClient, srv.URL+"/slow"); body != "late" || time.Since(start) < 50*time.Millisecond {
		t.Errorf("slow: %q after %v", body, time.Since(start))
	}
}

// TestCloseWithHangingClient: Close returns even when a client keeps a
// request open on a handler that never answers.
func TestCloseWithHangingClient(t *testing.T) {
	entered := make(chan struct{})
	srv, err := StartHTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		HTTPHang().ServeHTTP(w, r)
	}))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get(srv.URL)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-entered
	start := time.Now()
	closed := make(chan struct{})
	go func() {
		_ = srv.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not return")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v: the hanging handler was not released", d)
	}
	if err := <-done; err == nil {
		t.Error("the hanging request got a response")
	}
}
