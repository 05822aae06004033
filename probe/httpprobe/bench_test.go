package httpprobe

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/probe"
	"github.com/vantage-probe/vantage/probe/probetest"
)

// The benchmarks compare a probe with the floor: a bare net/http client
// doing the same fresh-connection request (new TCP connection, and TLS
// handshake with chain verification for HTTPS, per request). Both run
// against the same loopback server, whose CPU is part of every figure.

const benchBody = "ok: service healthy\n"

func benchCtx(b *testing.B) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	b.Cleanup(cancel)
	return ctx
}

func benchProbe(b *testing.B, o Options) {
	p := mustNew(b, o)
	ctx := benchCtx(b)
	b.ReportAllocs()
	cpu := processCPU()
	for b.Loop() {
		if r := p.Probe(ctx); !r.OK {
			b.Fatalf("probe failed: %s %s", r.Reason, r.Message)
		}
	}
	reportCPU(b, cpu)
}

// reportCPU adds cpu-ns/op: process CPU (client and server) per operation,
// the figure to compare on a machine whose wall clock is shared.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
}

// benchBare fetches url with a bare client. With shared=true one Transport
// (keep-alives off, so still a new connection per request) serves every
// request: the cheapest a Go client can do it. With shared=false each
// request gets a new Transport, as a naive fresh-connection prober would.
func benchBare(b *testing.B, url string, tlsConf *tls.Config, h2, shared bool) {
	ctx := benchCtx(b)
	newTransport := func() *http.Transport {
		return &http.Transport{DisableKeepAlives: true, TLSClientConfig: tlsConf, ForceAttemptHTTP2: h2}
	}
	tr := newTransport()
	b.ReportAllocs()
	cpu := processCPU()
	for b.Loop() {
		if !shared {
			tr = newTransport()
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			b.Fatal(err)
		}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || (h2 && resp.ProtoMajor != 2) {
			b.Fatalf("status %d proto %s", resp.StatusCode, resp.Proto)
		}
		if !shared {
			tr.CloseIdleConnections()
		}
	}
	reportCPU(b, cpu)
	tr.CloseIdleConnections()
}

func BenchmarkProbeHTTP(b *testing.B) {
	srv := probetest.NewHTTPServer(b, probetest.HTTPRespond(200, benchBody))
	b.Run("plain", func(b *testing.B) { benchProbe(b, Options{URL: srv.URL + "/health"}) })
	b.Run("body_regex", func(b *testing.B) {
		benchProbe(b, Options{URL: srv.URL + "/health", FailIfBodyNotMatches: []string{`healthy`}})
	})
}

func BenchmarkBareClientHTTP(b *testing.B) {
	srv := probetest.NewHTTPServer(b, probetest.HTTPRespond(200, benchBody))
	b.Run("shared_transport", func(b *testing.B) { benchBare(b, srv.URL+"/health", nil, false, true) })
	b.Run("transport_per_request", func(b *testing.B) { benchBare(b, srv.URL+"/health", nil, false, false) })
}

func BenchmarkProbeHTTPS(b *testing.B) {
	k := newPKI(b)
	srv := probetest.NewHTTPSServer(b, probetest.HTTPRespond(200, benchBody), k.leaf)
	ca := probe.TLSOptions{CAFile: k.caFile}
	b.Run("h1", func(b *testing.B) { benchProbe(b, Options{URL: srv.URL + "/health", TLS: ca, HTTPVersion: "1.1"}) })
	b.Run("h2", func(b *testing.B) { benchProbe(b, Options{URL: srv.URL + "/health", TLS: ca}) })
}

func BenchmarkBareClientHTTPS(b *testing.B) {
	k := newPKI(b)
	srv := probetest.NewHTTPSServer(b, probetest.HTTPRespond(200, benchBody), k.leaf)
	conf := &tls.Config{RootCAs: k.ca.Pool(), MinVersion: tls.VersionTLS12}
	b.Run("h1/shared_transport", func(b *testing.B) { benchBare(b, srv.URL+"/health", conf, false, true) })
	b.Run("h1/transport_per_request", func(b *testing.B) { benchBare(b, srv.URL+"/health", conf, false, false) })
	b.Run("h2/shared_transport", func(b *testing.B) { benchBare(b, srv.URL+"/health", conf, true, true) })
	b.Run("h2/transport_per_request", func(b *testing.B) { benchBare(b, srv.URL+"/health", conf, true, false) })
}

func BenchmarkProbeHTTP3(b *testing.B) {
	k := newPKI(b)
	srv := probetest.NewHTTP3Server(b, probetest.HTTPRespond(200, benchBody), k.leaf)
	benchProbe(b, Options{URL: srv.URL + "/health", TLS: probe.TLSOptions{CAFile: k.caFile}, HTTPVersion: "3"})
}
