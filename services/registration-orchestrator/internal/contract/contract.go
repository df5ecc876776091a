// Package contract loads and validates the orchestrator's contract.yaml
// (contracts/registration-orchestrator/contract.yaml): its subscriptions and
// the handler serving each, its publications, the intent routing table, the
// result aggregation rule and the retry policy.
//
// Load refuses a contract with any problem and names every one of them, so
// that a wrong topic or a missing route is a start-up error, never a runtime
// surprise. The service's own topic constants are checked against the
// contract with RequirePublish / RequireSubscribe.
package contract

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/retry"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// NodeType is the only node_type an orchestrator contract may declare.
const NodeType = "ORCHESTRATOR_GENERIC"

// Handler names of handler_routing, one per consuming component.
const (
	HandlerIngress        = "ingress"
	HandlerIntentRouter   = "intent_router"
	HandlerResults        = "result_aggregator"
	HandlerCatalogQuery   = "topic_catalog_query"
	HandlerTickLeadership = "tick_leadership"
)

// handlerArity says how many topics each handler takes: ingress serves
// several node-facing topics, every other handler exactly one.
var handlerArity = map[string]int{
	HandlerIngress:        -1,
	HandlerIntentRouter:   1,
	HandlerResults:        1,
	HandlerCatalogQuery:   1,
	HandlerTickLeadership: 1,
}

// IngressTopics are the node-facing topics the ingress validator knows how to
// check; they are exactly the node messages the reducer decides on.
var IngressTopics = []string{topics.NodeIntrospection, topics.NodeRegistrationAcked, topics.NodeHeartbeat}

// EmittedIntentTypes are the intent types the reducer can emit. Each must have
// a route, or the orchestrator would dead-letter a whole class of intents.
var EmittedIntentTypes = []string{pipeline.PostgresUpsert, pipeline.PostgresUpdate, pipeline.ConsulRegister, pipeline.ConsulDeregister}

// Version is a contract_version object.
type Version struct {
	Major int `yaml:"major"`
	Minor int `yaml:"minor"`
	Patch int `yaml:"patch"`
}

// String renders the version as MAJOR.MINOR.PATCH (the consumer group id's
// version component, spec 3.4).
func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Route says which handler serves a subscribed topic.
type Route struct {
	Topic   string `yaml:"topic"`
	Handler string `yaml:"handler"`
}

// Aggregation is the result_aggregation section.
type Aggregation struct {
	// Strategy is all_or_partial (spec 6.1), the only one implemented.
	Strategy string `yaml:"strategy"`
	// AttemptIntents are the intent types that make up one registration
	// attempt; the result waits for a report from each of their backends.
	AttemptIntents []string `yaml:"attempt_intents"`
	// ResultTopic is where registration results are published.
	ResultTopic string `yaml:"result_topic"`
}

// Contract is the validated contract.
type Contract struct {
	Name            string
	NodeType        string
	ContractVersion Version
	Description     string
	// Subscribe, Publish and DLQ are the event_bus topic lists, in file order.
	Subscribe, Publish, DLQ []string
	// Handlers is handler_routing in file order.
	Handlers []Route
	// IntentRouting maps an intent type to its effect command topic.
	IntentRouting map[string]string
	Aggregation   Aggregation
	// RetryPolicy governs re-sends of a failed backend's intent.
	RetryPolicy retry.Policy
}

type topicEntry struct {
	Topic string `yaml:"topic"`
}

type file struct {
	Name            string  `yaml:"name"`
	NodeType        string  `yaml:"node_type"`
	ContractVersion Version `yaml:"contract_version"`
	Description     string  `yaml:"description"`
	EventBus        struct {
		Subscribe []topicEntry `yaml:"subscribe_topics"`
		Publish   []topicEntry `yaml:"publish_topics"`
		DLQ       []topicEntry `yaml:"dlq_topics"`
	} `yaml:"event_bus"`
	HandlerRouting    []Route           `yaml:"handler_routing"`
	IntentRouting     map[string]string `yaml:"intent_routing"`
	ResultAggregation Aggregation       `yaml:"result_aggregation"`
	ErrorHandling     struct {
		RetryPolicy *struct {
			MaxAttempts     int     `yaml:"max_attempts"`
			InitialDelayMS  int     `yaml:"initial_delay_ms"`
			MaxDelayMS      int     `yaml:"max_delay_ms"`
			ExponentialBase float64 `yaml:"exponential_base"`
			JitterFactor    float64 `yaml:"jitter_factor"`
		} `yaml:"retry_policy"`
	} `yaml:"error_handling"`
}

