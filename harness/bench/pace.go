package bench

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// pacer drives the bare client and blackbox_exporter the way the agent's
// scheduler drives its probers: probe k starts at start + k/rate, on
// target k mod n, each in its own goroutine, at most maxInFlight at once
// (a probe due while the bound is reached is skipped, as the agent skips).
type pacer struct {
	failures atomic.Int64
	skipped  atomic.Int64

	mu       sync.Mutex
	firstErr error
	proto    string
}

// run paces probes until ctx ends, then waits for those in flight.
func (p *pacer) run(ctx context.Context, rate float64, n, maxInFlight int, do func(ctx context.Context, i int) (proto string, err error)) {
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	start := time.Now()
	step := time.Duration(float64(time.Second) / rate)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for k := 0; ; {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		due := int(time.Since(start) / step)
		for ; k <= due; k++ {
			select {
			case sem <- struct{}{}:
			default:
				p.skipped.Add(1)
				continue
			}
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				proto, err := do(ctx, i)
				<-sem
				p.record(ctx, proto, err)
			}(k % n)
		}
		timer.Reset(time.Until(start.Add(time.Duration(k) * step)))
	}
}

func (p *pacer) record(ctx context.Context, proto string, err error) {
	if err != nil {
		if ctx.Err() != nil {
			return // cut short by the end of the run, not a failure
		}
		p.failures.Add(1)
		p.mu.Lock()
		if p.firstErr == nil {
			p.firstErr = err
		}
		p.mu.Unlock()
		return
	}
	if proto != "" {
		p.mu.Lock()
		p.proto = mergeProto(p.proto, proto)
		p.mu.Unlock()
	}
}

// mergeProto keeps one version when all agree, else lists them.
func mergeProto(have, got string) string {
	if have == "" {
		return got
	}
	if slices.Contains(strings.Split(have, ","), got) {
		return have
	}
	return have + "," + got
}

// counts returns failures and skips so far.
func (p *pacer) counts() (failures, skipped int64) { return p.failures.Load(), p.skipped.Load() }

// windowHooks count the pacer's failures and skips within the window into
// r, and those before it as warm-up.
func (p *pacer) windowHooks(r *Result) hooks {
	var f0, s0 int64
	return hooks{
		start: func() {
			f0, s0 = p.counts()
			r.WarmupFailures, r.WarmupSkipped = f0, s0
		},
		stop: func() {
			f1, s1 := p.counts()
			r.Failures, r.Skipped = f1-f0, s1-s0
		},
	}
}

func (p *pacer) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.firstErr
}

func (p *pacer) protocol() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.proto
}
