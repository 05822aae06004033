// Package alertmanager delivers an agent's alerts to Prometheus Alertmanager
// through its API v2 (POST /api/v2/alerts), the way Prometheus' own notifier
// does, so that the agent leading a target can page the moment the fleet's
// quorum calls it down instead of waiting for a scrape and a rule
// evaluation.
//
// The caller decides which alerts exist and declares them with
// Notifier.Update; the Notifier only delivers them: every alert to each
// configured Alertmanager, new and changed alerts at once, all of them again
// at every resend tick, firing ones with an end four resend intervals
// ahead (so they end by themselves if every agent dies, and stay one alert
// when another agent takes over and re-sends them with the same start).
//
// Alertmanager 0.25 behaviours this relies on, each checked against the
// real binary by a test (here, or amtest's TestAlertmanagerMergeSemantics):
//   - An alert is identified by the fingerprint of its label set;
//     Fingerprint computes the same value.
//   - A firing alert re-posted with the same labels and start before its
//     stored end replaces the stored one without a new notification. Its
//     end only moves later: an earlier end in a later firing post is
//     ignored, and only a resolve (an end not after now) ends it early.
//   - A firing alert posted after the stored one has ended is a new alert
//     and pages again, even with the same start: a hand-over must complete
//     within the four resend intervals of the last end sent.
package alertmanager
