// Package icmpprobe sends ICMP echo requests (ping) over IPv4 or IPv6 and
// waits for the replies.
//
// What a probe does, where a user could wonder:
//
//   - Sockets: an unprivileged datagram ICMP socket where the kernel allows
//     the process's group (Linux: sysctl net.ipv4.ping_group_range, which
//     covers IPv6 too), else a raw socket, which needs CAP_NET_RAW. The
//     choice is made on the first probe of each family and kept (in the
//     probe.Shared of the configuration, so a reload decides again); when
//     neither works the probe fails with config_error and a message naming
//     both fixes. Every probe opens a socket of its own and closes it.
//   - Packets: Packets echo requests, PacketInterval apart, each with the
//     same PayloadSize bytes of data (a per-probe random nonce first). The
//     probe succeeds when at least MinReplies of them are answered (default
//     1: a host that answers is up; loss is reported in Result.ICMP for an
//     alert of its own), and waits for the rest until every request is
//     answered or refused or the deadline passes, so that the loss it
//     reports is real. No reply at all is a timeout, some but too few is
//     packet_loss, and an ICMP error (destination unreachable, time
//     exceeded, packet too big) for a request that got no reply makes the
//     probe fail with icmp_unreachable when the replies fall short.
//   - Matching: a reply counts when it comes from the target and carries a
//     sequence number this probe sent and its exact data; on raw sockets
//     its identifier too (the probe picks it at random), while datagram
//     sockets get their identifier from the kernel, which also hands each
//     socket only its own replies. Duplicates count once.
//   - Phases follow blackbox_exporter's probe_icmp_duration_seconds:
//     resolve, setup (socket and request), rtt (the mean round trip of the
//     replies; without a reply, the time waited from the first request).
//   - DontFragment sets the IPv4 DF bit (IP_PMTUDISC_DO; IPv6 packets are
//     not fragmented on the way anyway, and the socket is kept from
//     fragmenting them locally): a payload above the path MTU fails, with
//     connect_error when the local route's MTU is smaller, with
//     icmp_unreachable when a router says so. Linux only.
//   - With a source_ip and no ip_protocol, the target is resolved in the
//     source address's family.
package icmpprobe

import (
	"time"

	"github.com/vantage-probe/vantage/probe"
)

// Options describe one ICMP target. Zero values take the documented defaults.
type Options struct {
	// Address is the target: a host name or an IP literal, without a port.
	Address string
	// Packets is the number of echo requests per probe: default 1, at
	// most MaxPackets.
	Packets int
	// MinReplies is the number of replies a probe needs to succeed:
	// default 1, at most Packets.
	MinReplies int
	// PacketInterval separates the requests of one probe: default
	// DefaultPacketInterval.
	PacketInterval time.Duration
	// PayloadSize is the bytes of data after the 8-byte ICMP header:
	// default DefaultPayloadSize, at most MaxPayloadSize.
	PayloadSize int
	// DontFragment forbids fragmentation (Linux only).
	DontFragment bool
	// Net holds source_ip and ip_protocol.
	Net probe.Net
}
