package gen

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Dashboards returns every dashboard file by name, as JSON indented with
// two spaces and a final newline.
func Dashboards() (map[string][]byte, error) {
	out := map[string][]byte{}
	for name, d := range map[string]*Dashboard{
		"vantage-fleet.json":  fleet(),
		"vantage-target.json": target(),
		"vantage-slo.json":    slo(),
	} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetIndent("", "  ")
		// Queries hold <, > and &: keep them readable, not \u003c.
		enc.SetEscapeHTML(false)
		if err := enc.Encode(d); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = b.Bytes()
	}
	return out, nil
}
