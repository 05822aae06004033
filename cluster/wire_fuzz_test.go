package cluster

import (
	"github.com/vantage-probe/vantage/cluster/quorum"

	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// The gossip decoders read bytes from any peer that holds the key (or from
// anyone, without one): whatever arrives must be refused or decoded without
// a panic and without allocating in proportion to a count the sender claims.
// What decodes must survive a re-encode unchanged, so that relaying a
// message (push/pull hands on what gossip brought) never alters it.

// wireSeeds are realistic messages of every type, so that the fuzzer starts
// from the grammar rather than from noise.
func wireSeeds() [][]byte {
	at := time.UnixMilli(1_767_225_600_000) // 2026-01-01
	obs := Observation{
		Target: "checkout-api", AgentID: "eu-west-1", Region: "eu-west", Boot: 1_767_225_600_000_000_000, Seq: 42,
		OK: false, Failing: true, Reason: "timeout",
		Latency: 1500 * time.Millisecond, FailingFor: 12 * time.Second, Interval: 15 * time.Second, Timeout: 10 * time.Second,
	}
	ok := obs
	ok.OK, ok.Failing, ok.Isolated, ok.Reason, ok.FailingFor = true, false, true, "", 0
	in := Incident{
		ID: "checkout-api@1767225600000", Target: "checkout-api", StartedAt: at, ConfirmAt: at.Add(time.Second),
		QuorumAt: at.Add(3 * time.Second), DetectedAt: at.Add(3 * time.Second), Regions: []string{"eu-west", "us-east"},
		Leader: "us-east-2", Reason: "connect_refused", Flaps: 2,
	}
	verdict := Verdict{Target: "checkout-api", Leader: "us-east-2", Verdict: quorum.Verdict{State: quorum.Down,
		Failing: []string{"eu-west", "us-east"}, Passing: []string{"ap-south"}, Reporting: 3, Needed: 2},
		since: localClock.Stamp(at.Add(3 * time.Second)), Incident: in.ID, boot: 7, seq: 42}
	resolved := in
	resolved.ResolvedAt, resolved.Regions = at.Add(time.Hour), nil
	long := strings.Repeat("r", maxString)
	return [][]byte{
		encodeResult(&obs),
		encodeResult(&ok),
		encodeResult(&Observation{Target: long, AgentID: long, Region: long, Reason: long, Boot: ^uint64(0), Seq: ^uint64(0)}),
		encodeHeartbeat(&Heartbeat{AgentID: "eu-west-1", Region: "eu-west", Boot: 7, Seq: 9, Isolated: true, Targets: 120}),
		encodeConfirmReq(&confirmReq{ID: 3, Target: "checkout-api", From: "us-east-2"}),
		encodeConfirmResp(&confirmResp{ID: 3, Obs: obs}),
		encodeConfirmResp(&confirmResp{ID: 4, Busy: true}),
		encodeIncident(&in),
		encodeIncident(&resolved),
		encodeState([]*Observation{&obs, &ok}, []*Incident{&in, &resolved}, []*Verdict{&verdict}, at.Add(time.Hour)),
		encodeState(nil, nil, nil, time.Now()),
		encodeMeta(&Meta{Proto: ProtocolVersion, Region: "eu-west", AgentID: "eu-west-1", Version: "v1.2.3", TargetsHash: 0xdeadbeef, Boot: 99}),
		{msgBye, wireVersion, 5, 'n', 'o', 'd', 'e', '1'},
		// Refusals worth keeping in the corpus: a string one byte over
		// maxString, a wrong version, a truncated varint, a state that
		// claims the maximum number of observations in ten bytes.
		append([]byte{msgResult, wireVersion, 0x80, 0x02}, make([]byte, 256)...),
		{msgResult, wireVersion + 1},
		{msgHeartbeat, wireVersion, 0xff},
		binary.AppendUvarint([]byte{msgState, wireVersion}, maxStateObservations),
		binary.AppendUvarint([]byte{msgState, wireVersion, 0}, maxStateIncidents+1),
		encodeVerdict(&verdict, at.Add(time.Hour)),
		encodeDigest(&digest{Node: "eu-west-1", Buckets: []uint32{0, 1, 0xdeadbeef, ^uint32(0)}}),
		{msgDigest, wireVersion, 1, 'n', 40}, // 2^40 buckets claimed in five bytes
		encodeKeys(&keyList{Node: "eu-west-1", n: 64, Buckets: []uint64{1 << 63}, Keys: []uint32{7, 0xdeadbeef}}),
		{msgKeys, wireVersion, 1, 'n', 6, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0x7f}, // 2M keys claimed in three bytes
		{},
	}
}

func addSeeds(f *testing.F) {
	for _, b := range wireSeeds() {
		f.Add(b)
	}
}

// checkStrings fails when a decoded string is longer than a peer may send.
func checkStrings(t *testing.T, ss ...string) {
	t.Helper()
	for _, s := range ss {
		if len(s) > maxString {
			t.Fatalf("decoded a %d-byte string; maxString is %d", len(s), maxString)
		}
	}
}

func FuzzDecodeResult(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := decodeResult(b)
		if err != nil {
			return
		}
		checkStrings(t, o.Target, o.AgentID, o.Region, o.Reason)
		enc := encodeResult(&o)
		// Every result a peer can send us fits in one gossip message, so
		// relaying it is never refused as oversized.
		if len(enc) > maxMessage {
			t.Fatalf("re-encoded result is %d bytes, over maxMessage %d", len(enc), maxMessage)
		}
		o2, err := decodeResult(enc)
		if err != nil {
			t.Fatalf("re-encoded result does not decode: %v", err)
		}
		if !reflect.DeepEqual(o, o2) {
			t.Fatalf("round trip changed the result:\n%+v\n%+v", o, o2)
		}
	})
}

