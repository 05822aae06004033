package probe_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/vantage-probe/vantage/probe"
)

func TestResolveIP(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		host  string
		proto probe.IPProtocol
		want  string
		err   string
	}{
		{host: "127.0.0.1", want: "127.0.0.1"},
		{host: "::1", proto: probe.IPv6, want: "::1"},
		{host: "fe80::1%lo", want: "fe80::1%lo"},
		{host: "localhost", proto: probe.IPv4, want: "127.0.0.1"},
		{host: "127.0.0.1", proto: probe.IPv6, err: "address 127.0.0.1 is not ip6"},
		{host: "::ffff:127.0.0.1", proto: probe.IPv6, err: "is not ip6"},
		{host: "no-such-host.invalid", err: "no-such-host.invalid"},
	} {
		ip, took, err := probe.Net{IPProtocol: tt.proto}.ResolveIP(ctx, tt.host)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ResolveIP(%q, %q) = %v, %v; want an error with %q", tt.host, tt.proto, ip, err, tt.err)
			}
			continue
		}
		if err != nil || ip != netip.MustParseAddr(tt.want) {
			t.Errorf("ResolveIP(%q, %q) = %v, %v; want %s", tt.host, tt.proto, ip, err, tt.want)
		}
		if _, literal := netip.ParseAddr(tt.host); (literal == nil) != (took == 0) {
			t.Errorf("ResolveIP(%q) took %v: literals take no lookup, names one", tt.host, took)
		}
	}
	// Resolve keeps a literal's host:port as written.
	if got, _, err := (probe.Net{}).Resolve(ctx, "[::ffff:127.0.0.1]:80"); err != nil || got != "[::ffff:127.0.0.1]:80" {
		t.Errorf("Resolve of a literal: %q, %v", got, err)
	}
	if got, _, err := (probe.Net{IPProtocol: probe.IPv4}).Resolve(ctx, "localhost:80"); err != nil || got != "127.0.0.1:80" {
		t.Errorf("Resolve(localhost:80): %q, %v", got, err)
	}
}
