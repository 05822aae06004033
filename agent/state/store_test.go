package state

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/cluster"
)

func incident(target string, start time.Time, dur time.Duration) cluster.Incident {
	in := cluster.Incident{
		ID: target + "@" + strconv.FormatInt(start.UnixMilli(), 10), Target: target,
		StartedAt: start, QuorumAt: start.Add(time.Second), DetectedAt: start.Add(time.Second),
		Regions: []string{"eu-west", "us-east"}, QuorumRegions: []string{"eu-west", "us-east"},
		Leader: "eu-west-1", Reason: "timeout",
	}
	if dur > 0 {
		in.ResolvedAt = start.Add(dur)
	}
	return in
}

func TestStoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 10, 30, 0, 0, time.UTC)
	open := incident("api", now.Add(-time.Minute), 0)
	done := incident("db", now.Add(-2*time.Hour), 5*time.Minute)
	b := &Batch{
		Incidents: []cluster.Incident{open, done},
		Targets:   map[string]TargetMeta{"api": {FirstSeen: now.Add(-48 * time.Hour), Objective: 0.999}},
		SLO: []Sample{
			{Target: "api", Bucket: BucketOf(now), Counts: Counts{Up: 20 * time.Minute, Down: time.Minute}},
			{Target: "api", Bucket: BucketOf(now), Counts: Counts{Up: 9 * time.Minute}},
			{Target: "api", Bucket: BucketOf(now.Add(-time.Hour)), Counts: Counts{Unknown: time.Hour}},
		},
		History: map[string][]byte{"api": {1, 2, 3}},
	}
	if err := s.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = OpenReadOnly(dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	snap, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Incidents) != 2 || snap.Incidents[0].ID != done.ID || snap.Incidents[1].ID != open.ID {
		t.Fatalf("incidents %+v", snap.Incidents)
	}
	if got := snap.Incidents[1]; !got.Open() || !got.StartedAt.Equal(open.StartedAt) || got.Leader != "eu-west-1" || len(got.QuorumRegions) != 2 {
		t.Fatalf("open incident came back as %+v", got)
	}
	if m := snap.Targets["api"]; !m.FirstSeen.Equal(now.Add(-48*time.Hour)) || m.Objective != 0.999 {
		t.Fatalf("target meta %+v", m)
	}
	if string(snap.History["api"]) != "\x01\x02\x03" {
		t.Fatalf("history %v", snap.History["api"])
	}
	c, err := s.SLO(now.Add(-2*time.Hour), now)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Counts{Up: 29 * time.Minute, Down: time.Minute, Unknown: time.Hour}); c["api"] != want {
		t.Fatalf("slo %+v, want %+v", c["api"], want)
	}
	if in, ok, err := s.Incident(done.ID); err != nil || !ok || !in.ResolvedAt.Equal(done.ResolvedAt) {
		t.Fatalf("Incident(%s): %+v %v %v", done.ID, in, ok, err)
	}
	if ins, _ := s.Incidents(now.Add(-30*time.Minute), now); len(ins) != 1 || ins[0].ID != open.ID {
		t.Fatalf("incidents of the last half hour: %+v", ins)
	}
}

// A running agent holds the lock: a reader gets a clear error, not a hang.
func TestOpenLockedByWriter(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = OpenReadOnly(dir, 100*time.Millisecond)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("read-only open of a held store: %v, want ErrLocked", err)
	}
	if _, err := Open(dir, 100*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Fatalf("second writer: %v, want ErrLocked", err)
	}
}

// The crash child: writes one batch per transaction, numbered, and says
// each commit on stdout, until killed.
func TestMain(m *testing.M) {
	if dir := os.Getenv("VANTAGE_STATE_CRASH_CHILD"); dir != "" {
		crashChild(dir)
		return
	}
	os.Exit(m.Run())
}

func crashChild(dir string) {
	s, err := Open(dir, 5*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; ; i++ {
		b := &Batch{History: map[string][]byte{}}
		// A batch of 20 incidents and a history entry: big enough that
		// a kill often lands inside a commit.
		for j := range 20 {
			b.Incidents = append(b.Incidents, incident(fmt.Sprintf("t%d", j), start.Add(time.Duration(i)*time.Minute), time.Second))
		}
		b.History["batch"] = []byte(strconv.Itoa(i))
		if err := s.Write(b); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(4)
		}
		fmt.Println(i)
	}
}