func FuzzDecodeHeartbeat(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeHeartbeat(b)
		if err != nil {
			return
		}
		checkStrings(t, h.AgentID, h.Region)
		h2, err := decodeHeartbeat(encodeHeartbeat(&h))
		if err != nil || !reflect.DeepEqual(h2, h) {
			t.Fatalf("round trip: %+v -> %+v, %v", h, h2, err)
		}
	})
}

func FuzzDecodeConfirm(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := decodeConfirmReq(b); err == nil {
			checkStrings(t, r.Target, r.From)
			r2, err := decodeConfirmReq(encodeConfirmReq(&r))
			if err != nil || r2 != r {
				t.Fatalf("request round trip: %+v -> %+v, %v", r, r2, err)
			}
		}
		if r, err := decodeConfirmResp(b); err == nil {
			checkStrings(t, r.Obs.Target, r.Obs.AgentID, r.Obs.Region, r.Obs.Reason)
			enc := encodeConfirmResp(&r)
			if len(enc) > maxMessage {
				t.Fatalf("re-encoded response is %d bytes, over maxMessage %d", len(enc), maxMessage)
			}
			r2, err := decodeConfirmResp(enc)
			if err != nil || r2 != r {
				t.Fatalf("response round trip: %+v -> %+v, %v", r, r2, err)
			}
		}
	})
}

func FuzzDecodeIncident(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := decodeIncident(b)
		if err != nil {
			return
		}
		checkStrings(t, append([]string{in.ID, in.Target, in.Leader, in.Reason}, in.Regions...)...)
		if len(in.Regions) > 16 {
			t.Fatalf("decoded %d regions, the limit is 16", len(in.Regions))
		}
		if in.Flaps < 0 || in.Flaps > 1<<20 {
			t.Fatalf("flaps %d out of range", in.Flaps)
		}
		in2, err := decodeIncident(encodeIncident(&in))
		if err != nil {
			t.Fatalf("re-encoded incident does not decode: %v", err)
		}
		if !reflect.DeepEqual(in, in2) {
			t.Fatalf("round trip changed the incident:\n%+v\n%+v", in, in2)
		}
	})
}

func FuzzDecodeState(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		now := time.Unix(1_800_000_000, 0)
		obs, ins, vs, err := decodeState(b, now)
		if err != nil {
			if obs != nil || ins != nil || vs != nil {
				t.Fatalf("error %v returned with %d observations, %d incidents, %d verdicts", err, len(obs), len(ins), len(vs))
			}
			return
		}
		// Memory follows the bytes received, never the count claimed: an
		// observation takes at least 12 bytes on the wire, and the slice
		// is pre-sized to at most one per 8.
		if lim := len(b) / 8; cap(obs) > lim {
			t.Fatalf("%d-byte state allocated room for %d observations (limit %d)", len(b), cap(obs), lim)
		}
		if len(ins) > maxStateIncidents || len(ins) > len(b) {
			t.Fatalf("%d incidents from %d bytes", len(ins), len(b))
		}
		op := make([]*Observation, len(obs))
		for i := range obs {
			checkStrings(t, obs[i].Target, obs[i].AgentID, obs[i].Region, obs[i].Reason)
			op[i] = &obs[i]
		}
		ip := make([]*Incident, len(ins))
		for i := range ins {
			ip[i] = &ins[i]
		}
		vp := make([]*Verdict, len(vs))
		for i := range vs {
			checkStrings(t, vs[i].Target, vs[i].Leader, vs[i].Incident)
			vp[i] = &vs[i]
		}
		obs2, ins2, vs2, err := decodeState(encodeState(op, ip, vp, now), now)
		if err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
		if len(obs2) != len(obs) || len(ins2) != len(ins) || len(vs2) != len(vs) {
			t.Fatalf("round trip: %d/%d observations, %d/%d incidents, %d/%d verdicts", len(obs2), len(obs), len(ins2), len(ins), len(vs2), len(vs))
		}
		for i := range vs {
			if !reflect.DeepEqual(vs[i], vs2[i]) {
				t.Fatalf("verdict %d changed:\n%+v\n%+v", i, vs[i], vs2[i])
			}
		}
		for i := range obs {
			if obs[i] != obs2[i] {
				t.Fatalf("observation %d changed:\n%+v\n%+v", i, obs[i], obs2[i])
			}
		}
		for i := range ins {
			if !reflect.DeepEqual(ins[i], ins2[i]) {
				t.Fatalf("incident %d changed:\n%+v\n%+v", i, ins[i], ins2[i])
			}
		}
	})
}

