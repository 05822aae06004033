// Package demo runs Vantage's main job on its embedded default: a target
// farm on loopback, a three-region fleet of agents in one process, and a
// fault script that shows what the fleet concludes and how fast.
package demo

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/vantage-probe/vantage/probe/probetest"
	"github.com/vantage-probe/vantage/probe/probetest/healthsrv"
)

// Farm is the demo's set of targets, each switchable between healthy and
// failing, and able to fail only for one region's source addresses.
type Farm struct {
	API, Web, Shop *probetest.HTTPServer
	Cert           *probetest.TLSServer
	DB             *probetest.TCPServer
	DNS            *probetest.DNSServer
	// Orders is a gRPC server whose health service reports OrdersService.
	Orders     *healthsrv.Server
	dnsSwitch  *probetest.Switch
	zone       dns.Handler
	CAFile     string
	CertExpiry time.Time

	apiDown atomic.Bool
	apiSlow atomic.Bool // the api's health document reports a slow database
	webDown atomic.Bool
	mu      sync.Mutex
	blocked map[string]string // target -> source IP prefix that gets errors
	dir     string
}

// StartFarm starts every target server on 127.0.0.1.
func StartFarm() (_ *Farm, err error) {
	f := &Farm{blocked: map[string]string{}}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	f.dir, err = os.MkdirTemp("", "vantage-demo-")
	if err != nil {
		return nil, err
	}
	ca, err := probetest.NewCA("Vantage demo CA")
	if err != nil {
		return nil, err
	}
	if f.CAFile, err = ca.WriteCAFile(f.dir); err != nil {
		return nil, err
	}
	// A certificate that expires soon: the status page shows its days left.
	f.CertExpiry = probetest.Days(10)
	soon, err := ca.Leaf(f.CertExpiry, "127.0.0.1", "localhost")
	if err != nil {
		return nil, err
	}
	if f.API, err = probetest.StartHTTP(f.apiHandler()); err != nil {
		return nil, err
	}
	if f.Web, err = probetest.StartHTTP(f.handler("web", &f.webDown)); err != nil {
		return nil, err
	}
	var never atomic.Bool
	if f.Shop, err = probetest.StartHTTPS(f.handler("shop", &never), soon); err != nil {
		return nil, err
	}
	if f.Cert, err = probetest.StartTLS(soon); err != nil {
		return nil, err
	}
	if f.DB, err = probetest.StartTCP(probetest.TCPEcho, "220 demo-db ready\r\n"); err != nil {
		return nil, err
	}
	zone, err := probetest.NewZone("shop.demo. 60 IN A 127.0.0.10", "api.demo. 60 IN A 127.0.0.11")
	if err != nil {
		return nil, err
	}
	f.zone = zone
	f.dnsSwitch = probetest.NewSwitch(zone)
	if f.DNS, err = probetest.StartDNS(f.dnsSwitch); err != nil {
		return nil, err
	}
	if f.Orders, err = healthsrv.Start(nil); err != nil {
		return nil, err
	}
	f.Orders.SetServingStatus(OrdersService, healthsrv.Serving)
	return f, nil
}

// OrdersService is the service the demo's gRPC target asks about.
const OrdersService = "demo.orders.v1.Orders"

// apiHandler serves the api's health document, a JSON body that the demo
// config checks with JSON conditions: 503 while down, a slow database
// check while slow.
func (f *Farm) apiHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.apiDown.Load() {
			http.Error(w, "outage", http.StatusServiceUnavailable)
			return
		}
		if f.blockedFrom("api", r) {
			http.Error(w, "bad route from your region", http.StatusBadGateway)
			return
		}
		latency := 12
		if f.apiSlow.Load() {
			latency = 870
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status": "UP", "checks": {"db": {"status": "UP", "latency_ms": %d}, "cache": {"status": "UP"}}}`+"\n", latency)
	})
}

// handler answers 200 "ok", or 503 while down, or 503 to a blocked region.
func (f *Farm) handler(name string, down *atomic.Bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "outage", http.StatusServiceUnavailable)
			return
		}
		if f.blockedFrom(name, r) {
			http.Error(w, "bad route from your region", http.StatusBadGateway)
			return
		}
		fmt.Fprintln(w, "ok")
	})
}

// blockedFrom reports whether target fails for r's client (BlockFrom).
func (f *Farm) blockedFrom(target string, r *http.Request) bool {
	f.mu.Lock()
	prefix := f.blocked[target]
	f.mu.Unlock()
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	return prefix != "" && strings.HasPrefix(host, prefix)
}

// SetAPIDown makes the api fail for everyone.
func (f *Farm) SetAPIDown(down bool) { f.apiDown.Store(down) }

// SetAPISlow makes the api's health document report a database check of
// 870 ms, over the 300 ms its JSON condition allows, still with 200 OK.
func (f *Farm) SetAPISlow(slow bool) { f.apiSlow.Store(slow) }

// SetOrdersServing flips the gRPC health status of OrdersService between
// SERVING and NOT_SERVING.
func (f *Farm) SetOrdersServing(serving bool) {
	st := healthsrv.NotServing
	if serving {
		st = healthsrv.Serving
	}
	f.Orders.SetServingStatus(OrdersService, st)
}

// BlockFrom makes target fail only for clients whose address starts with prefix ("" unblocks).
func (f *Farm) BlockFrom(target, prefix string) {
	f.mu.Lock()
	f.blocked[target] = prefix
	f.mu.Unlock()
}

// SetDBUp flips the TCP target between answering with its banner and
// closing connections at once.
func (f *Farm) SetDBUp(up bool) {
	if up {
		f.DB.SetMode(probetest.TCPEcho)
	} else {
		f.DB.SetMode(probetest.TCPClose)
	}
}

// SetDNSUp flips the DNS target between answering and SERVFAIL.
func (f *Farm) SetDNSUp(up bool) {
	if up {
		f.dnsSwitch.Set(f.zone)
	} else {
		f.dnsSwitch.Set(probetest.ServFail())
	}
}

// Close stops every server.
func (f *Farm) Close() {
	for _, c := range []interface{ Close() error }{f.API, f.Web, f.Shop, f.Cert, f.DB, f.DNS} {
		if c != nil && !isNil(c) {
			_ = c.Close()
		}
	}
	if f.Orders != nil {
		f.Orders.Close()
	}
	if f.dir != "" {
		_ = os.RemoveAll(f.dir)
	}
}

func isNil(c any) bool {
	switch v := c.(type) {
	case *probetest.HTTPServer:
		return v == nil
	case *probetest.TLSServer:
		return v == nil
	case *probetest.TCPServer:
		return v == nil
	case *probetest.DNSServer:
		return v == nil
	}
	return false
}

// Replacements maps the placeholders of configs/demo.toml to the farm's
// real addresses.
func (f *Farm) Replacements() []string {
	return []string{
		"api.farm.invalid:1", f.API.Addr,
		"web.farm.invalid:1", f.Web.Addr,
		"shop.farm.invalid:1", f.Shop.Addr,
		"cert.farm.invalid:1", f.Cert.Addr,
		"db.farm.invalid:1", f.DB.Addr,
		"dns.farm.invalid:1", f.DNS.Addr(),
		"orders.farm.invalid:1", f.Orders.Addr,
		"/farm/ca.pem", filepath.ToSlash(f.CAFile),
	}
}
