package app

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/contract"
	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/retry"
	"github.com/omninode/onex-fleet/pkg/topicns"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/expect"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/ingress"
)

// Settings are the orchestrator's own knobs; the shared ones are in
// config.Config.
type Settings struct {
	// ContractPath is the contract file (ONEX_ORCHESTRATOR_CONTRACT, default
	// $ONEX_CONTRACTS_DIR/registration-orchestrator/contract.yaml).
	ContractPath string
	// ContractsDir holds every service's contract; the topic catalog counts
	// publishers and subscribers from them (ONEX_CONTRACTS_DIR).
	ContractsDir string
	// Rename maps a registry topic name to the topic actually used. Empty in
	// production; tests (and parallel environments on one broker) rename
	// every topic so they do not share records.
	Rename map[string]string
	// DLQTopic overrides dead-letter routing (KAFKA_DEAD_LETTER_TOPIC).
	DLQTopic string
	// Namespace (KAFKA_TOPIC_NAMESPACE) is put in front of every topic the
	// orchestrator produces to or consumes from, renamed ones included;
	// payloads and the ingress series keep the registry names.
	Namespace topicns.Namespace
	// Env is the bus environment: consumer group ids and the header source.
	Env string
	// Limits bound what ingress accepts (ONEX_INGRESS_MAX_MESSAGE_BYTES,
	// ONEX_INGRESS_MAX_FUTURE_SKEW_SECONDS, ONEX_INGRESS_MAX_AGE_SECONDS).
	Limits ingress.Limits
	// TickInterval (ONEX_RUNTIME_SCHEDULER_TICK_INTERVAL_MS, 100..60000,
	// default 1000) and SchedulerID (ONEX_RUNTIME_SCHEDULER_ID, default
	// runtime-scheduler-default) shape the runtime tick.
	TickInterval time.Duration
	SchedulerID  string
	// CatalogRefresh is the topic catalog's recompute period
	// (ONEX_TOPIC_CATALOG_REFRESH_SECONDS, default 30).
	CatalogRefresh time.Duration
	// CatalogSpecs is the registry the catalog lists; nil means
	// topics.Platform().
	CatalogSpecs []topics.Spec
	// NodeTopicsWait bounds how long the first catalog waits for the
	// node-topics view to read its table to the end (0:
	// DefaultNodeTopicsWait).
	NodeTopicsWait time.Duration
	// RetryPolicy, when set, replaces the contract's retry policy (tests).
	RetryPolicy *retry.Policy
	// StepTimeout, when set, replaces the contract's
	// result_aggregation.step_timeout_ms (ONEX_ORCHESTRATOR_STEP_TIMEOUT_MS,
	// 1..300000).
	StepTimeout time.Duration
	// RequestIntrospection publishes the registry's re-introspection request
	// at start (ONEX_REQUEST_INTROSPECTION_ON_START, default true).
	RequestIntrospection bool
	// RestoreTimeout is the longest wait for the next record while reading
	// the aggregation state on an assignment
	// (ONEX_AGGREGATION_RESTORE_TIMEOUT_SECONDS, default 30).
	RestoreTimeout time.Duration
	// DrainTimeout bounds shutdown (ONEX_DRAIN_TIMEOUT).
	DrainTimeout time.Duration
	// FromOldest: where the internal consumer groups (workflow, scheduler)
	// start without a committed offset (ONEX_CONSUMER_START). The node-facing
	// groups follow IngressFromOldest.
	FromOldest bool
	// IngressFromOldest makes the node-facing groups (ingress, catalog
	// queries) start at the oldest record when they have no committed offset
	// (ONEX_INGRESS_START=oldest); the default, newest, follows spec 3.4.
	IngressFromOldest bool
}

// DefaultNodeTopicsWait is the first catalog's longest wait for the
// node-topics view: reading a table of a few thousand nodes takes well under
// a second; past the bound the catalog is served with the
// partial_node_data warning until the view has caught up.
const DefaultNodeTopicsWait = 10 * time.Second

func (s Settings) nodeTopicsWait() time.Duration {
	if s.NodeTopicsWait > 0 {
		return s.NodeTopicsWait
	}
	return DefaultNodeTopicsWait
}

// topic returns the topic used for a registry name.
func (s Settings) topic(name string) string {
	if t, ok := s.Rename[name]; ok && t != "" {
		return s.Namespace.Physical(t)
	}
	return s.Namespace.Physical(name)
}

// dlqRouter is the dead-letter routing on the orchestrator's namespace.
func (s Settings) dlqRouter() dlq.Router {
	return dlq.Router{Override: s.DLQTopic, Namespace: s.Namespace}
}

// DefaultLivenessWindow is the reducer contract's liveness_window_seconds,
// for an orchestrator whose contracts directory has no reducer contract.
const DefaultLivenessWindow = 90 * time.Second

// reducerLivenessWindow is the reducer contract's parameter.
const reducerLivenessWindow = "liveness_window_seconds"