// Load reads and validates the contract at path. The error names the file
// and every problem found (errors.Join), e.g. `intent type
// "consul.deregister" (emitted by the reducer) has no route in
// intent_routing`.
func Load(path string) (*Contract, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("contract: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("contract %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes and validates a contract document. Unknown keys are rejected
// so that a misspelt section is not silently ignored.
func Parse(b []byte) (*Contract, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	c := &Contract{
		Name: f.Name, NodeType: f.NodeType, ContractVersion: f.ContractVersion, Description: f.Description,
		Subscribe: entries(f.EventBus.Subscribe), Publish: entries(f.EventBus.Publish), DLQ: entries(f.EventBus.DLQ),
		Handlers: f.HandlerRouting, IntentRouting: f.IntentRouting, Aggregation: f.ResultAggregation,
	}
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.Name == "" {
		add("name: missing")
	}
	if c.NodeType != NodeType {
		add("node_type: %q, want %s", c.NodeType, NodeType)
	}
	if c.ContractVersion == (Version{}) {
		add("contract_version: missing")
	}

	known := map[string]bool{}
	for _, s := range topics.Platform() {
		known[s.Name] = true
	}
	checkTopic := func(where, t string) {
		if err := topics.Validate(t); err != nil {
			add("%s: %v", where, err)
			return
		}
		if !known[t] {
			add("%s: topic %q is not in the platform topic registry (pkg/topics)", where, t)
		}
	}
	for name, list := range map[string][]string{"event_bus.subscribe_topics": c.Subscribe, "event_bus.publish_topics": c.Publish, "event_bus.dlq_topics": c.DLQ} {
		seen := map[string]bool{}
		for _, t := range list {
			checkTopic(name, t)
			if seen[t] {
				add("%s: topic %q listed twice", name, t)
			}
			seen[t] = true
		}
	}
	if len(c.Subscribe) == 0 {
		add("event_bus.subscribe_topics: empty")
	}

	count := map[string]int{}
	routed := map[string]bool{}
	for i, r := range c.Handlers {
		where := fmt.Sprintf("handler_routing[%d]", i)
		_, ok := handlerArity[r.Handler]
		switch {
		case !ok:
			add("%s: unknown handler %q (known: %s)", where, r.Handler, sortedKeys(handlerArity))
		case !slices.Contains(c.Subscribe, r.Topic):
			add("%s: topic %q is not in event_bus.subscribe_topics", where, r.Topic)
		case routed[r.Topic]:
			add("%s: topic %q already has a handler", where, r.Topic)
		case r.Handler == HandlerIngress && !slices.Contains(IngressTopics, r.Topic):
			add("%s: the ingress handler cannot validate topic %q (it knows %v)", where, r.Topic, IngressTopics)
		}
		routed[r.Topic] = true
		count[r.Handler]++
	}
	for _, h := range sortedKeys(handlerArity) {
		switch n, arity := count[h], handlerArity[h]; {
		case n == 0:
			add("handler_routing: no topic for handler %q", h)
		case arity > 0 && n != arity:
			add("handler_routing: handler %q serves %d topics, want %d", h, n, arity)
		}
	}

	for _, it := range sortedKeys(c.IntentRouting) {
		t := c.IntentRouting[it]
		checkTopic(fmt.Sprintf("intent_routing[%s]", it), t)
		if !slices.Contains(c.Publish, t) {
			add("intent_routing[%s]: topic %q is not in event_bus.publish_topics", it, t)
		}
	}
	for _, it := range EmittedIntentTypes {
		if _, ok := c.IntentRouting[it]; !ok {
			add("intent type %q (emitted by the reducer) has no route in intent_routing", it)
		}
	}

	a := c.Aggregation
	if a.Strategy != "all_or_partial" {
		add("result_aggregation.strategy: %q, want all_or_partial", a.Strategy)
	}
	if len(a.AttemptIntents) == 0 {
		add("result_aggregation.attempt_intents: empty")
	}
	backends := map[string]string{}
	for _, it := range a.AttemptIntents {
		if _, ok := c.IntentRouting[it]; !ok {
			add("result_aggregation.attempt_intents: %q has no route in intent_routing", it)
		}
		b := pipeline.Backend(it)
		if prev, dup := backends[b]; dup {
			add("result_aggregation.attempt_intents: %q and %q are both for backend %q; an attempt has one intent per backend", prev, it, b)
		}
		backends[b] = it
	}
	if !slices.Contains(c.Publish, a.ResultTopic) {
		add("result_aggregation.result_topic: %q is not in event_bus.publish_topics", a.ResultTopic)
	}

	if rp := f.ErrorHandling.RetryPolicy; rp == nil {
		add("error_handling.retry_policy: missing")
	} else {
		c.RetryPolicy = retry.Policy{
			MaxAttempts: rp.MaxAttempts, Initial: time.Duration(rp.InitialDelayMS) * time.Millisecond,
			Max: time.Duration(rp.MaxDelayMS) * time.Millisecond, Multiplier: rp.ExponentialBase, Jitter: rp.JitterFactor,
		}
		if err := c.RetryPolicy.Validate(); err != nil {
			add("error_handling.retry_policy: %v", err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// TopicsFor returns the subscribed topics served by handler, in file order.
func (c *Contract) TopicsFor(handler string) []string {
	var out []string
	for _, r := range c.Handlers {
		if r.Handler == handler {
			out = append(out, r.Topic)
		}
	}
	return out
}

// TopicFor returns the single topic of a one-topic handler.
func (c *Contract) TopicFor(handler string) string {
	if ts := c.TopicsFor(handler); len(ts) > 0 {
		return ts[0]
	}
	return ""
}

// RequirePublish fails, naming each one, when a topic the code publishes to is
// missing from event_bus.publish_topics.
func (c *Contract) RequirePublish(ts ...string) error {
	return c.require("event_bus.publish_topics", c.Publish, ts)
}

// RequireSubscribe fails, naming each one, when a topic the code reads is
// missing from event_bus.subscribe_topics.
func (c *Contract) RequireSubscribe(ts ...string) error {
	return c.require("event_bus.subscribe_topics", c.Subscribe, ts)
}

func (c *Contract) require(where string, have, want []string) error {
	var errs []error
	for _, t := range want {
		if !slices.Contains(have, t) {
			errs = append(errs, fmt.Errorf("contract: %s must list %q (the service uses it)", where, t))
		}
	}
	return errors.Join(errs...)
}

// RouteTopics returns the distinct effect command topics, sorted.
func (c *Contract) RouteTopics() []string {
	set := map[string]bool{}
	for _, t := range c.IntentRouting {
		set[t] = true
	}
	return sortedKeys(set)
}

func entries(es []topicEntry) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.Topic)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
