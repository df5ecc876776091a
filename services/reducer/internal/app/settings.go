package app

import (
	"fmt"
	"time"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/contract"
	"github.com/omninode/onex-fleet/pkg/retry"
	"github.com/omninode/onex-fleet/pkg/topicns"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/reducer/decide"
	"github.com/omninode/onex-fleet/services/reducer/expect"
)

// Settings are the reducer's own knobs.
type Settings struct {
	// Params default to the contract's parameters; the environment
	// overrides each (ONEX_ACK_TIMEOUT_SECONDS, ...).
	Params      decide.Params
	BatchSize   int           // ONEX_REDUCER_BATCH_SIZE (500)
	BatchLinger time.Duration // ONEX_REDUCER_BATCH_LINGER_MS (5)
	Group       string
	// Retry spaces the retries of a failed transaction and of a failed
	// state restore (the contract's error_handling.retry_policy). Neither is
	// ever given up (that would lose inputs): past MaxAttempts the delay
	// stays at its last value.
	Retry retry.Policy
	// SnapshotsTopic is where the reducer keeps and restores its state
	// (ONEX_REGISTRATION_SNAPSHOTS_TOPIC, the variable the consul effect
	// reads too; default the platform topic), with the namespace.
	SnapshotsTopic string
	// LivenessTopic holds the liveness checkpoint, restored with the
	// snapshots (ONEX_REGISTRATION_LIVENESS_TOPIC, default the platform
	// topic), with the namespace.
	LivenessTopic string
	// CheckpointInterval is the least time between two liveness
	// checkpoints of a partition (ONEX_LIVENESS_CHECKPOINT_MS, 1000): the
	// heartbeats since the last one are replayed from the input on
	// restore, so it trades checkpoint records against replay length.
	CheckpointInterval time.Duration
	// Namespace (KAFKA_TOPIC_NAMESPACE) is put in front of every topic the
	// reducer reads or writes (Topic); SnapshotsTopic and LivenessTopic
	// already carry it.
	Namespace topicns.Namespace
}

// Topic is the name on the broker of a registry topic: canonical names stay
// in the reducer's code and records, the namespace goes on the wire only.
func (s Settings) Topic(canonical string) string { return s.Namespace.Physical(canonical) }

// ContractPath is the reducer's contract file: ONEX_REDUCER_CONTRACT, else
// $ONEX_CONTRACTS_DIR/reducer/contract.yaml.
func ContractPath(cfg *config.Config) string {
	return config.String("ONEX_REDUCER_CONTRACT", contract.Path(cfg.ContractsDir, expect.Service))
}

// LoadSettings reads the reducer's environment on top of its (checked)
// contract.
func LoadSettings(cfg *config.Config, c *contract.Contract) (Settings, error) {
	s := Settings{Params: paramsFrom(c), Retry: c.Retry()}
	var err error
	get := func(name string, unit, def time.Duration) time.Duration {
		if err != nil {
			return def
		}
		var d time.Duration
		d, err = config.Duration(name, unit, def)
		return d
	}
	s.Params.AckTimeout = get("ONEX_ACK_TIMEOUT_SECONDS", time.Second, s.Params.AckTimeout)
	s.Params.LivenessInterval = get("ONEX_LIVENESS_INTERVAL_SECONDS", time.Second, s.Params.LivenessInterval)
	s.Params.LivenessWindow = get("ONEX_LIVENESS_WINDOW_SECONDS", time.Second, s.Params.LivenessWindow)
	s.Params.AcceptedResendInitial = get("ONEX_ACCEPTED_RESEND_INITIAL_SECONDS", time.Second, s.Params.AcceptedResendInitial)
	s.Params.AcceptedResendMax = get("ONEX_ACCEPTED_RESEND_MAX_SECONDS", time.Second, s.Params.AcceptedResendMax)
	s.BatchLinger = get("ONEX_REDUCER_BATCH_LINGER_MS", time.Millisecond, 5*time.Millisecond)
	s.CheckpointInterval = get("ONEX_LIVENESS_CHECKPOINT_MS", time.Millisecond, time.Second)
	if err != nil {
		return s, err
	}
	if s.BatchSize, err = config.Int("ONEX_REDUCER_BATCH_SIZE", 500); err != nil {
		return s, err
	}
	if s.Params.MassExpiryMinActive, err = config.Int("ONEX_MASS_EXPIRY_MIN_ACTIVE", s.Params.MassExpiryMinActive); err != nil {
		return s, err
	}
	// A share is a fraction, read as such (a Duration in nanoseconds would
	// truncate 0.5 to 0).
	if s.Params.MassExpiryShare, err = config.Float("ONEX_MASS_EXPIRY_SHARE", s.Params.MassExpiryShare); err != nil {
		return s, err
	}
	if s.Params.MassExpiryShare <= 0 || s.Params.MassExpiryShare >= 1 {
		return s, fmt.Errorf("config: ONEX_MASS_EXPIRY_SHARE must be within (0,1)")
	}
	if s.Params.AcceptedResendInitial > 0 && s.Params.AcceptedResendMax < s.Params.AcceptedResendInitial {
		return s, fmt.Errorf("config: the accepted resend maximum (ONEX_ACCEPTED_RESEND_MAX_SECONDS, %s) must be at least its initial interval (ONEX_ACCEPTED_RESEND_INITIAL_SECONDS, %s)",
			s.Params.AcceptedResendMax, s.Params.AcceptedResendInitial)
	}
	if s.CheckpointInterval <= 0 {
		return s, fmt.Errorf("config: ONEX_LIVENESS_CHECKPOINT_MS must be > 0")
	}
	if s.BatchSize < 1 {
		return s, fmt.Errorf("config: ONEX_REDUCER_BATCH_SIZE must be >= 1")
	}
	s.Group = config.String("ONEX_REDUCER_GROUP", cfg.Environment+".onex-fleet.reducer.consume.1.0.0")
	s.Namespace = cfg.TopicNamespace
	s.SnapshotsTopic = s.Topic(config.String("ONEX_REGISTRATION_SNAPSHOTS_TOPIC", topics.RegistrationSnapshots))
	s.LivenessTopic = s.Topic(config.String("ONEX_REGISTRATION_LIVENESS_TOPIC", topics.RegistrationLiveness))
	return s, nil
}

// paramsFrom reads the decision parameters of a checked contract (Load
// guarantees every one is present and in range).
func paramsFrom(c *contract.Contract) decide.Params {
	p := c.Parameters
	seconds := func(name string) time.Duration { return time.Duration(p[name] * float64(time.Second)) }
	return decide.Params{
		AckTimeout:          seconds(expect.ParamAckTimeout),
		LivenessInterval:    seconds(expect.ParamLivenessInterval),
		LivenessWindow:      seconds(expect.ParamLivenessWindow),
		MassExpiryShare:     p[expect.ParamMassExpiryShare],
		MassExpiryMinActive: int(p[expect.ParamMassExpiryMinActive]),

		AcceptedResendInitial: seconds(expect.ParamAcceptedResendInitial),
		AcceptedResendMax:     seconds(expect.ParamAcceptedResendMax),
	}
}
