// Package contract loads and validates the services' contract.yaml files
// (contracts/<service>/contract.yaml): a service's identity, the topics it
// subscribes and publishes, which handler serves each subscription, where
// each intent type is routed, the reducer's state machine, the service's
// tunable parameters and its retry and circuit-breaker settings.
//
// Every service loads its contract with Load at start-up and refuses to start
// when it has any problem, so that a misspelt topic or a missing route is a
// start-up error, never a runtime surprise. Load checks three things:
//
//   - the document: strict YAML (an unknown key, a number where a list is
//     expected, a second document are problems, each with its field path);
//   - the contract on its own: topic names valid under the taxonomy and
//     present in the platform registry (pkg/topics), every route complete
//     and aimed at a published topic, the state machine well-formed, retry
//     and breaker numbers within the spec's ranges (section 6.3-6.4);
//   - the contract against the service's code, described by an Expect: the
//     handlers the code has, the topics it reads and writes, the intent types
//     it emits, routes or handles, the state machine its decision code
//     implements, the parameters and error-handling sections it reads.
//
// ValidateDir runs the same checks over a directory of contracts and adds the
// checks that span services: every emitted intent type is routed, and every
// route reaches a service that subscribes to its topic and handles it.
//
// Problems name the file, the field path (with its line) and the problem;
// all problems are reported at once.
package contract

import (
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/omninode/onex-fleet/pkg/retry"
)

// FileName is the name of every contract file; a service's contract is
// <contracts dir>/<service>/FileName.
const FileName = "contract.yaml"

// Path returns the contract file of service under dir.
func Path(dir, service string) string { return filepath.Join(dir, service, FileName) }

// Node types a contract may declare (the ONEX archetypes).
const (
	NodeTypeOrchestrator = "ORCHESTRATOR_GENERIC"
	NodeTypeReducer      = "REDUCER_GENERIC"
	NodeTypeEffect       = "EFFECT_GENERIC"
	NodeTypeCompute      = "COMPUTE_GENERIC"
)

// ResultAggregationAllOrPartial is the only result aggregation strategy
// (spec 6.1): an attempt's result waits for every backend and is success,
// partial or failed.
const ResultAggregationAllOrPartial = "all_or_partial"

// Contract is one decoded contract.yaml. Field tags are the file's keys; a
// key the struct does not have is a problem, never ignored.
type Contract struct {
	// File is the path the contract was read from ("" for Parse).
	File string `yaml:"-"`

	Name     string `yaml:"name"`
	NodeType string `yaml:"node_type"`
	// ContractVersion versions the contract; the orchestrator derives its
	// node-facing consumer group ids from it (spec 3.4).
	ContractVersion Version `yaml:"contract_version"`
	Description     string  `yaml:"description"`

	EventBus EventBus `yaml:"event_bus"`
	// HandlerRouting says which handler of the code serves each subscribed
	// topic, in file order.
	HandlerRouting []Route `yaml:"handler_routing"`
	// IntentRouting maps an intent type to the effect command topic it is
	// forwarded to (the orchestrator's routing table).
	IntentRouting map[string]string `yaml:"intent_routing"`
	// ResultAggregation says how effect results become registration results.
	ResultAggregation *Aggregation `yaml:"result_aggregation"`
	// EmittedIntents are the intent types the service produces (the reducer).
	EmittedIntents []string `yaml:"emitted_intents"`
	// HandledIntents are the intent types the service executes (an effect).
	HandledIntents []string `yaml:"handled_intents"`
	// StateMachine is the reducer's FSM.
	StateMachine *StateMachine `yaml:"state_machine"`
	// Parameters are the service's tunables (defaults; the environment may
	// override them).
	Parameters map[string]float64 `yaml:"parameters"`
	// ErrorHandling holds the retry and circuit-breaker settings.
	ErrorHandling ErrorHandling `yaml:"error_handling"`

	// index maps every field path present in the file to its line.
	index map[string]int
}

// Version is a contract_version object.
type Version struct {
	Major int `yaml:"major"`
	Minor int `yaml:"minor"`
	Patch int `yaml:"patch"`
}

// String renders the version as MAJOR.MINOR.PATCH.
func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// EventBus lists the topics a service reads and writes.
type EventBus struct {
	Subscribe []TopicRef `yaml:"subscribe_topics"`
	Publish   []TopicRef `yaml:"publish_topics"`
	DLQ       []TopicRef `yaml:"dlq_topics"`
}

// TopicRef is one entry of an event_bus list.
type TopicRef struct {
	Topic string `yaml:"topic"`
}

// Route says which handler serves a subscribed topic.
type Route struct {
	Topic   string `yaml:"topic"`
	Handler string `yaml:"handler"`
}

// Aggregation is the result_aggregation section.
type Aggregation struct {
	// Strategy is ResultAggregationAllOrPartial.
	Strategy string `yaml:"strategy"`
	// AttemptIntents are the intent types that make up one registration
	// attempt, one per backend.
	AttemptIntents []string `yaml:"attempt_intents"`
	// ResultTopic is where registration results are published.
	ResultTopic string `yaml:"result_topic"`
	// StepTimeoutMS bounds the wait for one backend's result (spec 6.4's
	// orchestrator step timeout, 30 000 ms): past it the intent counts as a
	// retriable timeout failure, so a backend that cannot answer (an effect
	// whose partition waits out an outage, an effect that is down) still
	// yields a partial result and a re-send. 0 (absent) means
	// DefaultStepTimeout.
	StepTimeoutMS int `yaml:"step_timeout_ms"`
}