// FuzzDecodeDigest: a digest is refused or decodes to a power of two of
// buckets, at most maxDigestBuckets, allocated only after the bytes for
// them are there, and survives a re-encode unchanged.
func FuzzDecodeDigest(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeDigest(b)
		if err != nil {
			if d.Buckets != nil {
				t.Fatalf("error %v returned with %d buckets", err, len(d.Buckets))
			}
			return
		}
		checkStrings(t, d.Node)
		if n := len(d.Buckets); n == 0 || n&(n-1) != 0 || n > maxDigestBuckets || 4*n > len(b) {
			t.Fatalf("%d buckets from %d bytes", n, len(b))
		}
		d2, err := decodeDigest(encodeDigest(&d))
		if err != nil || !reflect.DeepEqual(d, d2) {
			t.Fatalf("round trip changed the digest (%v):\n%+v\n%+v", err, d, d2)
		}
	})
}

func FuzzDecodeKeys(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := decodeKeys(b)
		if err != nil {
			return
		}
		checkStrings(t, k.Node)
		if k.n < 64 || k.n&(k.n-1) != 0 || k.n > maxDigestBuckets || len(k.Buckets) != k.n/64 {
			t.Fatalf("%d buckets in %d words", k.n, len(k.Buckets))
		}
		if len(k.Keys) > maxKeys || 4*len(k.Keys) > len(b) {
			t.Fatalf("%d keys from %d bytes", len(k.Keys), len(b))
		}
		k2, err := decodeKeys(encodeKeys(&k))
		if err != nil || !reflect.DeepEqual(k, k2) {
			t.Fatalf("round trip changed the key list (%v):\n%+v\n%+v", err, k, k2)
		}
	})
}

func FuzzDecodeMeta(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			return
		}
		checkStrings(t, m.Region, m.AgentID, m.Version)
		m2, err := decodeMeta(encodeMeta(&m))
		if err != nil || m2 != m {
			t.Fatalf("round trip: %+v -> %+v, %v", m, m2, err)
		}
	})
}

// FuzzMetaFits builds metadata from arbitrary fields. Whatever New accepts
// must survive memberlist's 512-byte node meta and come back exactly, or
// peers would see the agent under another id (or not at all: NodeMeta sends
// nothing when the encoding does not fit).
func FuzzMetaFits(f *testing.F) {
	f.Add(byte(1), "eu-west", "eu-west-1", "v1.2.3", uint64(0xdeadbeef), uint64(1_767_225_600_000_000_000))
	f.Add(byte(1), "", "", "", uint64(0), uint64(0))
	f.Add(byte(2), strings.Repeat("r", 63), strings.Repeat("n", 253), "v1.2.3-15-gabcdef0-dirty", ^uint64(0), ^uint64(0))
	f.Add(byte(1), strings.Repeat("r", maxString), strings.Repeat("n", maxString), "dev", uint64(1), uint64(1))
	f.Add(byte(1), "eu-west", strings.Repeat("n", maxString+1), "dev", uint64(1), uint64(1))
	f.Fuzz(func(t *testing.T, proto byte, region, agentID, version string, hash, boot uint64) {
		m := Meta{Proto: proto, Region: region, AgentID: agentID, Version: version, TargetsHash: hash, Boot: boot}
		enc := encodeMeta(&m)
		fits := checkMeta(region, agentID, agentID, version) == nil
		if !fits {
			return // New refuses such a config; FuzzNewRefusesUnfitMeta checks that
		}
		if len(enc) > memberlist.MetaMaxSize {
			t.Fatalf("accepted metadata encodes to %d bytes, over memberlist's %d", len(enc), memberlist.MetaMaxSize)
		}
		got, err := decodeMeta(enc)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if got != m {
			t.Fatalf("round trip changed the metadata:\n%+v\n%+v", m, got)
		}
	})
}

