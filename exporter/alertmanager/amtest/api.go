package amtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// ActiveAlert is one alert as Alertmanager's GET /api/v2/alerts shows it.
// That endpoint lists only alerts whose endsAt is still ahead: a resolved
// alert is gone from it.
type ActiveAlert struct {
	Fingerprint  string            `json:"fingerprint"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	UpdatedAt    time.Time         `json:"updatedAt"`
	GeneratorURL string            `json:"generatorURL"`
	Status       struct {
		State       string   `json:"state"` // "active", "suppressed" or "unprocessed"
		SilencedBy  []string `json:"silencedBy"`
		InhibitedBy []string `json:"inhibitedBy"`
	} `json:"status"`
}

// Alerts returns the alerts Alertmanager holds (GET /api/v2/alerts), in
// fingerprint order.
func (s *Server) Alerts(ctx context.Context) ([]ActiveAlert, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/api/v2/alerts", nil)
	if err != nil {
		return nil, fmt.Errorf("amtest: %w", err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("amtest: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("amtest: GET %s: %w", req.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("amtest: GET %s: %s: %s", req.URL, resp.Status, body)
	}
	var out []ActiveAlert
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("amtest: GET %s: %w", req.URL, err)
	}
	return out, nil
}

// WaitAlerts polls Alerts until cond holds and returns what it saw last.
// A failing GET counts as "not yet" (Alertmanager may be restarting); the
// error when ctx ends names the last one.
func (s *Server) WaitAlerts(ctx context.Context, cond func([]ActiveAlert) bool) ([]ActiveAlert, error) {
	var last []ActiveAlert
	var lastErr error
	err := Poll(ctx, 50*time.Millisecond, func() bool {
		last, lastErr = s.Alerts(ctx)
		return lastErr == nil && cond(last)
	})
	if err != nil {
		return last, fmt.Errorf("amtest: waiting for alerts (last seen %d, last error %v): %w", len(last), lastErr, err)
	}
	return last, nil
}
