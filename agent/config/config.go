package config

import (
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/fnv"
	"maps"
	"math"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/vantage-probe/vantage/probe"
	"github.com/vantage-probe/vantage/probe/dnsprobe"
	"github.com/vantage-probe/vantage/probe/grpcprobe"
	"github.com/vantage-probe/vantage/probe/httpprobe"
	"github.com/vantage-probe/vantage/probe/icmpprobe"
	"github.com/vantage-probe/vantage/probe/tcpprobe"
	"github.com/vantage-probe/vantage/probe/tlsprobe"
)

// index builds the name lookup; called once the targets are final.
func (c *Config) index() {
	c.byName, c.nTargets = make([]int32, len(c.Targets)), len(c.Targets)
	for i := range c.byName {
		c.byName[i] = int32(i)
	}
	// Stable, so that a name given twice (only in a config that failed
	// validation) finds the later target, as a map would.
	slices.SortStableFunc(c.byName, func(a, b int32) int { return strings.Compare(c.Targets[a].Name, c.Targets[b].Name) })
}

// Target returns the target called name, or nil.
func (c *Config) Target(name string) *Target {
	if c.byName != nil && c.nTargets == len(c.Targets) {
		// The last of equal names: the index is sorted stably.
		i, _ := slices.BinarySearchFunc(c.byName, name, func(j int32, name string) int {
			if c.Targets[j].Name <= name {
				return -1
			}
			return 1
		})
		if i > 0 && c.Targets[c.byName[i-1]].Name == name {
			return c.Targets[c.byName[i-1]]
		}
		return nil
	}
	// A Config built or edited by hand (tests elsewhere) has no index.
	for _, t := range c.Targets {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// RemoveTarget drops the target called name from a config that no agent
// runs yet, and reports whether there was one. Programs that build their
// config from a template use it (the demo leaves out its ICMP target where
// the host allows no ICMP socket); maintenance windows are left as they
// are, so a glob that named only this target then matches nothing.
func (c *Config) RemoveTarget(name string) bool {
	i := slices.IndexFunc(c.Targets, func(t *Target) bool { return t.Name == name })
	if i < 0 {
		return false
	}
	c.Targets = slices.Delete(c.Targets, i, i+1)
	c.index()
	return true
}

// Summary is one line for logs and check-config: "7 targets: 3 http, 2 tls,
// 1 dns, 1 icmp". Types without targets are left out.
func (c *Config) Summary() string {
	counts := map[string]int{}
	for _, t := range c.Targets {
		counts[t.Type]++
	}
	noun := "targets"
	if len(c.Targets) == 1 {
		noun = "target"
	}
	var parts []string
	for _, typ := range Types {
		if n := counts[typ]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, typ))
		}
	}
	if len(parts) == 0 {
		return "0 targets"
	}
	return fmt.Sprintf("%d %s: %s", len(c.Targets), noun, strings.Join(parts, ", "))
}