// TestWireSeedsDecode keeps the seeds honest: each valid one decodes as its
// own type and every refusal is refused, so a codec change that breaks the
// corpus is seen in a normal test run, not only while fuzzing.
func TestWireSeedsDecode(t *testing.T) {
	seeds := wireSeeds()
	valid := 0
	for _, b := range seeds {
		var err error
		typ := byte(0)
		if len(b) > 0 {
			typ = b[0]
		}
		switch typ {
		case msgResult:
			_, err = decodeResult(b)
		case msgHeartbeat:
			_, err = decodeHeartbeat(b)
		case msgConfirmReq:
			_, err = decodeConfirmReq(b)
		case msgConfirmResp:
			_, err = decodeConfirmResp(b)
		case msgIncident:
			_, err = decodeIncident(b)
		case msgState:
			_, _, _, err = decodeState(b, time.Now())
		case msgVerdict:
			_, err = decodeVerdict(b, time.Now())
		case msgDigest:
			_, err = decodeDigest(b)
		case msgKeys:
			_, err = decodeKeys(b)
		case 'V':
			_, err = decodeMeta(b)
		default:
			continue
		}
		if err == nil {
			valid++
		}
	}
	// 15 valid encodings; the 8 refusals are counted out.
	if valid != 15 {
		t.Fatalf("%d seeds decode, want 15", valid)
	}
	if _, err := decodeResult(seeds[13]); !errors.Is(err, errTooLarge) {
		t.Fatalf("256-byte string: %v, want errTooLarge", err)
	}
	if _, err := decodeResult(seeds[14]); !errors.Is(err, errVersion) {
		t.Fatalf("wrong version: %v, want errVersion", err)
	}
	if !bytes.Equal(seeds[11][:1], []byte{'V'}) {
		t.Fatal("seed 11 should be node metadata")
	}
}

// TestIncidentWithoutAlertedAt: an incident from an agent that predates
// AlertedAt (its encoding ends after Flaps) still decodes, as never alerted.
func TestIncidentWithoutAlertedAt(t *testing.T) {
	in := Incident{ID: "t@1", Target: "t", StartedAt: time.UnixMilli(1000), Flaps: 3}
	b := encodeIncident(&in)
	old := b[:len(b)-1] // AlertedAt zero is one uvarint byte
	got, err := decodeIncident(old)
	if err != nil || got.Flaps != 3 || !got.AlertedAt.IsZero() {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	in.AlertedAt = time.UnixMilli(2000)
	got, err = decodeIncident(encodeIncident(&in))
	if err != nil || !got.AlertedAt.Equal(in.AlertedAt) {
		t.Fatalf("decoded %+v, %v", got, err)
	}
}

// TestMetaWithoutFeatures: metadata from an agent that predates Features
// (it ends after Boot) decodes with none, so no key list is sent to it.
// (Such an agent stops reading ours at Boot: its decoder ignores the rest.)
func TestMetaWithoutFeatures(t *testing.T) {
	m := Meta{Proto: ProtocolVersion, Region: "eu", AgentID: "eu-1", Boot: 7, Features: features}
	b := encodeMeta(&m)
	old := b[:len(b)-1] // Features is one uvarint byte
	got, err := decodeMeta(old)
	if err != nil || got.Features != 0 || got.Boot != 7 {
		t.Fatalf("older metadata decoded as %+v, %v", got, err)
	}
	if got, err := decodeMeta(b); err != nil || got.Features&featureKeys == 0 {
		t.Fatalf("our metadata decoded as %+v, %v", got, err)
	}
}

func FuzzDecodeVerdict(f *testing.F) {
	addSeeds(f)
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeVerdict(b, now)
		if err != nil {
			return
		}
		checkStrings(t, v.Target, v.Leader, v.Incident)
		if len(v.Failing)+len(v.Passing)+len(v.Stale)+len(v.Isolated) > 4*maxRegions || v.State > quorum.Down {
			t.Fatalf("decoded an impossible verdict: %+v", v)
		}
		v2, err := decodeVerdict(encodeVerdict(&v, now), now)
		if err != nil || !reflect.DeepEqual(v, v2) {
			t.Fatalf("round trip: %+v -> %+v, %v", v, v2, err)
		}
	})
}
