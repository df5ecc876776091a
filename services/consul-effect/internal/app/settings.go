package app

import (
	"fmt"
	"time"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/contract"
	"github.com/omninode/onex-fleet/pkg/retry"
	"github.com/omninode/onex-fleet/pkg/topicns"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/consul-effect/expect"
	"github.com/omninode/onex-fleet/services/consul-effect/internal/backend"
	"github.com/omninode/onex-fleet/services/consul-effect/internal/effect"
)

// Settings are the consul effect's own knobs; the shared ones are in
// config.Config.
type Settings struct {
	// Env is the environment stamped on services (onex-env meta) and used in
	// the consumer group id.
	Env string
	// IntentsTopic, ResultsTopic, SnapshotsTopic default to the registry's
	// topics; tests (and parallel environments on one broker) override them.
	IntentsTopic, ResultsTopic, SnapshotsTopic string
	// DLQTopic overrides dead-letter routing (KAFKA_DEAD_LETTER_TOPIC).
	DLQTopic string
	// Namespace (KAFKA_TOPIC_NAMESPACE) is already applied to the topics
	// above; the DLQ routing applies it to the dead-letter topics.
	Namespace topicns.Namespace
	// Group is the consumer group of the intents topic.
	Group string
	// ReconcileInterval is the anti-entropy period
	// (ONEX_CONSUL_RECONCILE_INTERVAL seconds, default 30).
	ReconcileInterval time.Duration
	// OrphanGrace protects a service written from an intent the snapshot
	// view has not seen yet (ONEX_CONSUL_ORPHAN_GRACE seconds, default
	// twice the interval, at least 30 s).
	OrphanGrace time.Duration
	// CatchUpIdle is how long a snapshot partition must stay quiet before
	// the reader checks whether what remains up to its end offset is only
	// commit markers (pkg/compacted: they are never delivered).
	CatchUpIdle time.Duration
	// Mode is how nodes are registered in Consul
	// (ONEX_CONSUL_REGISTRATION_MODE: catalog, the default, or agent).
	Mode effect.Mode
	// Consul configures the client and breaker; the breaker numbers default
	// to the contract's error_handling.circuit_breaker.
	Consul backend.Settings
	// Retry spaces the in-place retries of an intent record whose handling
	// failed (its result was not published), before it is dead-lettered: the
	// contract's error_handling.retry_policy.
	Retry retry.Policy
	// Source is the Kafka header "source" (the bus environment).
	Source string
	// DrainTimeout bounds shutdown (ONEX_DRAIN_TIMEOUT).
	DrainTimeout time.Duration
}

