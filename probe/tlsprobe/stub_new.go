package tlsprobe

import (
	"context"
	"errors"

	"github.com/vantage-probe/vantage/probe"
)

// Prober probes one tls target. STUB: replaced by the real implementation.
type Prober struct{ o Options }

var _ probe.Prober = (*Prober)(nil)

// New validates o, compiles its regexes and prepares its TLS config once.
// Errors name the option at fault (e.g. `body_regex "(": ...`).
func New(o Options) (*Prober, error) { return nil, errors.New("not implemented") }

// Probe runs one probe.
func (p *Prober) Probe(ctx context.Context) probe.Result { return probe.Result{} }
