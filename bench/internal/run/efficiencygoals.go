package run

import "github.com/omninode/onex-fleet/bench/internal/report"

// The details issue #17 (protobuf internal topics, batch-first handlers,
// one consumer loop) is judged by: ratios within one run, so that a busy
// machine does not move them the way it moves the rates
// (docs/performance.md, "Issue #17 figures").
const (
	keyCPUPerHeartbeat     = "fleet_cpu_us_per_heartbeat"
	keyCPUPerRegistration  = "fleet_cpu_ms_per_registration"
	keyRecordsPerHeartbeat = "kafka_records_per_heartbeat"
	keyHeartbeatsOverPG    = "heartbeats_reflected_over_postgres_update_ceiling"
	keySaturation          = "saturation_registrations_per_s"
	keyP99AcceptedHalf     = "p99_accepted_ms_at_half_saturation"
	keyP99ActiveHalf       = "p99_active_ms_at_half_saturation"
	// The half-saturation run's nodes that never got there: a percentile
	// over the others says nothing of them.
	keyHalfNotAccepted = "half_saturation_not_accepted"
	keyHalfNotActive   = "half_saturation_not_active"
)

// efficiencyGoals is the goal table of the fleet's efficiency figures (issue #17).
func efficiencyGoals() report.GoalTable {
	return report.GoalTable{Title: "Issue #17 goals (protobuf internal topics, batch-first handlers, one consumer loop)", Goals: []report.Goal{
		{Key: keyCPUPerHeartbeat, Name: "Fleet CPU (four services) per heartbeat reflected", Unit: "µs", Op: "≤", Bound: 100},
		{Key: keyCPUPerRegistration, Name: "Fleet CPU (four services) per registration ACTIVE", Unit: "ms", Op: "≤", Bound: 4},
		{Key: keyRecordsPerHeartbeat, Name: "Kafka records written per heartbeat offered", Op: "≤", Bound: 3},
		{Key: keyHeartbeatsOverPG, Name: "Heartbeats reflected ÷ PostgreSQL update ceiling", Op: "≥", Bound: 0.5},
		{Key: keySaturation, Name: "Saturation: highest offered registration rate achieved at ≥ 90 %", Unit: "/s"},
		{Key: keyP99AcceptedHalf, Name: "p99 introspection → accepted at half the saturation rate", Unit: "ms", Op: "≤", Bound: 50,
			Unless: []string{keyHalfNotAccepted}},
		{Key: keyP99ActiveHalf, Name: "p99 introspection → ACTIVE at half the saturation rate", Unit: "ms", Op: "≤", Bound: 300,
			Unless: []string{keyHalfNotActive}},
	}}
}