// LoadSettings reads the consul effect's environment on top of cfg and its
// (checked) contract, whose values are the defaults.
func LoadSettings(cfg *config.Config, c *contract.Contract) (Settings, error) {
	s := Settings{
		Env:            cfg.Environment,
		IntentsTopic:   config.String("ONEX_CONSUL_INTENTS_TOPIC", c.TopicFor(expect.HandlerIntents)),
		ResultsTopic:   config.String("ONEX_EFFECT_RESULTS_TOPIC", topics.EffectResults),
		SnapshotsTopic: config.String("ONEX_REGISTRATION_SNAPSHOTS_TOPIC", c.TopicFor(expect.HandlerSnapshots)),
		Retry:          c.Retry(),
		DLQTopic:       cfg.DeadLetterTopic,
		Namespace:      cfg.TopicNamespace,
		Consul:         backend.DefaultSettings(),
		Source:         cfg.Environment,
		DrainTimeout:   cfg.DrainTimeout,
		CatchUpIdle:    500 * time.Millisecond,
	}
	for _, t := range []*string{&s.IntentsTopic, &s.ResultsTopic, &s.SnapshotsTopic} {
		if err := topics.Validate(*t); err != nil {
			return s, fmt.Errorf("config: topic %q: %w", *t, err)
		}
		*t = s.Namespace.Physical(*t)
	}
	var errs []error
	dur := func(name string, def time.Duration) time.Duration {
		d, err := config.Duration(name, time.Second, def)
		if err != nil {
			errs = append(errs, err)
		}
		return d
	}
	integer := func(name string, def int) int {
		v, err := config.Int(name, def)
		if err != nil {
			errs = append(errs, err)
		}
		return v
	}
	boolean := func(name string, def bool) bool {
		v, err := config.Bool(name, def)
		if err != nil {
			errs = append(errs, err)
		}
		return v
	}
	mode, err := effect.ParseMode(config.String("ONEX_CONSUL_REGISTRATION_MODE", ""))
	if err != nil {
		errs = append(errs, fmt.Errorf("config: ONEX_CONSUL_REGISTRATION_MODE: %w", err))
	}
	s.Mode = mode
	s.ReconcileInterval = dur("ONEX_CONSUL_RECONCILE_INTERVAL", 30*time.Second)
	s.OrphanGrace = dur("ONEX_CONSUL_ORPHAN_GRACE", max(2*s.ReconcileInterval, 30*time.Second))
	s.Consul.Addr = cfg.ConsulAddr
	s.Consul.Token = cfg.ConsulToken
	s.Consul.SSL = boolean("CONSUL_HTTP_SSL", false)
	s.Consul.InsecureSkipVerify = !boolean("CONSUL_HTTP_SSL_VERIFY", true)
	s.Consul.CACert = config.String("CONSUL_CACERT", "")
	s.Consul.ClientCert = config.String("CONSUL_CLIENT_CERT", "")
	s.Consul.ClientKey = config.String("CONSUL_CLIENT_KEY", "")
	s.Consul.TLSServerName = config.String("CONSUL_TLS_SERVER_NAME", "")
	s.Consul.Timeout = dur("ONEX_CONSUL_TIMEOUT_SECONDS", 5*time.Second)
	s.Consul.Parallel = integer("ONEX_CONSUL_PARALLELISM", effect.DefaultParallel)
	// The spec's breaker overrides (ONEX_CB_*) apply unless the consul
	// effect is given its own.
	cb := c.Breaker()
	threshold := integer("ONEX_CONSUL_CB_THRESHOLD", integer("ONEX_CB_THRESHOLD", cb.FailureThreshold))
	s.Consul.BreakerReset = dur("ONEX_CONSUL_CB_RESET_TIMEOUT", dur("ONEX_CB_RESET_TIMEOUT", cb.ResetTimeout()))
	if len(errs) > 0 {
		return s, errs[0]
	}
	switch {
	case s.ReconcileInterval <= 0:
		return s, fmt.Errorf("config: ONEX_CONSUL_RECONCILE_INTERVAL must be > 0")
	case threshold < 1:
		return s, fmt.Errorf("config: ONEX_CONSUL_CB_THRESHOLD must be >= 1")
	case s.Consul.BreakerReset <= 0:
		return s, fmt.Errorf("config: ONEX_CONSUL_CB_RESET_TIMEOUT must be > 0")
	case s.Consul.Parallel < 1 || s.Consul.Parallel > 256:
		return s, fmt.Errorf("config: ONEX_CONSUL_PARALLELISM must be 1..256")
	case s.Consul.Timeout <= 0:
		return s, fmt.Errorf("config: ONEX_CONSUL_TIMEOUT_SECONDS must be > 0")
	case (s.Consul.ClientCert == "") != (s.Consul.ClientKey == ""):
		return s, fmt.Errorf("config: CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY must be set together")
	}
	// The TLS files are read and parsed now, so a missing or wrong file
	// stops the start (exit 2) instead of failing every call.
	if err := s.Consul.CheckTLS(); err != nil {
		return s, err
	}
	s.Consul.BreakerThreshold = uint32(threshold)
	group := config.String("ONEX_CONSUL_EFFECT_GROUP", "")
	if group == "" {
		g, err := bus.GroupID(cfg.Environment, "onex-fleet", "consul-effect", "consume", "1.0.0")
		if err != nil {
			return s, err
		}
		group = g
	}
	s.Group = group
	return s, nil
}
