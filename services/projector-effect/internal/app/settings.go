package app

import (
	"errors"
	"fmt"
	"time"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/contract"
	"github.com/omninode/onex-fleet/pkg/grpcsec"
	"github.com/omninode/onex-fleet/pkg/retry"
	"github.com/omninode/onex-fleet/pkg/topicns"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/projector-effect/expect"
)

// Settings are the projector effect's own knobs; the shared ones are in
// config.Config.
type Settings struct {
	// DatabaseURL is OMNIBASE_INFRA_DB_URL (required), with POSTGRES_SSL_MODE
	// and POSTGRES_SSL_CA_FILE applied.
	DatabaseURL config.Secret
	// PoolMin, PoolMax size the pgx pool (POSTGRES_POOL_MIN_SIZE /
	// POSTGRES_POOL_MAX_SIZE, 2 / 10).
	PoolMin, PoolMax int
	// QueryTimeout bounds one batch transaction (QUERY_TIMEOUT_SECONDS, 30).
	QueryTimeout time.Duration
	// ConnectTimeout bounds connecting (POSTGRES_TIMEOUT_MS, 10 s).
	ConnectTimeout time.Duration
	// Migrate applies the migrations on start (ONEX_PROJECTOR_MIGRATE, true).
	// With false the service only waits until the schema is at head.
	Migrate bool

	// IntentsTopic and ResultsTopic default to the registry's topics; tests
	// (and parallel environments on one broker) override them.
	IntentsTopic, ResultsTopic string
	// DLQTopic overrides dead-letter routing (KAFKA_DEAD_LETTER_TOPIC).
	DLQTopic string
	// Namespace (KAFKA_TOPIC_NAMESPACE) is already applied to the topics
	// above; the DLQ routing applies it to the dead-letter topics.
	Namespace topicns.Namespace
	// AdminTopic is where the AdminService publishes operator commands
	// (ONEX_REGISTRATION_ADMIN_TOPIC, the registry's registration-admin
	// topic).
	AdminTopic string
	// Group is the consumer group of the intents topic.
	Group string
	// MaxBatch and Linger shape the batches (ONEX_PROJECTOR_MAX_BATCH, 500;
	// ONEX_PROJECTOR_BATCH_LINGER_MS, 5).
	MaxBatch int
	Linger   time.Duration

	// BreakerThreshold and BreakerReset configure the PostgreSQL breaker
	// (ONEX_POSTGRES_CB_THRESHOLD / ONEX_POSTGRES_CB_RESET_TIMEOUT, else
	// ONEX_CB_THRESHOLD / ONEX_CB_RESET_TIMEOUT, else the contract's
	// error_handling.circuit_breaker).
	BreakerThreshold int
	BreakerReset     time.Duration
	// Retry spaces the in-place retries of a failed batch: the contract's
	// error_handling.retry_policy, its Max replaced by
	// ONEX_POSTGRES_RETRY_MAX_DELAY (seconds) when set.
	Retry retry.Policy

	// GRPCAddr is where the registry API listens (ONEX_GRPC_ADDR, :8086).
	GRPCAddr string
	// GRPC secures the registry and admin API: TLS, client certificates
	// and who may call the AdminService (ONEX_GRPC_TLS_CERT_FILE and the
	// rest). The zero value is plaintext with admin calls refused.
	GRPC grpcsec.ServerSettings
	// WatchPoll is the change feed's fallback poll (ONEX_WATCH_POLL_MS, 1000).
	WatchPoll time.Duration

	// Source is the Kafka header "source" (the bus environment).
	Source string
	// DrainTimeout bounds shutdown (ONEX_DRAIN_TIMEOUT).
	DrainTimeout time.Duration
}

