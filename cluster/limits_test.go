package cluster

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/hashicorp/memberlist"

	"github.com/vantage-probe/vantage/internal/testenv"
)

// Every limit the cluster enforces on what it sends or accepts, and every
// refusal, with the counter that makes it visible.

// single starts one agent with no seeds, stopped at the end of the test.
func single(t *testing.T, name string) (*Cluster, *scripted) {
	t.Helper()
	l := &scripted{down: map[string]bool{}}
	c, err := New(fastConfig(name, "eu"), l, testTargets(2))
	if err != nil {
		t.Fatal(err)
	}
	l.c = c
	t.Cleanup(c.Kill)
	return c, l
}

// metricLine returns the exposition line of series name in c's metrics.
func metricLine(t *testing.T, c *Cluster, series string) string {
	t.Helper()
	var b bytes.Buffer
	c.cfg.Metrics.WritePrometheus(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(line, series+" ") {
			return line
		}
	}
	t.Fatalf("no series %s in:\n%s", series, b.String())
	return ""
}

const (
	malformedSeries = `vantage_gossip_messages_dropped_total{reason="malformed"}`
	oversizedSeries = `vantage_gossip_messages_dropped_total{reason="oversized"}`
)

func TestOversizedMessageNeverEntersTheBroadcastQueue(t *testing.T) {
	// Two members: an agent alone queues nothing at all (see below).
	nodes := startFleet(t, []string{"eu"}, 2, testTargets(2), nil)
	c := nodes[0].c
	testenv.Poll(t, 10*time.Second, "two members", func() bool { return c.ml.NumMembers() == 2 })
	before := c.queue.NumQueued()

	c.broadcast("x/over", make([]byte, maxMessage+1))
	if n := c.queue.NumQueued(); n != before {
		t.Fatalf("queue holds %d messages after an oversized one, want %d", n, before)
	}
	if got := c.m.oversized.Get(); got != 1 {
		t.Fatalf("oversized = %d, want 1", got)
	}

	// An incident seen by many regions with long names is the message
	// that can outgrow a packet: it is refused, not fragmented.
	in := &Incident{ID: "t00@1", Target: "t00", StartedAt: time.UnixMilli(1)}
	for i := range 16 {
		in.Regions = append(in.Regions, fmt.Sprintf("%02d-%s", i, strings.Repeat("r", 80)))
	}
	msg := encodeIncident(in)
	if len(msg) <= maxMessage {
		t.Fatalf("test incident is only %d bytes", len(msg))
	}
	c.broadcast("i/"+in.ID, msg)
	if n := c.queue.NumQueued(); n != before {
		t.Fatalf("queue holds %d messages after an oversized incident, want %d", n, before)
	}
	if line := metricLine(t, c, oversizedSeries); line != oversizedSeries+" 2" {
		t.Fatalf("metric %q, want 2", line)
	}

	// The largest allowed message is queued.
	c.broadcast("x/max", make([]byte, maxMessage))
	if n := c.queue.NumQueued(); n != before+1 {
		t.Fatalf("queue holds %d messages after one of exactly maxMessage, want %d", n, before+1)
	}
	if got := c.m.oversized.Get(); got != 2 {
		t.Fatalf("oversized = %d after a message of maxMessage bytes, want 2", got)
	}
}

// The largest result a peer can produce (every string at maxString, every
// number at its widest) fits in one gossip message: results are never
// dropped as oversized, only incidents can be.
func TestLargestResultFitsAMessage(t *testing.T) {
	long := strings.Repeat("x", maxString+10) // the encoder cuts to maxString
	o := Observation{Target: long, AgentID: long, Region: long, Reason: long, Boot: ^uint64(0), Seq: ^uint64(0),
		Latency: 1<<63 - 1, FailingFor: 1<<63 - 1, Interval: 1<<63 - 1, Timeout: 1<<63 - 1}
	for _, msg := range [][]byte{encodeResult(&o), encodeConfirmResp(&confirmResp{ID: ^uint64(0), Busy: true, Obs: o})} {
		if len(msg) > maxMessage {
			t.Fatalf("largest message is %d bytes, over maxMessage %d", len(msg), maxMessage)
		}
	}
	got, err := decodeResult(encodeResult(&o))
	if err != nil || got.Target != long[:maxString] {
		t.Fatalf("a string over maxString is cut to maxString when sent: %d bytes, %v", len(got.Target), err)
	}
}

