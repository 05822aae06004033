//go:build race

package cluster

// raceEnabled: the race detector slows every agent of a test fleet several
// times over, so views that settle in milliseconds take seconds.
const raceEnabled = true
