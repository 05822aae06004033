// Package configs holds Vantage's example configuration files, embedded so
// the binary can run its demo and print the example without a checkout.
package configs

import "embed"

// FS holds every *.toml file of this directory: example.toml (the
// commented reference example) and demo.toml (the config `vantage demo`
// runs, with placeholder addresses the demo replaces). It is read-only data.
//
//go:embed *.toml
var FS embed.FS