// rawStr appends a length-prefixed string without the encoder's cut, as a
// hostile or buggy peer would.
func rawStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Each string field of each message, one byte over maxString, is refused
// with errTooLarge; at maxString it is accepted.
func TestStringFieldsOverMaxStringRejected(t *testing.T) {
	type msg struct {
		name   string
		fields int
		build  func(ss []string) []byte
		decode func([]byte) error
	}
	u := func(b []byte, vs ...uint64) []byte {
		for _, v := range vs {
			b = binary.AppendUvarint(b, v)
		}
		return b
	}
	obs := func(b []byte, ss []string) []byte {
		b = rawStr(rawStr(rawStr(b, ss[0]), ss[1]), ss[2])
		b = append(u(b, 1, 2), flagOK)
		return u(rawStr(b, ss[3]), 1, 2, 3, 4)
	}
	msgs := []msg{
		{"result", 4, func(ss []string) []byte { return obs([]byte{msgResult, wireVersion}, ss) },
			func(b []byte) error { _, err := decodeResult(b); return err }},
		{"heartbeat", 2, func(ss []string) []byte {
			b := rawStr(rawStr([]byte{msgHeartbeat, wireVersion}, ss[0]), ss[1])
			return u(append(u(b, 1, 2), 0), 3)
		}, func(b []byte) error { _, err := decodeHeartbeat(b); return err }},
		{"confirm request", 2, func(ss []string) []byte {
			return rawStr(rawStr(u([]byte{msgConfirmReq, wireVersion}, 7), ss[0]), ss[1])
		}, func(b []byte) error { _, err := decodeConfirmReq(b); return err }},
		{"confirm response", 4, func(ss []string) []byte {
			return obs(append(u([]byte{msgConfirmResp, wireVersion}, 7), 0), ss)
		}, func(b []byte) error { _, err := decodeConfirmResp(b); return err }},
		{"incident", 5, func(ss []string) []byte {
			b := rawStr(rawStr([]byte{msgIncident, wireVersion}, ss[0]), ss[1])
			b = rawStr(u(b, 1, 2, 3, 4, 0, 1), ss[2])
			return u(rawStr(rawStr(b, ss[3]), ss[4]), 0)
		}, func(b []byte) error { _, err := decodeIncident(b); return err }},
		{"meta", 3, func(ss []string) []byte {
			b := rawStr(rawStr(rawStr([]byte{'V', ProtocolVersion}, ss[0]), ss[1]), ss[2])
			return u(binary.BigEndian.AppendUint64(b, 5), 6)
		}, func(b []byte) error { _, err := decodeMeta(b); return err }},
		{"state", 4, func(ss []string) []byte {
			return u(obs(u([]byte{msgState, wireVersion}, 1), ss), 0)
		}, func(b []byte) error { _, _, _, err := decodeState(b, time.Now()); return err }},
	}
	for _, m := range msgs {
		for i := range m.fields {
			ss := make([]string, m.fields)
			for j := range ss {
				ss[j] = "ok"
			}
			ss[i] = strings.Repeat("s", maxString)
			if err := m.decode(m.build(ss)); err != nil {
				t.Errorf("%s: field %d at maxString refused: %v", m.name, i, err)
			}
			ss[i] += "s"
			if err := m.decode(m.build(ss)); !errors.Is(err, errTooLarge) {
				t.Errorf("%s: field %d over maxString: %v, want errTooLarge", m.name, i, err)
			}
		}
	}
}

