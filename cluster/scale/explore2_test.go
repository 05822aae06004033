package scale

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"
)

func TestExploreBigSim(t *testing.T) {
	per, _ := strconv.Atoi(os.Getenv("PER"))
	if per == 0 {
		t.Skip()
	}
	iv, _ := time.ParseDuration(os.Getenv("IV"))
	fc, _ := time.ParseDuration(os.Getenv("FC"))
	targets, _ := strconv.Atoi(os.Getenv("T"))
	regions, _ := strconv.Atoi(os.Getenv("R"))
	tm := Production()
	if os.Getenv("DEMO") != "" {
		tm = Demo()
	}
	if d, err := time.ParseDuration(os.Getenv("HEAPAT")); err == nil {
		go func() {
			time.Sleep(d)
			hf, _ := os.Create("/tmp/scalex/heap.out")
			runtime.GC()
			pprof.Lookup("heap").WriteTo(hf, 0)
			hf.Close()
			t.Log("heap profile written")
		}()
	}
	lf, _ := os.Create("/tmp/scalex/log.txt")
	defer lf.Close()
	log := slog.New(slog.NewTextHandler(lf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r, err := Simulate(context.Background(), Options{Logger: log, Regions: []string{"r1", "r2", "r3", "r4", "r5"}[:regions], PerRegion: per, Targets: targets, Timing: tm, TargetInterval: iv, TargetTimeout: 5 * time.Second}, 60*time.Second, fc)
	t.Logf("%+v", r)
	if err != nil {
		t.Fatal(err)
	}
}