// Regions is the sorted union of the regions targets name. Targets that
// name none are probed by every region, which only membership knows.
func (c *Config) Regions() []string {
	var out []string
	for _, t := range c.Targets {
		for _, r := range t.Regions {
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	slices.Sort(out)
	return out
}

// InMaintenance reports whether a maintenance window covering the target
// called name is open at now.
func (c *Config) InMaintenance(name string, now time.Time) bool {
	for i := range c.Maintenance {
		m := &c.Maintenance[i]
		if m.Matches(name) && m.Active(now) {
			return true
		}
	}
	return false
}

// ApplyOverrides applies command-line flags over the file's settings and
// validates what they touch; on error c is unchanged.
func (c *Config) ApplyOverrides(o Overrides) error {
	var col collector
	bad := func(flag, format string, args ...any) {
		col.add(ErrInvalid, Pos{File: "command line"}, flag, format, args...)
	}
	if o.Node != "" && strings.ContainsAny(o.Node, " \t\r\n") {
		bad("-node", "%q: must not contain spaces", o.Node)
	}
	if o.Region != "" && !nameRe.MatchString(o.Region) {
		bad("-region", "%q: want letters, digits, '.', '_' or '-'", o.Region)
	}
	if o.Listen != "" {
		if err := hostPort(o.Listen, true); err != nil {
			bad("-listen", "%v", err)
		}
	}
	if o.Bind != "" {
		if err := hostPort(o.Bind, true); err != nil {
			bad("-bind", "%v", err)
		}
	}
	var join []string
	for _, j := range o.Join {
		if j = strings.TrimSpace(j); j == "" {
			continue
		}
		if err := hostPort(j, false); err != nil {
			bad("-join", "%v", err)
		}
		join = append(join, j)
	}
	var src netip.Addr
	if o.SourceIP != "" {
		var err error
		if src, err = netip.ParseAddr(o.SourceIP); err != nil {
			bad("-source-ip", "%q: not an IP address", o.SourceIP)
		}
	}
	if err := col.err(); err != nil {
		return err
	}

	if o.Node != "" {
		c.Agent.Node = o.Node
	}
	if o.Region != "" {
		c.Agent.Region = o.Region
	}
	if o.Listen != "" {
		c.Agent.Listen = o.Listen
	}
	if o.Bind != "" {
		c.Cluster.Bind, c.Cluster.BindPos = o.Bind, Pos{File: "command line (-bind)"}
	}
	if len(join) > 0 {
		c.Cluster.Join = join
	}
	if src.IsValid() {
		c.Agent.SourceIP = src
		// Targets with their own source_ip keep it; the others now probe
		// from the new address, which changes how they are probed.
		shared := map[*httpprobe.Options]*httpprobe.Options{}
		for _, t := range c.Targets {
			if !t.ownSourceIP {
				t.setSourceIP(src, shared)
				t.Fingerprint = t.fingerprint()
			}
		}
	}
	return nil
}

// setSourceIP makes t probe from ip. HTTP options are shared between
// targets and never written in place: each shared value gets one changed
// copy, remembered in shared, so the targets that shared it still do.
func (t *Target) setSourceIP(ip netip.Addr, shared map[*httpprobe.Options]*httpprobe.Options) {
	switch {
	case t.http != nil:
		if o, ok := shared[t.http]; ok {
			t.http = o
			return
		}
		o := *t.http
		o.Net.SourceIP = ip
		shared[t.http] = &o
		t.http = &o
	case t.TLS != nil:
		t.TLS.Net.SourceIP = ip
	case t.DNS != nil:
		t.DNS.Net.SourceIP = ip
	case t.TCP != nil:
		t.TCP.Net.SourceIP = ip
	case t.ICMP != nil:
		t.ICMP.Net.SourceIP = ip
	case t.GRPC != nil:
		t.GRPC.Net.SourceIP = ip
	}
}

// NewProber builds the target's protocol prober from its options, sharing
// nothing with other targets' probers.
func (t *Target) NewProber() (probe.Prober, error) { return t.NewProberShared(nil) }

// NewProberShared builds the target's prober with CA bundles, key pairs
// and transports shared through s with the configuration's other targets.
func (t *Target) NewProberShared(s *probe.Shared) (probe.Prober, error) {
	var (
		p   probe.Prober
		err error
	)
	switch {
	case t.http != nil:
		var hp *httpprobe.Prober
		o := *t.http
		o.URL = t.url
		if hp, err = httpprobe.NewShared(o, s); err == nil {
			p = hp
		}
	case t.TLS != nil:
		var tp *tlsprobe.Prober
		if tp, err = tlsprobe.NewShared(*t.TLS, s); err == nil {
			p = tp
		}
	case t.DNS != nil:
		var dp *dnsprobe.Prober
		if dp, err = dnsprobe.NewShared(*t.DNS, s); err == nil {
			p = dp
		}
	case t.TCP != nil:
		var cp *tcpprobe.Prober
		if cp, err = tcpprobe.NewShared(*t.TCP, s); err == nil {
			p = cp
		}
	case t.ICMP != nil:
		var ip *icmpprobe.Prober
		if ip, err = icmpprobe.NewShared(*t.ICMP, s); err == nil {
			p = ip
		}
	case t.GRPC != nil:
		var gp *grpcprobe.Prober
		if gp, err = grpcprobe.NewShared(*t.GRPC, s); err == nil {
			p = gp
		}
	default:
		return nil, fmt.Errorf("target %q: type %q has no options", t.Name, t.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("target %q (%s): %w", t.Name, t.Pos, err)
	}
	return p, nil
}

// secretFields are option fields whose values must not be hashed in the
// clear: the fingerprint changes when they do, but reveals nothing. A
// string is hashed whole, a map value by value (its keys in the clear).
var secretFields = map[string]bool{"BasicAuthPassword": true, "BearerToken": true, "SecretHeaders": true}

// fingerprint hashes everything that defines the target but its position:
// FNV-64a over a length-prefixed encoding, with labels and regions in
// sorted order so that reordering them in the file changes nothing.
func (t *Target) fingerprint() uint64 {
	h := fnv.New64a()
	e := fpEncoder{h: h}
	e.str("name", t.Name)
	e.str("type", t.Type)
	e.num("interval", int64(t.Interval))
	e.num("timeout", int64(t.Timeout))
	e.num("failures", int64(t.Failures))
	regions := slices.Sorted(slices.Values(t.Regions))
	e.num("regions", int64(len(regions)))
	for _, r := range regions {
		e.str("", r)
	}
	e.num("min_regions", int64(t.MinRegions))
	e.num("slo", int64(math.Float64bits(t.SLOObjective)))
	e.value("labels", reflect.ValueOf(t.Labels))
	e.value("http", reflect.ValueOf(t.HTTP()))
	e.value("tls", reflect.ValueOf(t.TLS))
	e.value("dns", reflect.ValueOf(t.DNS))
	e.value("tcp", reflect.ValueOf(t.TCP))
	// Hashed only when set, so that the fingerprints of the other types
	// stay what agents of earlier versions compute (the target-set hash
	// in the node metadata compares them across a rolling upgrade).
	if t.ICMP != nil {
		e.value("icmp", reflect.ValueOf(t.ICMP))
	}
	if t.GRPC != nil {
		e.value("grpc", reflect.ValueOf(t.GRPC))
	}
	return h.Sum64()
}

var textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()

// fpEncoder writes length-prefixed fields to h through one scratch buffer:
// a []byte(string) conversion handed to the hash's Write (an interface)
// was an allocation per field, most of a 10k-target reload's garbage.
type fpEncoder struct {
	h   hash.Hash64
	buf []byte
}

func (e *fpEncoder) bytes(b []byte) {
	e.buf = binary.LittleEndian.AppendUint64(e.buf[:0], uint64(len(b)))
	e.buf = append(e.buf, b...)
	e.h.Write(e.buf)
}

func (e *fpEncoder) string(s string) {
	e.buf = binary.LittleEndian.AppendUint64(e.buf[:0], uint64(len(s)))
	e.buf = append(e.buf, s...)
	e.h.Write(e.buf)
}

func (e *fpEncoder) str(name, v string) {
	e.string(name)
	e.string(v)
}

func (e *fpEncoder) num(name string, v int64) {
	e.string(name)
	e.buf = binary.LittleEndian.AppendUint64(e.buf[:0], uint64(v))
	e.h.Write(e.buf)
}

// value encodes any options value by reflection, so fields added to the
// protocol Options later are covered without touching this code.
func (e *fpEncoder) value(name string, v reflect.Value) {
	e.string(name)
	if !v.IsValid() {
		e.bytes(nil)
		return
	}
	// Asked of the type first: boxing every field into an interface to ask
	// was an allocation per field.
	if v.CanInterface() && v.Type().Implements(textMarshaler) {
		if m, ok := v.Interface().(encoding.TextMarshaler); ok && (v.Kind() != reflect.Pointer || !v.IsNil()) {
			b, _ := m.MarshalText()
			e.bytes(b)
			return
		}
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			e.string("nil")
			return
		}
		e.value("*", v.Elem())
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			if secretFields[f.Name] && f.Type.Kind() == reflect.String {
				sum := sha256.Sum256([]byte(v.Field(i).String()))
				e.string(f.Name)
				e.bytes(sum[:])
				continue
			}
			if secretFields[f.Name] && f.Type == reflect.TypeFor[map[string]string]() {
				m := v.Field(i).Interface().(map[string]string)
				e.string(f.Name)
				e.num("len", int64(len(m)))
				for _, k := range slices.Sorted(maps.Keys(m)) {
					sum := sha256.Sum256([]byte(m[k]))
					e.string(k)
					e.bytes(sum[:])
				}
				continue
			}
			e.value(f.Name, v.Field(i))
		}
	case reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
		e.num("len", int64(len(keys)))
		for _, k := range keys {
			e.value(fmt.Sprint(k), v.MapIndex(k))
		}
	case reflect.Slice, reflect.Array:
		e.num("len", int64(v.Len()))
		for i := 0; i < v.Len(); i++ {
			e.value("", v.Index(i))
		}
	case reflect.String:
		e.string(v.String())
	case reflect.Bool:
		e.bytes([]byte(fmt.Sprint(v.Bool())))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.num("", v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.num("", int64(v.Uint()))
	case reflect.Float32, reflect.Float64:
		e.num("", int64(math.Float64bits(v.Float())))
	case reflect.Func, reflect.Chan, reflect.UnsafePointer:
		// Functions (a custom Resolver's Dial) cannot be compared; only
		// whether one is set counts.
		e.bytes([]byte(fmt.Sprint(v.IsNil())))
	}
}