// LoadSettings reads the projector's environment on top of cfg and its
// (checked) contract, whose values are the defaults.
func LoadSettings(cfg *config.Config, c *contract.Contract) (Settings, error) {
	s := Settings{
		IntentsTopic: config.String("ONEX_POSTGRES_INTENTS_TOPIC", c.TopicFor(expect.HandlerIntents)),
		ResultsTopic: config.String("ONEX_EFFECT_RESULTS_TOPIC", topics.EffectResults),
		AdminTopic:   config.String("ONEX_REGISTRATION_ADMIN_TOPIC", topics.RegistrationAdmin),
		DLQTopic:     cfg.DeadLetterTopic,
		Namespace:    cfg.TopicNamespace,
		GRPCAddr:     cfg.GRPCAddr,
		Source:       cfg.Environment,
		DrainTimeout: cfg.DrainTimeout,
	}
	if s.GRPCAddr == "" {
		s.GRPCAddr = ":8086"
	}
	for _, t := range []*string{&s.IntentsTopic, &s.ResultsTopic, &s.AdminTopic} {
		if err := topics.Validate(*t); err != nil {
			return s, fmt.Errorf("config: topic %q: %w", *t, err)
		}
		*t = s.Namespace.Physical(*t)
	}
	dsn := cfg.DatabaseURL.Reveal()
	if dsn == "" {
		return s, errors.New("config: OMNIBASE_INFRA_DB_URL is required")
	}
	if err := config.ValidateDSN(dsn); err != nil {
		return s, err
	}
	dsn, err := config.ApplyPostgresSSL(dsn)
	if err != nil {
		return s, err
	}
	s.DatabaseURL = config.Secret(dsn)
	if s.GRPC, err = grpcsec.LoadServerSettings(); err != nil {
		return s, err
	}

	var errs []error
	integer := func(name string, def int) int {
		v, err := config.Int(name, def)
		if err != nil {
			errs = append(errs, err)
		}
		return v
	}
	dur := func(name string, unit, def time.Duration) time.Duration {
		d, err := config.Duration(name, unit, def)
		if err != nil {
			errs = append(errs, err)
		}
		return d
	}
	boolean := func(name string, def bool) bool {
		v, err := config.Bool(name, def)
		if err != nil {
			errs = append(errs, err)
		}
		return v
	}
	s.PoolMin = integer("POSTGRES_POOL_MIN_SIZE", 2)
	s.PoolMax = integer("POSTGRES_POOL_MAX_SIZE", 10)
	s.QueryTimeout = dur("QUERY_TIMEOUT_SECONDS", time.Second, 30*time.Second)
	s.ConnectTimeout = dur("POSTGRES_TIMEOUT_MS", time.Millisecond, 10*time.Second)
	s.Migrate = boolean("ONEX_PROJECTOR_MIGRATE", true)
	s.MaxBatch = integer("ONEX_PROJECTOR_MAX_BATCH", 500)
	s.Linger = dur("ONEX_PROJECTOR_BATCH_LINGER_MS", time.Millisecond, 5*time.Millisecond)
	cb := c.Breaker()
	s.BreakerThreshold = integer("ONEX_POSTGRES_CB_THRESHOLD", integer("ONEX_CB_THRESHOLD", cb.FailureThreshold))
	s.BreakerReset = dur("ONEX_POSTGRES_CB_RESET_TIMEOUT", time.Second, dur("ONEX_CB_RESET_TIMEOUT", time.Second, cb.ResetTimeout()))
	s.Retry = c.Retry()
	s.Retry.Max = dur("ONEX_POSTGRES_RETRY_MAX_DELAY", time.Second, s.Retry.Max)
	s.WatchPoll = dur("ONEX_WATCH_POLL_MS", time.Millisecond, time.Second)
	if len(errs) > 0 {
		return s, errs[0]
	}
	switch {
	case s.PoolMin < 0 || s.PoolMax < 1 || s.PoolMin > s.PoolMax:
		return s, errors.New("config: need 0 <= POSTGRES_POOL_MIN_SIZE <= POSTGRES_POOL_MAX_SIZE and POSTGRES_POOL_MAX_SIZE >= 1")
	case s.QueryTimeout <= 0 || s.ConnectTimeout <= 0:
		return s, errors.New("config: QUERY_TIMEOUT_SECONDS and POSTGRES_TIMEOUT_MS must be > 0")
	case s.MaxBatch < 1 || s.MaxBatch > 10000:
		return s, errors.New("config: ONEX_PROJECTOR_MAX_BATCH must be within 1..10000")
	case s.Linger < 0:
		return s, errors.New("config: ONEX_PROJECTOR_BATCH_LINGER_MS must be >= 0")
	case s.BreakerThreshold < 1:
		return s, errors.New("config: ONEX_POSTGRES_CB_THRESHOLD must be >= 1")
	case s.BreakerReset <= 0:
		return s, errors.New("config: ONEX_POSTGRES_CB_RESET_TIMEOUT must be > 0")
	case s.Retry.Max < time.Second || s.Retry.Max < s.Retry.Initial:
		return s, errors.New("config: ONEX_POSTGRES_RETRY_MAX_DELAY must be >= 1 second and >= the contract's initial_delay_ms")
	case s.WatchPoll < 50*time.Millisecond:
		return s, errors.New("config: ONEX_WATCH_POLL_MS must be >= 50")
	}
	group := config.String("ONEX_PROJECTOR_EFFECT_GROUP", "")
	if group == "" {
		g, err := bus.GroupID(cfg.Environment, "onex-fleet", "projector-effect", "consume", "1.0.0")
		if err != nil {
			return s, err
		}
		group = g
	}
	s.Group = group
	return s, nil
}
