// Package transport is the agents' gossip transport for memberlist: UDP for
// packets, a TCP connection per stream, as memberlist's own NetTransport,
// but with a receive path that does not allocate 64 KB per datagram.
//
// memberlist's NetTransport reads every datagram into a fresh 64 KB buffer
// and hands that buffer on, so each gossip packet of about 1.4 KB costs
// 64 KB of garbage. One agent in production receives a few hundred packets
// a second (about 3 MB/s of garbage, for nothing); a 100-agent simulation in
// one process receives tens of thousands, and the collector it fed was what
// kept 100 agents x 20,000 targets from settling on two cores (issue 17).
// Here each listener reads into one buffer of its own and copies the
// datagram out at its size. The copy is needed: memberlist keeps a packet's
// bytes after it returns (queued alive, suspect and dead messages, and our
// delegate's own messages), so the buffer cannot be lent.
//
// Sends resolve literal addresses without allocating, which is every
// address memberlist gives (it advertises IPs), and fall back to the
// resolver for names.
package transport

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	sockaddr "github.com/hashicorp/go-sockaddr"
	"github.com/hashicorp/memberlist"
)

const (
	// maxDatagram is the largest UDP payload; a read into a smaller buffer
	// would truncate a packet silently.
	maxDatagram = 65536
	// recvBufSize is the socket receive buffer asked for (halved until the
	// kernel accepts it), as memberlist's transport does: a burst of gossip
	// from many peers is queued by the kernel, not dropped.
	recvBufSize = 2 << 20
	// bindAttempts is how often a port the kernel chose is tried for both
	// TCP and UDP: the UDP port may be taken between the two binds.
	bindAttempts = 10
)

// Config says where the transport listens.
type Config struct {
	// BindAddr is the IP to listen on ("0.0.0.0" for every interface).
	BindAddr string
	// BindPort is the TCP and UDP port; 0 lets the kernel choose one.
	BindPort int
	// Log receives accept and read errors; nil discards them.
	Log *slog.Logger
}

// Net is a memberlist transport over one UDP socket and one TCP listener
// sharing a port.
type Net struct {
	cfg    Config
	log    *slog.Logger
	tcp    *net.TCPListener
	udp    *net.UDPConn
	packet chan *memberlist.Packet
	stream chan net.Conn
	done   chan struct{}
	closed atomic.Bool
	once   sync.Once
	wg     sync.WaitGroup
}

var _ memberlist.NodeAwareTransport = (*Net)(nil)

// Listen binds the TCP and UDP sockets and starts reading them.
func Listen(cfg Config) (*Net, error) {
	ip := net.ParseIP(cfg.BindAddr)
	if ip == nil {
		return nil, fmt.Errorf("bind address %q is not an IP", cfg.BindAddr)
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Net{cfg: cfg, log: log,
		packet: make(chan *memberlist.Packet),
		stream: make(chan net.Conn),
		done:   make(chan struct{}),
	}
	attempts := 1
	if cfg.BindPort == 0 {
		attempts = bindAttempts
	}
	var err error
	for range attempts {
		// A port the kernel chose for TCP may be taken for UDP: try another.
		if t.tcp, t.udp, err = bind(ip, cfg.BindPort); err == nil || !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	t.wg.Add(2)
	go t.acceptStreams()
	go t.readPackets()
	return t, nil
}

// bind opens the TCP listener first (the kernel picks the port when port is
// 0) and a UDP socket on the same port.
func bind(ip net.IP, port int) (*net.TCPListener, *net.UDPConn, error) {
	tcp, err := net.ListenTCP("tcp", &net.TCPAddr{IP: ip, Port: port})
	if err != nil {
		return nil, nil, fmt.Errorf("gossip transport: %w", err)
	}
	port = tcp.Addr().(*net.TCPAddr).Port
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port})
	if err != nil {
		tcp.Close()
		return nil, nil, fmt.Errorf("gossip transport: %w", err)
	}
	for size := recvBufSize; size > 0; size /= 2 {
		if err = udp.SetReadBuffer(size); err == nil {
			break
		}
	}
	if err != nil {
		tcp.Close()
		udp.Close()
		return nil, nil, fmt.Errorf("size the UDP receive buffer: %w", err)
	}
	return tcp, udp, nil
}

