package netlab

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// sample is what the lab reads from one agent's /metrics.
type sample struct {
	// Up are the targets this agent exports a vantage_target_up series
	// for: the targets it leads.
	Up map[string]float64
	// Probed are the targets it exports probe_success for: the targets it
	// probes (assigned, or within the grace after a reassignment).
	Probed map[string]bool
	// Incidents is vantage_incidents_total by target (targets it leads).
	Incidents map[string]float64
	// Alive is how many members it sees alive, over all regions.
	Alive    int
	Assigned int // vantage_targets_assigned
	Isolated bool
	ReloadOK float64 // vantage_config_last_reload_successful; -1 when absent
	ReloadTS float64 // vantage_config_last_reload_success_timestamp_seconds
}

// parseMetrics reads the families the lab needs from a Prometheus text
// exposition.
func parseMetrics(r io.Reader) (*sample, error) {
	s := &sample{Up: map[string]float64{}, Probed: map[string]bool{}, Incidents: map[string]float64{}, ReloadOK: -1}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	seen := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, labels, value, err := parseLine(line)
		if err != nil {
			return nil, err
		}
		seen = true
		switch name {
		case "vantage_target_up":
			s.Up[labels["target"]] = value
		case "probe_success":
			s.Probed[labels["target"]] = true
		case "vantage_incidents_total":
			s.Incidents[labels["target"]] = value
		case "vantage_cluster_members":
			if labels["state"] == "alive" {
				s.Alive += int(value)
			}
		case "vantage_targets_assigned":
			s.Assigned = int(value)
		case "vantage_region_isolated":
			s.Isolated = value == 1
		case "vantage_config_last_reload_successful":
			s.ReloadOK = value
		case "vantage_config_last_reload_success_timestamp_seconds":
			s.ReloadTS = value
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !seen {
		return nil, fmt.Errorf("no samples")
	}
	return s, nil
}

// parseLine splits `name{k="v",...} value [timestamp]`.
func parseLine(line string) (name string, labels map[string]string, value float64, err error) {
	i := strings.IndexAny(line, "{ ")
	if i <= 0 {
		return "", nil, 0, fmt.Errorf("metrics line %q: no name", line)
	}
	name, rest := line[:i], line[i:]
	labels = map[string]string{}
	if rest[0] == '{' {
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, ", ")
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.Index(rest, "=\"")
			if eq <= 0 {
				return "", nil, 0, fmt.Errorf("metrics line %q: bad labels", line)
			}
			k := rest[:eq]
			rest = rest[eq+2:]
			var v strings.Builder
			closed := false
			for j := 0; j < len(rest); j++ {
				c := rest[j]
				if c == '\\' && j+1 < len(rest) {
					j++
					switch rest[j] {
					case 'n':
						v.WriteByte('\n')
					default:
						v.WriteByte(rest[j])
					}
					continue
				}
				if c == '"' {
					rest, closed = rest[j+1:], true
					break
				}
				v.WriteByte(c)
			}
			if !closed {
				return "", nil, 0, fmt.Errorf("metrics line %q: unterminated label value", line)
			}
			labels[k] = v.String()
		}
	}
	f := strings.Fields(rest)
	if len(f) == 0 {
		return "", nil, 0, fmt.Errorf("metrics line %q: no value", line)
	}
	value, err = strconv.ParseFloat(f[0], 64)
	if err != nil {
		return "", nil, 0, fmt.Errorf("metrics line %q: %w", line, err)
	}
	return name, labels, value, nil
}