// Counts are checked against their limits before anything is allocated for
// them, and what is allocated follows the bytes received.
func TestDecodeStateCountLimits(t *testing.T) {
	head := []byte{msgState, wireVersion}
	if _, _, _, err := decodeState(binary.AppendUvarint(head, maxStateObservations+1), time.Now()); !errors.Is(err, errTooLarge) {
		t.Fatalf("observations over the limit: %v, want errTooLarge", err)
	}
	if _, _, _, err := decodeState(binary.AppendUvarint(append(head, 0), maxStateIncidents+1), time.Now()); !errors.Is(err, errTooLarge) {
		t.Fatalf("incidents over the limit: %v, want errTooLarge", err)
	}
	// An incident whose length prefix runs past the end.
	if _, _, _, err := decodeState(binary.AppendUvarint(append(head, 0, 1), 1<<40), time.Now()); !errors.Is(err, errShort) {
		t.Fatalf("incident length past the end: %v, want errShort", err)
	}
	// Regions of an incident over 16.
	var regions []byte
	regions = append(regions, msgIncident, wireVersion, 0, 0, 0, 0, 0, 0, 0, 17)
	if _, err := decodeIncident(regions); !errors.Is(err, errTooLarge) {
		t.Fatalf("17 regions: %v, want errTooLarge", err)
	}

	// A few bytes claiming the maximum count must not allocate the room
	// for it (500k observations would be ~80 MB).
	claim := binary.AppendUvarint(head, maxStateObservations)
	claim = append(claim, make([]byte, 64)...)
	const runs = 50
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		if _, _, _, err := decodeState(claim, time.Now()); err == nil {
			t.Fatal("a truncated state decoded")
		}
	}
	runtime.ReadMemStats(&after)
	// Background goroutines allocate too; the bound is generous but three
	// orders of magnitude below a proportional allocation.
	if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 64<<10 {
		t.Fatalf("decoding %d bytes claiming %d observations allocated %d bytes per call", len(claim), maxStateObservations, per)
	}
}

func TestMalformedMessagesAreDroppedAndCounted(t *testing.T) {
	c, _ := single(t, "a")
	valid := encodeResult(&Observation{Target: "t00", AgentID: "peer", Region: "us", Boot: 1, Seq: 1, OK: true})
	long := strings.Repeat("x", maxString+1)
	bad := map[string][]byte{
		"one byte":                  {msgResult},
		"unknown type":              {99, wireVersion, 1, 2, 3},
		"push/pull state by gossip": encodeState(nil, nil, nil, time.Now()),
		"result, wrong version":     append([]byte{msgResult, wireVersion + 1}, valid[2:]...),
		"result, truncated":         valid[:len(valid)-4], // the last three bytes are optional (ConfirmedFor, CertExpiry, latency in µs)
		"result, long string":       rawStr([]byte{msgResult, wireVersion}, long),
		"result, varint overflow": append([]byte{msgResult, wireVersion, 1, 'x', 1, 'y', 1, 'z'},
			0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
		"heartbeat, truncated":        encodeHeartbeat(&Heartbeat{AgentID: "peer", Region: "us", Boot: 1, Seq: 1})[:6],
		"confirm request, truncated":  encodeConfirmReq(&confirmReq{ID: 1, Target: "t00", From: "b"})[:5],
		"confirm response, truncated": encodeConfirmResp(&confirmResp{ID: 1})[:4],
		"incident, 17 regions":        {msgIncident, wireVersion, 0, 0, 0, 0, 0, 0, 0, 17},
		"incident, wrong version":     {msgIncident, 0},
		"bye, no name":                {msgBye, wireVersion},
		"bye, long name":              rawStr([]byte{msgBye, wireVersion}, long),
	}
	for name, b := range bad {
		before := c.m.badMessages.Get()
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("%s: handler panicked: %v", name, p)
				}
			}()
			c.handle(b)
		}()
		if got := c.m.badMessages.Get(); got != before+1 {
			t.Errorf("%s: malformed count went %d -> %d, want +1", name, before, got)
		}
	}
	if line := metricLine(t, c, malformedSeries); line != malformedSeries+" "+strconv.Itoa(len(bad)) {
		t.Fatalf("metric %q, want %d", line, len(bad))
	}

	// A malformed push/pull state is counted the same way and merges
	// nothing.
	(&delegate{c: c}).MergeRemoteState([]byte{msgState, wireVersion, 5, 1}, false)
	if got := c.m.badMessages.Get(); got != uint64(len(bad))+1 {
		t.Fatalf("malformed state: count %d, want %d", got, len(bad)+1)
	}

	// Metadata that is not ours is refused and counted, and the node is
	// not taken for a member.
	c.mu.Lock()
	m := c.upsertMemberLocked(&memberlist.Node{Name: "stranger", Meta: []byte("consul")}, Alive, time.Now())
	_, known := c.members["stranger"]
	c.mu.Unlock()
	if m != nil || known || c.m.badMeta.Get() != 1 {
		t.Fatalf("foreign metadata: member %v, known %v, bad_meta %d", m, known, c.m.badMeta.Get())
	}

	// The handler still works: a valid result is stored.
	c.handle(valid)
	if !hasObservation(c, "t00", "peer") {
		t.Fatal("a valid result after malformed ones was not stored")
	}
}