// TestCrashKeepsCommittedBatches kills a writer with SIGKILL mid-loop,
// several times over the same file: the file opens every time and holds
// every batch the writer said it committed, each batch whole.
func TestCrashKeepsCommittedBatches(t *testing.T) {
	dir := t.TempDir()
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "VANTAGE_STATE_CRASH_CHILD="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Read commits until at least 50 are reported, then kill at once.
		last := -1
		buf := make([]byte, 0, 4096)
		tmp := make([]byte, 512)
		for last < 50 {
			n, err := out.Read(tmp)
			if err != nil {
				t.Fatalf("round %d: child stopped: %v", round, err)
			}
			buf = append(buf, tmp[:n]...)
			for {
				i := indexByte(buf, '\n')
				if i < 0 {
					break
				}
				if v, err := strconv.Atoi(string(buf[:i])); err == nil {
					last = v
				}
				buf = buf[i+1:]
			}
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()

		s, err := Open(dir, time.Second)
		if err != nil {
			t.Fatalf("round %d: the file does not open after SIGKILL: %v", round, err)
		}
		snap, err := s.Load()
		if err != nil {
			t.Fatalf("round %d: load: %v", round, err)
		}
		h, err := strconv.Atoi(string(snap.History["batch"]))
		if err != nil || h < last {
			t.Fatalf("round %d: last batch in the file %q, child reported %d committed", round, snap.History["batch"], last)
		}
		// Every batch 0..h whole: 20 incidents each (IDs repeat across
		// rounds, so count distinct minutes).
		byMinute := map[int64]int{}
		for _, in := range snap.Incidents {
			byMinute[in.StartedAt.Unix()]++
		}
		for i := 0; i <= h; i++ {
			if n := byMinute[time.Date(2026, 1, 1, 0, i, 0, 0, time.UTC).Unix()]; n != 20 {
				t.Fatalf("round %d: batch %d holds %d incidents, want 20", round, i, n)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// sizeBound is what a year of incidents at 100 a day may take on disk,
// with a year's retention: 36,500 records of about 400 bytes of JSON.
const sizeBound = 40 << 20

// TestYearOfIncidentsIsBounded writes a year of incidents, 100 a day, one
// week a transaction, pruning at a retention of 28 days plus a margin as the
// agent does; then the same with a year's retention. Both files stay
// within their bound.
func TestYearOfIncidentsIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a year of incidents")
	}
	for _, tc := range []struct {
		retention time.Duration
		bound     int64
	}{
		{35 * 24 * time.Hour, 8 << 20},
		{366 * 24 * time.Hour, sizeBound},
	} {
		dir := t.TempDir()
		s, err := Open(dir, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for week := range 53 {
			b := &Batch{}
			for day := week * 7; day < min(week*7+7, 365); day++ {
				for i := range 100 {
					at := start.Add(time.Duration(day)*24*time.Hour + time.Duration(i)*14*time.Minute)
					b.Incidents = append(b.Incidents, incident(fmt.Sprintf("target-%03d", i), at, 3*time.Minute))
				}
			}
			if err := s.Write(b); err != nil {
				t.Fatal(err)
			}
			now := start.Add(time.Duration(min(week*7+7, 365)) * 24 * time.Hour)
			if _, err := s.Prune(now.Add(-tc.retention), nil); err != nil {
				t.Fatal(err)
			}
		}
		ins, err := s.Incidents(time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
		fi, err := os.Stat(filepath.Join(dir, FileName))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("retention %v: %d incidents kept, file %d bytes (bound %d)", tc.retention, len(ins), fi.Size(), tc.bound)
		if fi.Size() > tc.bound {
			t.Errorf("retention %v: file %d bytes, over the bound %d", tc.retention, fi.Size(), tc.bound)
		}
		if wantMax := int(tc.retention/(24*time.Hour)+7) * 100; len(ins) > wantMax {
			t.Errorf("retention %v: %d incidents kept, at most %d expected", tc.retention, len(ins), wantMax)
		}
	}
}

// Prune deletes resolved incidents and SLO buckets older than the cutoff,
// target by target, keeps open incidents and recent buckets, and forgets
// a removed target once it has no bucket left.
func TestPrune(t *testing.T) {
	s, err := Open(t.TempDir(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	old, recent := now.Add(-40*24*time.Hour), now.Add(-time.Hour)
	b := &Batch{
		Incidents: []cluster.Incident{incident("a", old, time.Minute), incident("b", old, 0), incident("c", recent, time.Minute)},
		Targets:   map[string]TargetMeta{"a": {FirstSeen: old}, "gone": {FirstSeen: old}, "kept": {FirstSeen: old}},
		History:   map[string][]byte{"gone": {1}},
	}
	for _, name := range []string{"a", "gone", "z"} {
		for _, at := range []time.Time{old, old.Add(time.Hour), recent} {
			if name == "gone" && at == recent {
				continue
			}
			b.SLO = append(b.SLO, Sample{Target: name, Bucket: BucketOf(at), Counts: Counts{Up: time.Minute}})
		}
	}
	if err := s.Write(b); err != nil {
		t.Fatal(err)
	}
	n, err := s.Prune(now.Add(-35*24*time.Hour), func(name string) bool { return name == "kept" })
	if err != nil {
		t.Fatal(err)
	}
	ins, _ := s.Incidents(time.Time{}, time.Time{})
	if len(ins) != 2 || ins[0].Target != "b" || ins[1].Target != "c" {
		t.Errorf("incidents after pruning: %+v, want b (open) and c (recent)", ins)
	}
	slo, _ := s.SLO(old.Add(-time.Hour), now)
	if len(slo) != 2 || slo["a"].Up != time.Minute || slo["z"].Up != time.Minute {
		t.Errorf("buckets after pruning: %+v, want a's and z's recent one", slo)
	}
	targets, _ := s.Targets()
	snap, _ := s.Load()
	if _, ok := targets["gone"]; ok || len(snap.History) != 0 || len(targets) != 2 {
		t.Errorf("targets after pruning: %v (history %v), want a (a bucket left) and kept (configured)", targets, snap.History)
	}
	if want := 1 + 6 + 1; n != want {
		t.Errorf("pruned %d records, want %d", n, want)
	}
}
