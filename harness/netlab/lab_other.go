//go:build !linux

package netlab

import (
	"context"
	"fmt"
)

// Unavailable says why the lab cannot run here: it needs Linux network
// namespaces.
func Unavailable() string { return "needs Linux network namespaces" }

// RemoveLeftovers has nothing to remove off Linux.
func RemoveLeftovers() ([]string, error) { return nil, nil }

// Run returns ErrUnavailable off Linux.
func Run(_ context.Context, opts Options) (*Report, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%w: %s", ErrUnavailable, Unavailable())
}
