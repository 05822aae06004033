package scale

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Traffic is what one agent put on the wire, counted at the memberlist
// transport: after memberlist's compression, CRC, label and encryption, so
// it is what a network would carry minus IP/UDP/TCP headers (add ~28 bytes
// per packet for IPv4 UDP to estimate those).
type Traffic struct {
	Packets     int64 // UDP datagrams sent: probes, acks, gossip, user messages
	PacketBytes int64
	Streams     int64 // TCP connections dialled or accepted: push/pull, TCP pings, reliable sends
	StreamBytes int64 // bytes this agent wrote on them, whichever side dialled
}

// Bytes is every byte sent, packets and streams.
func (t Traffic) Bytes() int64 { return t.PacketBytes + t.StreamBytes }

// Sub returns t - o, for a window between two readings.
func (t Traffic) Sub(o Traffic) Traffic {
	return Traffic{Packets: t.Packets - o.Packets, PacketBytes: t.PacketBytes - o.PacketBytes,
		Streams: t.Streams - o.Streams, StreamBytes: t.StreamBytes - o.StreamBytes}
}

// Add returns t + o.
func (t Traffic) Add(o Traffic) Traffic {
	return Traffic{Packets: t.Packets + o.Packets, PacketBytes: t.PacketBytes + o.PacketBytes,
		Streams: t.Streams + o.Streams, StreamBytes: t.StreamBytes + o.StreamBytes}
}

// countingTransport wraps a memberlist transport and counts what it sends.
// Counting at the transport, rather than with a hook in the cluster
// package, sees everything memberlist sends on the cluster's behalf
// (probes, membership gossip, push/pull) and not only the cluster's own
// messages.
type countingTransport struct {
	memberlist.NodeAwareTransport

	packets, packetBytes, streams, streamBytes atomic.Int64

	in   chan net.Conn
	done chan struct{}
	once sync.Once
}

var _ memberlist.NodeAwareTransport = (*countingTransport)(nil)

func newCountingTransport(inner memberlist.NodeAwareTransport) *countingTransport {
	t := &countingTransport{NodeAwareTransport: inner, in: make(chan net.Conn, 64), done: make(chan struct{})}
	go t.wrapStreams()
	return t
}

func (t *countingTransport) traffic() Traffic {
	return Traffic{Packets: t.packets.Load(), PacketBytes: t.packetBytes.Load(),
		Streams: t.streams.Load(), StreamBytes: t.streamBytes.Load()}
}

func (t *countingTransport) countPacket(n int) {
	t.packets.Add(1)
	t.packetBytes.Add(int64(n))
}

func (t *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	t.countPacket(len(b))
	return t.NodeAwareTransport.WriteTo(b, addr)
}

func (t *countingTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	t.countPacket(len(b))
	return t.NodeAwareTransport.WriteToAddress(b, a)
}

func (t *countingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := t.NodeAwareTransport.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return t.wrap(c), nil
}

func (t *countingTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	c, err := t.NodeAwareTransport.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	return t.wrap(c), nil
}

func (t *countingTransport) StreamCh() <-chan net.Conn { return t.in }

// wrapStreams counts the replies this agent writes on streams others open.
func (t *countingTransport) wrapStreams() {
	src := t.NodeAwareTransport.StreamCh()
	for {
		select {
		case <-t.done:
			return
		case c, ok := <-src:
			if !ok {
				return
			}
			select {
			case t.in <- t.wrap(c):
			case <-t.done:
				c.Close()
				return
			}
		}
	}
}

func (t *countingTransport) wrap(c net.Conn) net.Conn {
	t.streams.Add(1)
	return &countingConn{Conn: c, n: &t.streamBytes}
}

func (t *countingTransport) Shutdown() error {
	t.once.Do(func() { close(t.done) })
	return t.NodeAwareTransport.Shutdown()
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.n.Add(int64(n))
	return n, err
}
