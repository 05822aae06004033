// Package clustertest provides a fault-injecting memberlist transport for
// cluster tests and the fault lab: real UDP/TCP sockets on loopback, with
// links between regions that can be cut (both ways or one way) and nodes
// that can be frozen (silent without leaving), then healed.
package clustertest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Net is a set of transports whose links can fail.
type Net struct {
	mu       sync.Mutex
	regionOf map[string]string  // "ip:port" -> region
	nameOf   map[string]string  // "ip:port" -> node name
	cut      map[[2]string]bool // (from region, to region) -> dropped
	frozen   map[string]bool    // node name -> drops everything in and out
	dropped  int64
}

// NewNet returns a healthy network.
func NewNet() *Net {
	return &Net{regionOf: map[string]string{}, nameOf: map[string]string{}, cut: map[[2]string]bool{}, frozen: map[string]bool{}}
}

// Transport creates a real memberlist NetTransport on ip (port chosen by
// the kernel) for node in region, wrapped so the Net can fail its links.
func (n *Net) Transport(node, region, ip string) (*Transport, error) {
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{ip},
		BindPort:  0,
		Logger:    log.New(io.Discard, "", 0),
	})
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort(ip, fmt.Sprint(nt.GetAutoBindPort()))
	n.mu.Lock()
	n.regionOf[addr] = region
	n.nameOf[addr] = node
	n.mu.Unlock()
	t := &Transport{NetTransport: nt, net: n, node: node, region: region, Addr: addr,
		packets: make(chan *memberlist.Packet, 1024), streams: make(chan net.Conn, 64), done: make(chan struct{})}
	go t.filterPackets()
	go t.filterStreams()
	return t, nil
}

// Cut drops all traffic between regions a and b, both ways.
func (n *Net) Cut(a, b string) {
	n.mu.Lock()
	n.cut[[2]string{a, b}] = true
	n.cut[[2]string{b, a}] = true
	n.mu.Unlock()
}

// CutOneWay drops traffic from region from to region to only.
func (n *Net) CutOneWay(from, to string) {
	n.mu.Lock()
	n.cut[[2]string{from, to}] = true
	n.mu.Unlock()
}

// Isolate cuts region from every other region it has seen.
func (n *Net) Isolate(region string) {
	n.mu.Lock()
	seen := map[string]bool{}
	for _, r := range n.regionOf {
		seen[r] = true
	}
	for r := range seen {
		if r != region {
			n.cut[[2]string{region, r}] = true
			n.cut[[2]string{r, region}] = true
		}
	}
	n.mu.Unlock()
}

// Freeze makes node drop everything, as a hung process would: no Leave.
func (n *Net) Freeze(node string, frozen bool) {
	n.mu.Lock()
	n.frozen[node] = frozen
	n.mu.Unlock()
}

// Heal restores every link and unfreezes every node.
func (n *Net) Heal() {
	n.mu.Lock()
	n.cut = map[[2]string]bool{}
	n.frozen = map[string]bool{}
	n.mu.Unlock()
}

// Dropped counts messages and connections the faults dropped.
func (n *Net) Dropped() int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dropped
}

func (n *Net) blocked(fromRegion, fromNode, toAddr string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	toRegion, ok := n.regionOf[toAddr]
	bad := n.frozen[fromNode] || (ok && (n.cut[[2]string{fromRegion, toRegion}] || n.frozen[n.nameOf[toAddr]]))
	if bad {
		n.dropped++
	}
	return bad
}

// Transport is one node's faulty transport.
type Transport struct {
	*memberlist.NetTransport
	net          *Net
	node, region string
	Addr         string // ip:port it is bound to

	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
	once    sync.Once
}

var _ memberlist.NodeAwareTransport = (*Transport)(nil)

var errCut = errors.New("clustertest: link cut")

// WriteTo drops packets on cut links silently, as a network would.
func (t *Transport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.net.blocked(t.region, t.node, addr) {
		return time.Now(), nil
	}
	return t.NetTransport.WriteTo(b, addr)
}

// WriteToAddress is WriteTo for the node-aware interface.
func (t *Transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, a.Addr)
}

// DialTimeout fails on cut links after the timeout, like a black hole.
func (t *Transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if t.net.blocked(t.region, t.node, addr) {
		time.Sleep(min(timeout, 200*time.Millisecond))
		return nil, errCut
	}
	return t.NetTransport.DialTimeout(addr, timeout)
}

// DialAddressTimeout is DialTimeout for the node-aware interface.
func (t *Transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}

// PacketCh delivers packets whose sender's link to us is not cut.
func (t *Transport) PacketCh() <-chan *memberlist.Packet { return t.packets }

// StreamCh delivers streams whose sender's link to us is not cut.
func (t *Transport) StreamCh() <-chan net.Conn { return t.streams }

func (t *Transport) inboundBlocked(from net.Addr) bool {
	if from == nil {
		return false
	}
	t.net.mu.Lock()
	fromRegion, ok := t.net.regionOf[from.String()]
	fromNode := t.net.nameOf[from.String()]
	bad := t.net.frozen[t.node] || (ok && (t.net.cut[[2]string{fromRegion, t.region}] || t.net.frozen[fromNode]))
	if bad {
		t.net.dropped++
	}
	t.net.mu.Unlock()
	return bad
}

func (t *Transport) filterPackets() {
	in := t.NetTransport.PacketCh()
	for {
		select {
		case <-t.done:
			return
		case p, ok := <-in:
			if !ok {
				return
			}
			if t.inboundBlocked(p.From) {
				continue
			}
			// memberlist reads each datagram into a 64 KB buffer of its
			// own, which a real transport hands on at once; queued here
			// (up to 1024 a node) those buffers were 1.5 GB of a 100-agent
			// simulation's heap within a minute of its start.
			p.Buf = bytes.Clone(p.Buf)
			select {
			case t.packets <- p:
			case <-t.done:
				return
			}
		}
	}
}

// filterStreams passes inbound TCP streams; a stream's source port is
// ephemeral, so inbound filtering is by frozen state only (outbound dials
// on cut links already fail).
func (t *Transport) filterStreams() {
	in := t.NetTransport.StreamCh()
	for {
		select {
		case <-t.done:
			return
		case c, ok := <-in:
			if !ok {
				return
			}
			t.net.mu.Lock()
			frozen := t.net.frozen[t.node]
			t.net.mu.Unlock()
			if frozen {
				c.Close()
				continue
			}
			select {
			case t.streams <- c:
			case <-t.done:
				c.Close()
				return
			}
		}
	}
}

// Shutdown stops the filters and the real transport.
func (t *Transport) Shutdown() error {
	t.once.Do(func() { close(t.done) })
	// The real transport's listeners hand every packet and stream over on
	// unbuffered channels until they see their sockets closed, and its
	// Shutdown waits for them: with the filters gone, drain meanwhile, or a
	// packet arriving during shutdown blocks its listener and Shutdown forever.
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-t.NetTransport.PacketCh():
			case c := <-t.NetTransport.StreamCh():
				c.Close()
			case <-stop:
				return
			}
		}
	}()
	err := t.NetTransport.Shutdown()
	close(stop)
	return err
}
