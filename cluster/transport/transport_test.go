package transport

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func listen(t testing.TB) *Net {
	t.Helper()
	n, err := Listen(Config{BindAddr: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown() })
	return n
}

func addr(n *Net) string { return fmt.Sprintf("127.0.0.1:%d", n.Port()) }

func TestPacketsArriveInBuffersOfTheirOwnSize(t *testing.T) {
	a, b := listen(t), listen(t)
	if _, err := a.WriteTo([]byte("first packet"), addr(b)); err != nil {
		t.Fatal(err)
	}
	first := <-b.PacketCh()
	if _, err := a.WriteToAddress([]byte("2nd"), memberlist.Address{Addr: addr(b), Name: "a"}); err != nil {
		t.Fatal(err)
	}
	second := <-b.PacketCh()

	// memberlist keeps packets' bytes after it returns: a lent read
	// buffer would show the second packet through the first.
	if string(first.Buf) != "first packet" || string(second.Buf) != "2nd" {
		t.Fatalf("packets %q, %q", first.Buf, second.Buf)
	}
	if cap(first.Buf) > 64 || cap(second.Buf) > 64 {
		t.Errorf("buffers of cap %d and %d for 12 and 3 bytes: the read buffer leaked out", cap(first.Buf), cap(second.Buf))
	}
	if got := first.From.String(); got != addr(a) {
		t.Errorf("from %s, want %s", got, addr(a))
	}
	if first.Timestamp.IsZero() {
		t.Error("no receive time")
	}
}

func TestWriteToResolvesNames(t *testing.T) {
	a, b := listen(t), listen(t)
	if _, err := a.WriteTo([]byte("x"), fmt.Sprintf("localhost:%d", b.Port())); err != nil {
		t.Fatal(err)
	}
	if p := <-b.PacketCh(); string(p.Buf) != "x" {
		t.Fatalf("got %q", p.Buf)
	}
	if _, err := a.WriteTo([]byte("x"), "no-such-host.invalid:1"); err == nil {
		t.Error("a name that does not resolve was sent to")
	}
}

func TestStreamsAreAccepted(t *testing.T) {
	a, b := listen(t), listen(t)
	conn, err := a.DialAddressTimeout(memberlist.Address{Addr: addr(b)}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("push/pull")); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	in := <-b.StreamCh()
	defer in.Close()
	got, err := io.ReadAll(in)
	if err != nil || string(got) != "push/pull" {
		t.Fatalf("read %q, %v", got, err)
	}
}

func TestFinalAdvertiseAddr(t *testing.T) {
	n := listen(t)
	ip, port, err := n.FinalAdvertiseAddr("", 7946)
	if err != nil || ip.String() != "127.0.0.1" || port != n.Port() {
		t.Errorf("no advertise address: %s:%d, %v; want the bound 127.0.0.1:%d", ip, port, err, n.Port())
	}
	ip, port, err = n.FinalAdvertiseAddr("10.1.2.3", 9000)
	if err != nil || ip.String() != "10.1.2.3" || len(ip) != net.IPv4len || port != 9000 {
		t.Errorf("advertise 10.1.2.3:9000: %s:%d (%d bytes), %v", ip, port, len(ip), err)
	}
	if _, _, err := n.FinalAdvertiseAddr("eu-west", 9000); err == nil {
		t.Error("a name was accepted as the advertise address")
	}
}

func TestListenRefusesATakenPort(t *testing.T) {
	n := listen(t)
	_, err := Listen(Config{BindAddr: "127.0.0.1", BindPort: n.Port()})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprint(n.Port())) || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("listen on a taken port: %v", err)
	}
	if _, err := Listen(Config{BindAddr: "eu-west-1"}); err == nil {
		t.Fatal("a name was accepted as the bind address")
	}
}

// TestShutdownDropsWhatNoOneReads: memberlist stops reading before it shuts
// its transport down; a packet and a stream arriving then must not block
// Shutdown (the test's own timeout is what catches it).
func TestShutdownDropsWhatNoOneReads(t *testing.T) {
	a := listen(t)
	b, err := Listen(Config{BindAddr: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	a.WriteTo([]byte("unread"), addr(b))
	conn, err := a.DialTimeout(addr(b), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	b.Shutdown()
	b.Shutdown() // twice is harmless: memberlist and its owner may both call it
	if _, err := a.WriteTo([]byte("late"), addr(b)); err != nil {
		t.Logf("write after shutdown: %v", err) // UDP may or may not say so
	}
}

// TestMemberlistRunsOnIt: two memberlists over this transport, with a label
// (memberlist wraps the transport for it) and encryption, find each other
// and exchange state by push/pull (streams) and probes (packets).
func TestMemberlistRunsOnIt(t *testing.T) {
	start := func(name string) *memberlist.Memberlist {
		n := listen(t)
		c := memberlist.DefaultLocalConfig()
		c.Name = name
		c.BindAddr, c.BindPort = "127.0.0.1", n.Port()
		c.Transport = n
		c.Label = "vantage-test"
		c.SecretKey = bytes.Repeat([]byte{7}, 32)
		c.Logger = log.New(io.Discard, "", 0)
		c.ProbeInterval = 50 * time.Millisecond
		ml, err := memberlist.Create(c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ml.Shutdown() })
		return ml
	}
	a, b := start("a"), start("b")
	if _, err := b.Join([]string{a.LocalNode().Address()}); err != nil {
		t.Fatal(err)
	}
	// b has merged a's state when Join returns; a merges b's as it
	// finishes serving the push/pull.
	for deadline := time.Now().Add(30 * time.Second); a.NumMembers() != 2 || b.NumMembers() != 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("members %d and %d after the join", a.NumMembers(), b.NumMembers())
		}
	}
	// A probe round trip: a UDP ping and its ack.
	node := a.LocalNode()
	if _, err := b.Ping("a", &net.UDPAddr{IP: node.Addr, Port: int(node.Port)}); err != nil {
		t.Fatalf("ping over the transport: %v", err)
	}
}

// BenchmarkReceive is the receive path's garbage per datagram against
// memberlist's own transport (1,400 bytes: memberlist's packet size).
func BenchmarkReceive(b *testing.B) {
	payload := bytes.Repeat([]byte{1}, 1400)
	run := func(b *testing.B, rx memberlist.Transport, to string) {
		tx := listen(b)
		b.ReportAllocs()
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			if _, err := tx.WriteTo(payload, to); err != nil {
				b.Fatal(err)
			}
			<-rx.PacketCh()
		}
	}
	b.Run("vantage", func(b *testing.B) {
		rx := listen(b)
		run(b, rx, addr(rx))
	})
	b.Run("memberlist", func(b *testing.B) {
		rx, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{"127.0.0.1"}, Logger: log.New(io.Discard, "", 0)})
		if err != nil {
			b.Fatal(err)
		}
		defer rx.Shutdown()
		run(b, rx, fmt.Sprintf("127.0.0.1:%d", rx.GetAutoBindPort()))
	})
}
