package scale

import (
	"fmt"
	"io"
	"log"
	"testing"

	"github.com/hashicorp/memberlist"
)

type nopDelegate struct{}

func (nopDelegate) NodeMeta(int) []byte             { return nil }
func (nopDelegate) NotifyMsg([]byte)                {}
func (nopDelegate) GetBroadcasts(int, int) [][]byte { return nil }
func (nopDelegate) LocalState(bool) []byte          { return nil }
func (nopDelegate) MergeRemoteState([]byte, bool)   {}

// BenchmarkSendToAddress is the cost of one user message memberlist sends
// (what the cluster's fan-out pays per member per state change): a
// ~60-byte result, as the cluster configures memberlist (compression on,
// its default) and with compression off.
func BenchmarkSendToAddress(b *testing.B) {
	for _, compress := range []bool{true, false} {
		b.Run(fmt.Sprintf("compression=%v", compress), func(b *testing.B) {
			mk := func(name string) *memberlist.Memberlist {
				c := memberlist.DefaultLANConfig()
				c.Name, c.BindAddr, c.BindPort, c.AdvertisePort = name, "127.0.0.1", 0, 0
				c.EnableCompression = compress
				c.Delegate = nopDelegate{}
				c.Logger = log.New(io.Discard, "", 0)
				ml, err := memberlist.Create(c)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = ml.Shutdown() })
				return ml
			}
			src, dst := mk("src"), mk("dst")
			to := memberlist.Address{Addr: dst.LocalNode().Address(), Name: "dst"}
			msg := make([]byte, 60)
			for i := range msg {
				msg[i] = byte(i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := src.SendToAddress(to, msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
