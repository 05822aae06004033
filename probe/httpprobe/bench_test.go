package httpprobe

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
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
	js := probetest.NewHTTPServer(b, probetest.HTTPRespond(200, jsonBenchBody(), "Content-Type", "application/json"))
	b.Run("json_1KB", func(b *testing.B) { benchProbe(b, Options{URL: js.URL + "/health"}) })
	b.Run("json_1KB_3_conditions", func(b *testing.B) { benchProbe(b, Options{URL: js.URL + "/health", JSON: jsonBenchConditions}) })
}

// jsonBenchConditions are three typical conditions: a status string, a
// latency bound deep in the document, an element of an array.
var jsonBenchConditions = []JSONCondition{
	{Path: "status", Op: JSONEquals, Value: "UP"},
	{Path: "components.db.details.latency_ms", Op: JSONLessThan, Value: int64(100)},
	{Path: "components.disk.details.volumes[1].free_ratio", Op: JSONGreaterThan, Value: 0.1},
}

// jsonBenchBody is a 1 KB health document in the shape of Spring Boot's
// actuator/health.
func jsonBenchBody() string {
	var b strings.Builder
	b.WriteString(`{"status":"UP","components":{`)
	b.WriteString(`"db":{"status":"UP","details":{"database":"PostgreSQL","validationQuery":"isValid()","latency_ms":12}},`)
	b.WriteString(`"disk":{"status":"UP","details":{"volumes":[{"path":"/","total":107374182400,"free_ratio":0.42},{"path":"/data","total":536870912000,"free_ratio":0.37}],"threshold":10485760}},`)
	b.WriteString(`"ping":{"status":"UP"},"redis":{"status":"UP","details":{"version":"7.2.4","cluster":false}},`)
	for i := 0; b.Len() < 1000; i++ {
		fmt.Fprintf(&b, `"queue%d":{"status":"UP","details":{"depth":%d,"consumers":%d}},`, i, i*7, i%4+1)
	}
	b.WriteString(`"livenessState":{"status":"UP"}},"groups":["liveness","readiness"]}`)
	return b.String()
}

// BenchmarkJSONConditions is the work the conditions add to a probe that
// already read the body: decoding 1 KB and checking three conditions.
func BenchmarkJSONConditions(b *testing.B) {
	body := []byte(jsonBenchBody())
	p := mustNew(b, Options{URL: "http://127.0.0.1:1/", JSON: jsonBenchConditions})
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if msg := p.checkJSON(body); msg != "" {
			b.Fatal(msg)
		}
	}
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
