package scale

import (
	"fmt"
	"io"
	"log"
	"testing"

	"github.com/hashicorp/memberlist"

	"github.com/vantage-probe/vantage/cluster/shard"
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

// BenchmarkRecompute is the work cluster.reassign does on every membership
// change, through shard's public API, at 10k targets and 50 agents (5
// regions x 10): targets in map order (as the cluster builds them),
// Assign, the make-before-break scan of the old owners, and OwnedBy. It
// mirrors reassign rather than calling it (unexported) so the figure can
// be compared with the pure Assign below it.
func BenchmarkRecompute(b *testing.B) {
	const nTargets, nRegions, perRegion = 10000, 5, 10
	targets := map[string]bool{}
	for i := 0; i < nTargets; i++ {
		targets[fmt.Sprintf("t%05d", i)] = true
	}
	var members []shard.Member
	for r := 0; r < nRegions; r++ {
		for i := 0; i < perRegion; i++ {
			members = append(members, shard.Member{ID: fmt.Sprintf("r%d-%d", r, i), Region: fmt.Sprintf("r%d", r)})
		}
	}
	build := func() []shard.Target {
		ts := make([]shard.Target, 0, len(targets))
		for name := range targets {
			ts = append(ts, shard.Target{Name: name})
		}
		return ts
	}
	old := shard.Assign(build(), members[1:], 1) // before the last member joined
	b.Run("reassign", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ts := build()
			next := shard.Assign(ts, members, 1)
			moved := 0
			for _, t := range ts {
				for _, owners := range old.Owners(t.Name) {
					for _, id := range owners {
						if !next.IsOwner(t.Name, id) {
							moved++
						}
					}
				}
			}
			_ = next.OwnedBy(members[0].ID)
		}
	})
	b.Run("assign-only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			next := shard.Assign(build(), members, 1)
			_ = next.OwnedBy(members[0].ID)
		}
	})
}