// Port is the port both sockets are bound to (the kernel's choice when the
// configured port was 0).
func (t *Net) Port() int { return t.tcp.Addr().(*net.TCPAddr).Port }

// FinalAdvertiseAddr is the address peers are told to reach this node at:
// the given one, else the bound IP, else (bound to every interface) the
// host's private IP, as memberlist's own transport chooses it.
func (t *Net) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	if ip != "" {
		addr := net.ParseIP(ip)
		if addr == nil {
			return nil, 0, fmt.Errorf("advertise address %q is not an IP", ip)
		}
		if v4 := addr.To4(); v4 != nil {
			addr = v4
		}
		return addr, port, nil
	}
	bound := t.tcp.Addr().(*net.TCPAddr).IP
	if !bound.IsUnspecified() {
		return bound, t.Port(), nil
	}
	private, err := sockaddr.GetPrivateIP()
	if err != nil {
		return nil, 0, fmt.Errorf("find a private IP to advertise: %w", err)
	}
	addr := net.ParseIP(private)
	if addr == nil {
		return nil, 0, errors.New("no private IP address found to advertise: set the advertise address")
	}
	return addr, t.Port(), nil
}

// WriteTo sends one packet to addr ("ip:port" or "host:port"). The time is
// taken after the write returns: it underestimates the send time a little,
// as memberlist's own transport does.
func (t *Net) WriteTo(b []byte, addr string) (time.Time, error) {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		_, err = t.udp.WriteToUDPAddrPort(b, ap)
		return time.Now(), err
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return time.Time{}, err
	}
	_, err = t.udp.WriteTo(b, ua)
	return time.Now(), err
}

// WriteToAddress is WriteTo for memberlist's node-aware interface.
func (t *Net) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, a.Addr)
}

// PacketCh delivers the datagrams received, each in a buffer of its own.
func (t *Net) PacketCh() <-chan *memberlist.Packet { return t.packet }

// DialTimeout opens a stream to addr.
func (t *Net) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	return d.Dial("tcp", addr)
}

// DialAddressTimeout is DialTimeout for memberlist's node-aware interface.
func (t *Net) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}

// StreamCh delivers the TCP connections accepted.
func (t *Net) StreamCh() <-chan net.Conn { return t.stream }

// Shutdown closes both sockets and waits for their readers. A packet or
// stream no one takes any more is dropped, so Shutdown cannot block on a
// reader that memberlist stopped draining.
func (t *Net) Shutdown() error {
	t.once.Do(func() {
		t.closed.Store(true)
		close(t.done)
		t.tcp.Close()
		t.udp.Close()
	})
	t.wg.Wait()
	return nil
}

func (t *Net) readPackets() {
	defer t.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := t.udp.ReadFromUDPAddrPort(buf)
		at := time.Now() // as close to the read as possible: it times acks
		if err != nil {
			if t.closed.Load() {
				return
			}
			t.log.Warn("gossip: read UDP packet", "err", err)
			continue
		}
		if n < 1 {
			t.log.Warn("gossip: empty UDP packet", "from", from.String())
			continue
		}
		p := &memberlist.Packet{
			Buf: append([]byte(nil), buf[:n]...),
			// Unmapped so a dual-stack socket names an IPv4 peer as
			// memberlist knows it, "1.2.3.4:port".
			From:      net.UDPAddrFromAddrPort(netip.AddrPortFrom(from.Addr().Unmap(), from.Port())),
			Timestamp: at,
		}
		select {
		case t.packet <- p:
		case <-t.done:
			return
		}
	}
}

func (t *Net) acceptStreams() {
	defer t.wg.Done()
	// Back off on repeated accept errors (out of file descriptors, say)
	// instead of spinning; reset on the first success.
	const first, most = 5 * time.Millisecond, time.Second
	var delay time.Duration
	for {
		conn, err := t.tcp.AcceptTCP()
		if err != nil {
			if t.closed.Load() {
				return
			}
			delay = min(max(2*delay, first), most)
			t.log.Warn("gossip: accept TCP connection", "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-t.done:
				return
			}
			continue
		}
		delay = 0
		select {
		case t.stream <- conn:
		case <-t.done:
			conn.Close()
			return
		}
	}
}