// livenessWindow is the age past which ingress skips a heartbeat: the
// reducer's liveness window, read as the reducer reads it, so the two
// agree: ONEX_LIVENESS_WINDOW_SECONDS, else the parameter of the reducer's
// contract in contractsDir, else DefaultLivenessWindow when there is no
// such file. A contract that is there but unreadable is an error.
func livenessWindow(contractsDir string) (time.Duration, error) {
	def := DefaultLivenessWindow
	path := contract.Path(contractsDir, "reducer")
	if _, err := os.Stat(path); err == nil {
		c, err := contract.ReadFile(path)
		if err != nil {
			return 0, fmt.Errorf("config: the reducer contract holds the liveness window: %w", err)
		}
		if v, ok := c.Parameters[reducerLivenessWindow]; ok {
			def = time.Duration(v * float64(time.Second))
		}
	}
	w, err := config.Duration("ONEX_LIVENESS_WINDOW_SECONDS", time.Second, def)
	if err != nil {
		return 0, err
	}
	if w <= 0 {
		return 0, fmt.Errorf("config: ONEX_LIVENESS_WINDOW_SECONDS must be > 0")
	}
	return w, nil
}

// LoadSettings reads the orchestrator's settings from the environment on top
// of the shared config. Errors name the variable, never a value.
func LoadSettings(cfg *config.Config) (Settings, error) {
	s := Settings{
		ContractsDir: cfg.ContractsDir,
		ContractPath: config.String("ONEX_ORCHESTRATOR_CONTRACT", contract.Path(cfg.ContractsDir, expect.Service)),
		DLQTopic:     cfg.DeadLetterTopic, Namespace: cfg.TopicNamespace, Env: cfg.Environment, DrainTimeout: cfg.DrainTimeout, FromOldest: cfg.ConsumeFromOldest,
		SchedulerID: config.String("ONEX_RUNTIME_SCHEDULER_ID", "runtime-scheduler-default"),
	}
	var errs []error
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
	def := ingress.DefaultLimits()
	s.Limits = ingress.Limits{
		MaxBytes:      integer("ONEX_INGRESS_MAX_MESSAGE_BYTES", def.MaxBytes),
		MaxFutureSkew: time.Duration(integer("ONEX_INGRESS_MAX_FUTURE_SKEW_SECONDS", int(def.MaxFutureSkew/time.Second))) * time.Second,
		MaxAge:        time.Duration(integer("ONEX_INGRESS_MAX_AGE_SECONDS", 0)) * time.Second,
	}
	// Its own aggregation state topic (a compacted topic that must exist):
	// for environments that share a broker but must not share attempts in
	// flight (KAFKA_TOPIC_NAMESPACE separates all their topics at once).
	if t := config.String("ONEX_REGISTRATION_AGGREGATIONS_TOPIC", ""); t != "" {
		if s.Rename == nil {
			s.Rename = map[string]string{}
		}
		s.Rename[topics.RegistrationAggregations] = t
	}
	window, err := livenessWindow(s.ContractsDir)
	if err != nil {
		errs = append(errs, err)
	}
	s.Limits.HeartbeatWindow = window
	stepMS := integer("ONEX_ORCHESTRATOR_STEP_TIMEOUT_MS", 0)
	s.StepTimeout = time.Duration(stepMS) * time.Millisecond
	tickMS := integer("ONEX_RUNTIME_SCHEDULER_TICK_INTERVAL_MS", 1000)
	s.TickInterval = time.Duration(tickMS) * time.Millisecond
	s.CatalogRefresh = time.Duration(integer("ONEX_TOPIC_CATALOG_REFRESH_SECONDS", 30)) * time.Second
	s.RestoreTimeout = time.Duration(integer("ONEX_AGGREGATION_RESTORE_TIMEOUT_SECONDS", 30)) * time.Second
	s.RequestIntrospection = boolean("ONEX_REQUEST_INTROSPECTION_ON_START", true)
	switch start := config.String("ONEX_INGRESS_START", "newest"); start {
	case "newest":
	case "oldest":
		s.IngressFromOldest = true
	default:
		errs = append(errs, fmt.Errorf("config: ONEX_INGRESS_START must be newest or oldest"))
	}
	if len(errs) > 0 {
		return s, errors.Join(errs...)
	}
	switch {
	case s.Limits.MaxBytes < 1024:
		return s, fmt.Errorf("config: ONEX_INGRESS_MAX_MESSAGE_BYTES must be >= 1024")
	case s.Limits.MaxFutureSkew < 0:
		return s, fmt.Errorf("config: ONEX_INGRESS_MAX_FUTURE_SKEW_SECONDS must be >= 0")
	case s.Limits.MaxAge < 0:
		return s, fmt.Errorf("config: ONEX_INGRESS_MAX_AGE_SECONDS must be >= 0 (0 = no bound)")
	case stepMS < 0 || stepMS > 300000:
		return s, fmt.Errorf("config: ONEX_ORCHESTRATOR_STEP_TIMEOUT_MS must be within 1..300000 (0 or unset: the contract's)")
	case tickMS < 100 || tickMS > 60000:
		return s, fmt.Errorf("config: ONEX_RUNTIME_SCHEDULER_TICK_INTERVAL_MS must be within 100..60000 (spec 2.5)")
	case s.SchedulerID == "":
		return s, fmt.Errorf("config: ONEX_RUNTIME_SCHEDULER_ID must not be empty")
	case s.CatalogRefresh <= 0:
		return s, fmt.Errorf("config: ONEX_TOPIC_CATALOG_REFRESH_SECONDS must be > 0")
	case s.RestoreTimeout <= 0:
		return s, fmt.Errorf("config: ONEX_AGGREGATION_RESTORE_TIMEOUT_SECONDS must be > 0")
	}
	return s, nil
}