// DefaultStepTimeout is the orchestrator's step timeout when the contract
// does not set one (spec 6.4).
const DefaultStepTimeout = 30 * time.Second

// StepTimeout returns step_timeout_ms as a duration, DefaultStepTimeout
// when unset.
func (a *Aggregation) StepTimeout() time.Duration {
	if a == nil || a.StepTimeoutMS <= 0 {
		return DefaultStepTimeout
	}
	return time.Duration(a.StepTimeoutMS) * time.Millisecond
}

// StateMachine is a declared finite state machine.
type StateMachine struct {
	Name string `yaml:"name"`
	// Initial is the state of an entity the machine has never seen; it may
	// be a pseudo-state outside States.
	Initial     string       `yaml:"initial"`
	States      []string     `yaml:"states"`
	Transitions []Transition `yaml:"transitions"`
}

// Transition is one state change.
type Transition struct {
	From    string `yaml:"from"`
	Trigger string `yaml:"trigger"`
	To      string `yaml:"to"`
}

func (t Transition) String() string { return fmt.Sprintf("%s --%s--> %s", t.From, t.Trigger, t.To) }

// ErrorHandling is the error_handling section.
type ErrorHandling struct {
	RetryPolicy    *RetryPolicy    `yaml:"retry_policy"`
	CircuitBreaker *CircuitBreaker `yaml:"circuit_breaker"`
}

// RetryPolicy is spec 6.4's backoff: attempt n (0-based) waits
// min(initial*base^n, max) * (1 ± jitter).
type RetryPolicy struct {
	// MaxAttempts counts the first attempt too (1..10).
	MaxAttempts     int     `yaml:"max_attempts"`
	InitialDelayMS  int     `yaml:"initial_delay_ms"`
	MaxDelayMS      int     `yaml:"max_delay_ms"`
	ExponentialBase float64 `yaml:"exponential_base"`
	JitterFactor    float64 `yaml:"jitter_factor"`
}

// Policy converts the contract's policy into pkg/retry's.
func (p RetryPolicy) Policy() retry.Policy {
	return retry.Policy{MaxAttempts: p.MaxAttempts, Initial: time.Duration(p.InitialDelayMS) * time.Millisecond,
		Max: time.Duration(p.MaxDelayMS) * time.Millisecond, Multiplier: p.ExponentialBase, Jitter: p.JitterFactor}
}

// CircuitBreaker is spec 6.3's per-backend breaker: FailureThreshold
// consecutive failures open it for ResetTimeoutSeconds, then one trial call
// decides.
type CircuitBreaker struct {
	FailureThreshold    int `yaml:"failure_threshold"`
	ResetTimeoutSeconds int `yaml:"reset_timeout_seconds"`
}

// ResetTimeout returns the open period.
func (b CircuitBreaker) ResetTimeout() time.Duration {
	return time.Duration(b.ResetTimeoutSeconds) * time.Second
}

// Subscribe returns event_bus.subscribe_topics, in file order.
func (c *Contract) Subscribe() []string { return names(c.EventBus.Subscribe) }

// Publish returns event_bus.publish_topics, in file order.
func (c *Contract) Publish() []string { return names(c.EventBus.Publish) }

// DLQ returns event_bus.dlq_topics, in file order.
func (c *Contract) DLQ() []string { return names(c.EventBus.DLQ) }

// TopicsFor returns the subscribed topics served by handler, in file order.
func (c *Contract) TopicsFor(handler string) []string {
	var out []string
	for _, r := range c.HandlerRouting {
		if r.Handler == handler {
			out = append(out, r.Topic)
		}
	}
	return out
}

// TopicFor returns the first topic served by handler ("" when none); for
// handlers that serve exactly one topic.
func (c *Contract) TopicFor(handler string) string {
	if ts := c.TopicsFor(handler); len(ts) > 0 {
		return ts[0]
	}
	return ""
}

// RouteTopics returns the distinct intent_routing target topics, sorted.
func (c *Contract) RouteTopics() []string {
	var out []string
	for _, t := range c.IntentRouting {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

// Retry returns error_handling.retry_policy as a retry.Policy; the zero
// Policy when the contract has none (Load with Expect.RetryPolicy ensures it
// has one).
func (c *Contract) Retry() retry.Policy {
	if c.ErrorHandling.RetryPolicy == nil {
		return retry.Policy{}
	}
	return c.ErrorHandling.RetryPolicy.Policy()
}

// Breaker returns error_handling.circuit_breaker; the zero value when the
// contract has none (Load with Expect.CircuitBreaker ensures it has one).
func (c *Contract) Breaker() CircuitBreaker {
	if c.ErrorHandling.CircuitBreaker == nil {
		return CircuitBreaker{}
	}
	return *c.ErrorHandling.CircuitBreaker
}

// has reports whether the file has the field path.
func (c *Contract) has(path string) bool {
	_, ok := c.index[path]
	return ok
}

func names(refs []TopicRef) []string {
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		out = append(out, r.Topic)
	}
	return out
}