func hasObservation(c *Cluster, target, agent string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.obsLocked(target).get(agent) != nil
}

// The same, end to end: a second agent sends the bytes over memberlist's
// TCP transport. The receiver counts each, stays in the cluster and goes
// on taking valid messages.
func TestMalformedMessagesFromAPeer(t *testing.T) {
	targets := testTargets(2)
	nodes := startFleet(t, []string{"eu", "us"}, 1, targets, nil)
	a, b := nodes[0].c, nodes[1].c
	testenv.Poll(t, 15*time.Second, "the two agents to see each other", func() bool {
		return a.ml.NumMembers() == 2 && b.ml.NumMembers() == 2
	})
	host, port, err := net.SplitHostPort(a.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	to := &memberlist.Node{Name: a.cfg.NodeName, Addr: net.ParseIP(host), Port: uint16(p)}

	before := a.m.badMessages.Get()
	junk := [][]byte{
		{msgResult},
		{0xff, 0xff, 0xff},
		{msgHeartbeat, wireVersion, 200},
		rawStr([]byte{msgResult, wireVersion}, strings.Repeat("x", 300)),
		binary.AppendUvarint([]byte{msgState, wireVersion}, 1<<62),
	}
	for _, j := range junk {
		if err := b.ml.SendReliable(to, j); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	testenv.Poll(t, 10*time.Second, "every malformed message to be counted", func() bool {
		return a.m.badMessages.Get() >= before+uint64(len(junk))
	})
	if got := a.m.badMessages.Get(); got != before+uint64(len(junk)) {
		t.Fatalf("malformed count %d, want %d", got, before+uint64(len(junk)))
	}

	// Still a member, still listening: a valid result from b is stored.
	o := Observation{Target: "t01", AgentID: b.AgentID(), Region: b.Region(), Boot: b.Boot(), Seq: 1000, OK: true,
		Interval: time.Second, Timeout: 500 * time.Millisecond}
	if err := b.ml.SendReliable(to, encodeResult(&o)); err != nil {
		t.Fatal(err)
	}
	testenv.Poll(t, 10*time.Second, "the valid result to be stored", func() bool { return hasObservation(a, "t01", b.AgentID()) })
	if a.ml.NumMembers() != 2 {
		t.Fatalf("receiver sees %d members after malformed messages", a.ml.NumMembers())
	}
}

// memberlist's goroutines hand messages over without blocking: when the
// inbox is full the message is dropped and counted, and the bytes queued
// are a copy (memberlist reuses its buffer).
func TestFullInboxDropsAndCounts(t *testing.T) {
	c, _ := single(t, "a")
	c.Kill() // stops recvLoop, so nothing drains the inbox
	d := &delegate{c: c}
	buf := []byte{msgResult, wireVersion, 'x'}
	d.NotifyMsg(buf)
	buf[2] = 'y'
	for range cap(c.inbox) + 2 {
		d.NotifyMsg(buf)
	}
	if got := c.m.inboxDrops.Get(); got != 3 {
		t.Fatalf("queue_full drops = %d, want 3 (inbox of %d)", got, cap(c.inbox))
	}
	if first := <-c.inbox; first[2] != 'x' {
		t.Fatalf("inbox holds memberlist's buffer, not a copy: %q", first)
	}
	d.NotifyMsg(nil) // empty messages are ignored, not queued or counted
	if got := c.m.inboxDrops.Get(); got != 3 || len(c.inbox) != cap(c.inbox)-1 {
		t.Fatalf("empty message: drops %d, inbox %d", got, len(c.inbox))
	}
}

// Names that would not survive the wire are refused at start: cut to
// maxString, peers would know the agent by another id; over memberlist's
// 512-byte metadata, peers would not know it at all.
func TestNewRefusesNamesThatDoNotFitTheWire(t *testing.T) {
	long := strings.Repeat("n", maxString+1)
	for _, tt := range []struct {
		name string
		tune func(*Config)
		want string
	}{
		{"node name over maxString", func(c *Config) { c.NodeName = long }, "node name"},
		{"agent id over maxString", func(c *Config) { c.AgentID = long }, "agent id"},
		{"region over maxString", func(c *Config) { c.Region = long }, "region"},
		{"metadata over 512 bytes", func(c *Config) {
			c.Region, c.AgentID, c.Version = strings.Repeat("r", 200), strings.Repeat("a", 200), strings.Repeat("v", 100)
		}, "node metadata"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fastConfig("a", "eu")
			tt.tune(&cfg)
			c, err := New(cfg, &scripted{down: map[string]bool{}}, nil)
			if err == nil {
				c.Kill()
				t.Fatal("New accepted it")
			}
			if !errors.Is(err, errTooLarge) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want errTooLarge naming %s", err, tt.want)
			}
		})
	}
	// The longest names that fit start, and peers decode them unchanged.
	cfg := fastConfig(strings.Repeat("n", 253), strings.Repeat("r", 63))
	cfg.Version = "v1.2.3-15-gabcdef0-dirty"
	l := &scripted{down: map[string]bool{}}
	c, err := New(cfg, l, nil)
	if err != nil {
		t.Fatalf("a 253-byte host name and a 63-byte region: %v", err)
	}
	l.c = c
	defer c.Kill()
	meta, err := decodeMeta((&delegate{c: c}).NodeMeta(memberlist.MetaMaxSize))
	if err != nil || meta.AgentID != cfg.NodeName || meta.Region != cfg.Region || meta.Version != cfg.Version {
		t.Fatalf("metadata %+v, %v", meta, err)
	}
}

