// Package clustertest provides a fault-injecting memberlist transport for
// cluster tests and the fault lab: real UDP/TCP sockets on loopback, with
// links between regions that can be cut (both ways or one way) and nodes
// that can be frozen (silent without leaving), then healed.
package clustertest

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/vantage-probe/vantage/cluster/transport"
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

// Transport creates the agents' real transport (cluster/transport) on ip
// (port chosen by the kernel) for node in region, wrapped so the Net can
// fail its links.
func (n *Net) Transport(node, region, ip string) (*Transport, error) {
	nt, err := transport.Listen(transport.Config{BindAddr: ip})
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort(ip, fmt.Sprint(nt.Port()))
	n.mu.Lock()
	n.regionOf[addr] = region
	n.nameOf[addr] = node
	n.mu.Unlock()
	t := &Transport{Net: nt, net: n, node: node, region: region, Addr: addr,
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
	*transport.Net
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
	return t.Net.WriteTo(b, addr)
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
	return t.Net.DialTimeout(addr, timeout)
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
	in := t.Net.PacketCh()
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
	in := t.Net.StreamCh()
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

// Shutdown stops the filters and the real transport, which drops what it
// still holds instead of waiting for a reader.
func (t *Transport) Shutdown() error {
	t.once.Do(func() { close(t.done) })
	return t.Net.Shutdown()
}
