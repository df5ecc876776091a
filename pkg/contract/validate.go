package contract

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"

	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/topics"
)

var (
	namePattern       = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
	handlerPattern    = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	intentTypePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$`)
	statePattern      = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

var nodeTypes = []string{NodeTypeOrchestrator, NodeTypeReducer, NodeTypeEffect, NodeTypeCompute}

// Ranges of error_handling (spec 6.3-6.4). The spec gives the retry ranges;
// the breaker bounds are this project's sanity limits.
const (
	MinRetryAttempts     = 1
	MaxRetryAttempts     = 10
	MinInitialDelayMS    = 10
	MaxInitialDelayMS    = 60_000
	MinMaxDelayMS        = 1_000
	MaxMaxDelayMS        = 300_000
	MinExponentialBase   = 1.5
	MaxExponentialBase   = 4.0
	MinJitterFactor      = 0.0
	MaxJitterFactor      = 0.5
	MinFailureThreshold  = 1
	MaxFailureThreshold  = 100
	MinResetTimeoutSecs  = 1
	MaxResetTimeoutSecs  = 3600
	retryPolicyPath      = "error_handling.retry_policy"
	circuitBreakerPath   = "error_handling.circuit_breaker"
	stateMachinePath     = "state_machine"
	resultAggregationKey = "result_aggregation"
)

// validate checks what a contract must satisfy on its own, whatever service
// it belongs to.
func validate(c *Contract, ps *problems) {
	switch {
	case c.Name == "":
		ps.add("name", "missing")
	case !namePattern.MatchString(c.Name):
		ps.add("name", "%q must be lowercase letters, digits, '_' and '-', starting with a letter", c.Name)
	}
	if !slices.Contains(nodeTypes, c.NodeType) {
		if c.NodeType == "" {
			ps.add("node_type", "missing (one of %v)", nodeTypes)
		} else {
			ps.add("node_type", "%q is not one of %v", c.NodeType, nodeTypes)
		}
	}
	v := c.ContractVersion
	switch {
	case v.Major < 0 || v.Minor < 0 || v.Patch < 0:
		ps.add("contract_version", "%s has a negative component", v)
	case v == Version{}:
		ps.add("contract_version", "missing (major, minor, patch; not all 0)")
	}

	validateEventBus(c, ps)
	validateHandlerRouting(c, ps)
	validateIntents(c, ps)
	if c.StateMachine != nil {
		validateStateMachine(c.StateMachine, ps)
	}
	for _, k := range sortedKeys(c.Parameters) {
		if x := c.Parameters[k]; math.IsNaN(x) || math.IsInf(x, 0) {
			ps.add("parameters["+k+"]", "%v is not a finite number", x)
		}
	}
	if rp := c.ErrorHandling.RetryPolicy; rp != nil {
		validateRetry(c, rp, ps)
	}
	if cb := c.ErrorHandling.CircuitBreaker; cb != nil {
		validateBreaker(c, cb, ps)
	}
}

// checkTopic reports a topic that is not a valid taxonomy name or not in
// the platform registry.
func checkTopic(ps *problems, path, t string) bool {
	if t == "" {
		ps.add(path, "topic missing")
		return false
	}
	if err := topics.Validate(t); err != nil {
		ps.add(path, "%v", err)
		return false
	}
	if _, ok := topics.Lookup(t); !ok {
		ps.add(path, "topic %q is not in the platform topic registry (pkg/topics); add it there first", t)
		return false
	}
	return true
}

func validateEventBus(c *Contract, ps *problems) {
	lists := []struct {
		key  string
		refs []TopicRef
	}{{"subscribe_topics", c.EventBus.Subscribe}, {"publish_topics", c.EventBus.Publish}, {"dlq_topics", c.EventBus.DLQ}}
	for _, l := range lists {
		seen := map[string]int{}
		for i, r := range l.refs {
			path := fmt.Sprintf("event_bus.%s[%d]", l.key, i)
			if !checkTopic(ps, path, r.Topic) {
				continue
			}
			if j, dup := seen[r.Topic]; dup {
				ps.add(path, "topic %q is already listed at [%d]", r.Topic, j)
			}
			seen[r.Topic] = i
			k, _ := topics.KindOf(r.Topic)
			if (l.key == "dlq_topics") != (k == topics.KindDLQ) {
				if l.key == "dlq_topics" {
					ps.add(path, "topic %q is not a dead-letter topic (kind %s)", r.Topic, k)
				} else {
					ps.add(path, "dead-letter topic %q belongs in event_bus.dlq_topics", r.Topic)
				}
			}
		}
	}
	if len(c.EventBus.Subscribe) == 0 {
		ps.add("event_bus.subscribe_topics", "empty: every service consumes at least one topic")
	}
}

func validateHandlerRouting(c *Contract, ps *problems) {
	sub := c.Subscribe()
	served := map[string]int{}
	for i, r := range c.HandlerRouting {
		path := fmt.Sprintf("handler_routing[%d]", i)
		if !handlerPattern.MatchString(r.Handler) {
			ps.add(path+".handler", "%q must be a snake_case handler name", r.Handler)
		}
		switch j, dup := served[r.Topic]; {
		case r.Topic == "":
			ps.add(path+".topic", "missing")
		case !slices.Contains(sub, r.Topic):
			ps.add(path+".topic", "%q is not in event_bus.subscribe_topics", r.Topic)
		case dup:
			ps.add(path+".topic", "%q already has a handler at handler_routing[%d]", r.Topic, j)
		}
		served[r.Topic] = i
	}
}

func validateIntents(c *Contract, ps *problems) {
	pub := c.Publish()
	for _, it := range sortedKeys(c.IntentRouting) {
		path := "intent_routing[" + it + "]"
		if !intentTypePattern.MatchString(it) {
			ps.add(path, "intent type %q must be <backend>.<action> in snake_case", it)
		}
		t := c.IntentRouting[it]
		if checkTopic(ps, path, t) && !slices.Contains(pub, t) {
			ps.add(path, "route target %q is not in event_bus.publish_topics", t)
		}
	}
	if a := c.ResultAggregation; a != nil {
		if a.Strategy != ResultAggregationAllOrPartial {
			ps.add(resultAggregationKey+".strategy", "%q, want %s", a.Strategy, ResultAggregationAllOrPartial)
		}
		if len(a.AttemptIntents) == 0 {
			ps.add(resultAggregationKey+".attempt_intents", "empty")
		}
		backends := map[string]string{}
		for i, it := range a.AttemptIntents {
			path := fmt.Sprintf("%s.attempt_intents[%d]", resultAggregationKey, i)
			if _, ok := c.IntentRouting[it]; !ok {
				ps.add(path, "%q has no route in intent_routing", it)
			}
			b := pipeline.Backend(it)
			if prev, dup := backends[b]; dup {
				ps.add(path, "%q and %q are both for backend %q; an attempt has one intent per backend", prev, it, b)
			}
			backends[b] = it
		}
		if a.StepTimeoutMS < 0 || a.StepTimeoutMS > 300000 {
			ps.add(resultAggregationKey+".step_timeout_ms", "%d, want 1..300000 (or absent for %s)", a.StepTimeoutMS, DefaultStepTimeout)
		}
		if checkTopic(ps, resultAggregationKey+".result_topic", a.ResultTopic) && !slices.Contains(pub, a.ResultTopic) {
			ps.add(resultAggregationKey+".result_topic", "%q is not in event_bus.publish_topics", a.ResultTopic)
		}
	}
	for key, list := range map[string][]string{"emitted_intents": c.EmittedIntents, "handled_intents": c.HandledIntents} {
		seen := map[string]bool{}
		for i, it := range list {
			path := fmt.Sprintf("%s[%d]", key, i)
			if !intentTypePattern.MatchString(it) {
				ps.add(path, "intent type %q must be <backend>.<action> in snake_case", it)
			}
			if seen[it] {
				ps.add(path, "intent type %q is listed twice", it)
			}
			seen[it] = true
		}
	}
}

func validateStateMachine(m *StateMachine, ps *problems) {
	if m.Name == "" {
		ps.add(stateMachinePath+".name", "missing")
	}
	if m.Initial == "" {
		ps.add(stateMachinePath+".initial", "missing")
	}
	if len(m.States) == 0 {
		ps.add(stateMachinePath+".states", "empty")
	}
	known := map[string]bool{m.Initial: true}
	listed := map[string]bool{}
	for i, s := range m.States {
		path := fmt.Sprintf("%s.states[%d]", stateMachinePath, i)
		if !statePattern.MatchString(s) {
			ps.add(path, "state %q must be snake_case", s)
		}
		if listed[s] {
			ps.add(path, "state %q is listed twice", s)
		}
		listed[s], known[s] = true, true
	}
	seen := map[Transition]int{}
	for i, t := range m.Transitions {
		path := fmt.Sprintf("%s.transitions[%d]", stateMachinePath, i)
		if !known[t.From] {
			ps.add(path+".from", "%q is not a declared state", t.From)
		}
		if !known[t.To] {
			ps.add(path+".to", "%q is not a declared state", t.To)
		}
		if t.Trigger == "" {
			ps.add(path+".trigger", "missing")
		}
		if t.To == m.Initial && m.Initial != "" && !slices.Contains(m.States, m.Initial) {
			ps.add(path+".to", "the initial pseudo-state %q cannot be a target", t.To)
		}
		if j, dup := seen[t]; dup {
			ps.add(path, "transition %s is already declared at transitions[%d]", t, j)
		}
		seen[t] = i
	}
}

func validateRetry(c *Contract, rp *RetryPolicy, ps *problems) {
	ints := []struct {
		key      string
		v        int
		min, max int
	}{
		{"max_attempts", rp.MaxAttempts, MinRetryAttempts, MaxRetryAttempts},
		{"initial_delay_ms", rp.InitialDelayMS, MinInitialDelayMS, MaxInitialDelayMS},
		{"max_delay_ms", rp.MaxDelayMS, MinMaxDelayMS, MaxMaxDelayMS},
	}
	for _, f := range ints {
		path := retryPolicyPath + "." + f.key
		if !c.has(path) {
			ps.add(path, "missing (%d..%d)", f.min, f.max)
		} else if f.v < f.min || f.v > f.max {
			ps.add(path, "%d is out of range %d..%d", f.v, f.min, f.max)
		}
	}
	floats := []struct {
		key      string
		v        float64
		min, max float64
	}{
		{"exponential_base", rp.ExponentialBase, MinExponentialBase, MaxExponentialBase},
		{"jitter_factor", rp.JitterFactor, MinJitterFactor, MaxJitterFactor},
	}
	for _, f := range floats {
		path := retryPolicyPath + "." + f.key
		if !c.has(path) {
			ps.add(path, "missing (%g..%g)", f.min, f.max)
		} else if !(f.v >= f.min && f.v <= f.max) {
			ps.add(path, "%g is out of range %g..%g", f.v, f.min, f.max)
		}
	}
	if rp.MaxDelayMS < rp.InitialDelayMS && c.has(retryPolicyPath+".max_delay_ms") && c.has(retryPolicyPath+".initial_delay_ms") {
		ps.add(retryPolicyPath+".max_delay_ms", "%d is below initial_delay_ms %d", rp.MaxDelayMS, rp.InitialDelayMS)
	}
}

func validateBreaker(c *Contract, cb *CircuitBreaker, ps *problems) {
	fields := []struct {
		key      string
		v        int
		min, max int
	}{
		{"failure_threshold", cb.FailureThreshold, MinFailureThreshold, MaxFailureThreshold},
		{"reset_timeout_seconds", cb.ResetTimeoutSeconds, MinResetTimeoutSecs, MaxResetTimeoutSecs},
	}
	for _, f := range fields {
		path := circuitBreakerPath + "." + f.key
		if !c.has(path) {
			ps.add(path, "missing (%d..%d)", f.min, f.max)
		} else if f.v < f.min || f.v > f.max {
			ps.add(path, "%d is out of range %d..%d", f.v, f.min, f.max)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
