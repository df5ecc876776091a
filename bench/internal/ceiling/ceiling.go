// Package ceiling measures what the machine's servers can do without the
// fleet in between: raw Kafka produce-to-consume, raw batched PostgreSQL
// upserts, raw Consul service registrations. The fleet's figures are
// reported as ratios to these, measured in the same run on the same
// servers, so a reader can tell how close to the machine's limit the fleet
// runs however busy the machine was.
package ceiling

// Rate is a count over a time.
type Rate struct {
	Count   int64   `json:"count"`
	Seconds float64 `json:"seconds"`
}

// PerSecond is Count/Seconds (0 for an empty run).
func (r Rate) PerSecond() float64 {
	if r.Seconds <= 0 {
		return 0
	}
	return float64(r.Count) / r.Seconds
}