// An agent alone gossips to nobody: its results must not pile up in the
// broadcast queue (one per target, kept until a member comes: 2.5 MB at
// 10k targets). An agent that joins later still learns them, by push/pull.
func TestAloneQueuesNoBroadcastsAndAJoinerStillLearns(t *testing.T) {
	targets := testTargets(50)
	a, la := single(t, "a")
	a.SetTargets(targets)
	testenv.Poll(t, 10*time.Second, "a owning every target", func() bool { return len(la.mine()) == len(targets) })
	for _, tg := range targets {
		a.Report(la.obs(tg.Name))
	}
	for _, tg := range targets {
		if !hasObservation(a, tg.Name, "a") {
			t.Fatalf("a did not store its own observation of %s", tg.Name)
		}
	}
	if n := a.queue.NumQueued(); n != 0 {
		t.Fatalf("an agent alone queued %d broadcasts", n)
	}
	cfg := fastConfig("b", "us")
	cfg.Join = []string{a.LocalAddr()}
	lb := &scripted{down: map[string]bool{}}
	b, err := New(cfg, lb, targets)
	if err != nil {
		t.Fatal(err)
	}
	lb.c = b
	t.Cleanup(b.Kill)
	testenv.Poll(t, 10*time.Second, "b learning a's observations", func() bool {
		for _, tg := range targets {
			if !hasObservation(b, tg.Name, "a") {
				return false
			}
		}
		return true
	})
}

// lineCounter counts log lines (thread-safe).
type lineCounter struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineCounter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(p))
	return len(p), nil
}

func (l *lineCounter) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

// TestGarbageOnTheGossipPortCannotFloodTheLog: thousands of packets that
// are not gossip are all counted, but reach the log as a handful of lines.
func TestGarbageOnTheGossipPortCannotFloodTheLog(t *testing.T) {
	var logs lineCounter
	cfg := fastConfig("flooded", "eu")
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg.Keys = [][]byte{[]byte("0123456789abcdef")}
	set := metrics.NewSet()
	cfg.Metrics = set
	c, err := New(cfg, &scripted{down: map[string]bool{}}, testTargets(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Kill()
	conn, err := net.Dial("udp", c.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const packets = 3000
	junk := []byte("not a gossip packet, not encrypted with the cluster's key")
	errs := set.GetOrCreateCounter("vantage_gossip_errors_total")
	for i := 0; i < packets; i++ {
		if _, err := conn.Write(junk); err != nil {
			t.Fatal(err)
		}
		if i%100 == 99 {
			time.Sleep(time.Millisecond) // let the reader keep up: a dropped datagram is neither logged nor counted
		}
	}
	testenv.Poll(t, 10*time.Second, "most garbage packets counted", func() bool { return errs.Get() >= packets/2 })
	if n := logs.count("memberlist"); n > 5 {
		t.Errorf("%d log lines for %d garbage packets (%d counted), want a handful", n, packets, errs.Get())
	}
}
