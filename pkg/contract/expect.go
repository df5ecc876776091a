package contract

import (
	"fmt"
	"slices"
	"strings"
)

// Expect describes what a service's code needs from its contract. Each
// service builds its Expect from its own code (handler names, topic
// constants, the decision code's state machine), so a contract that drifts
// from the code fails Load.
//
// A section the service does not read (an Expect field left nil or false)
// must be absent from the contract: a setting nobody reads is a lie.
type Expect struct {
	// Name and NodeType are the contract's required identity.
	Name     string
	NodeType string
	// Handlers are the code's handlers. Each must serve at least one topic;
	// a handler_routing entry naming another handler is a problem. Nil: the
	// service has no handler_routing.
	Handlers []Handler
	// Subscribes and Publishes are topics the code reads and writes; each
	// must be listed in event_bus.
	Subscribes, Publishes []string
	// RoutedIntents are intent types that must have a route in
	// intent_routing. Nil: the service routes no intents.
	RoutedIntents []string
	// ResultAggregation requires the result_aggregation section.
	ResultAggregation bool
	// EmittedIntents and HandledIntents, when non-nil, must equal
	// emitted_intents and handled_intents as sets.
	EmittedIntents, HandledIntents []string
	// StateMachine is the machine the code implements; the declared one
	// must have the same initial state, states and transitions. Nil: the
	// service has no state machine.
	StateMachine *StateMachine
	// Parameters are the tunables the code reads, with their ranges; the
	// contract must declare exactly these. Nil: no parameters section.
	Parameters []Parameter
	// RetryPolicy and CircuitBreaker say the code reads
	// error_handling.retry_policy and error_handling.circuit_breaker; each
	// is then required, else forbidden.
	RetryPolicy, CircuitBreaker bool
}

// Handler is one handler of the code.
type Handler struct {
	// Name is the handler's name in handler_routing.
	Name string
	// Topics is the exact number of topics it serves; 0 means one or more.
	Topics int
	// Only, when non-nil, are the topics it can serve at all.
	Only []string
}

// Parameter is one tunable of the code with its inclusive range.
type Parameter struct {
	Name     string
	Min, Max float64
}

// Load reads the contract at path and checks it on its own and against the
// code's expectations. The error is an *Error naming every problem.
func Load(path string, e Expect) (*Contract, error) {
	c, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	if ps := Check(c, e); len(ps) > 0 {
		return nil, &Error{Problems: ps}
	}
	return c, nil
}

// Check returns every problem of a decoded contract, on its own and against
// e, sorted by line.
func Check(c *Contract, e Expect) []Problem {
	ps := &problems{c: c}
	validate(c, ps)
	expect(c, e, ps)
	sortProblems(ps.list)
	return ps.list
}

func expect(c *Contract, e Expect, ps *problems) {
	if c.Name != "" && c.Name != e.Name {
		ps.add("name", "%q, want %q", c.Name, e.Name)
	}
	if c.NodeType != "" && c.NodeType != e.NodeType {
		ps.add("node_type", "%q, want %s", c.NodeType, e.NodeType)
	}
	requireTopics(ps, "event_bus.subscribe_topics", c.Subscribe(), e.Subscribes)
	requireTopics(ps, "event_bus.publish_topics", c.Publish(), e.Publishes)
	expectHandlers(c, e, ps)

	if e.RoutedIntents == nil {
		if c.has("intent_routing") {
			ps.add("intent_routing", "%s routes no intents; remove the section", e.Name)
		}
	} else {
		for _, it := range e.RoutedIntents {
			if _, ok := c.IntentRouting[it]; !ok {
				ps.add("intent_routing", "intent type %q has no route (it is emitted, so every such intent would be dead-lettered)", it)
			}
		}
	}
	switch {
	case e.ResultAggregation && c.ResultAggregation == nil:
		ps.add(resultAggregationKey, "missing")
	case !e.ResultAggregation && c.has(resultAggregationKey):
		ps.add(resultAggregationKey, "%s aggregates no results; remove the section", e.Name)
	}
	sameSet(c, ps, "emitted_intents", c.EmittedIntents, e.EmittedIntents, "emits")
	sameSet(c, ps, "handled_intents", c.HandledIntents, e.HandledIntents, "handles")

	switch {
	case e.StateMachine == nil && c.has(stateMachinePath):
		ps.add(stateMachinePath, "%s has no state machine; remove the section", e.Name)
	case e.StateMachine != nil && c.StateMachine == nil:
		ps.add(stateMachinePath, "missing: the code implements %s", e.StateMachine.Name)
	case e.StateMachine != nil:
		for _, d := range compareFSM(*c.StateMachine, *e.StateMachine) {
			ps.add(d.path, "%s", d.msg)
		}
	}

	expectParameters(c, e, ps)
	for _, s := range []struct {
		path string
		want bool
	}{{retryPolicyPath, e.RetryPolicy}, {circuitBreakerPath, e.CircuitBreaker}} {
		switch {
		case s.want && !c.has(s.path):
			ps.add(s.path, "missing: %s reads it", e.Name)
		case !s.want && c.has(s.path):
			ps.add(s.path, "%s does not use it; remove the section", e.Name)
		}
	}
}

func requireTopics(ps *problems, path string, have, want []string) {
	for _, t := range want {
		if !slices.Contains(have, t) {
			ps.add(path, "must list %q (the code uses it)", t)
		}
	}
}

func expectHandlers(c *Contract, e Expect, ps *problems) {
	known := map[string]Handler{}
	var names []string
	for _, h := range e.Handlers {
		known[h.Name] = h
		names = append(names, h.Name)
	}
	count := map[string]int{}
	for i, r := range c.HandlerRouting {
		path := fmt.Sprintf("handler_routing[%d]", i)
		h, ok := known[r.Handler]
		switch {
		case !ok && len(names) == 0:
			ps.add(path+".handler", "%s has no handlers; remove handler_routing", e.Name)
		case !ok:
			ps.add(path+".handler", "unknown handler %q (the code has: %s)", r.Handler, strings.Join(names, ", "))
		case h.Only != nil && !slices.Contains(h.Only, r.Topic):
			ps.add(path+".topic", "handler %q cannot serve %q (it serves only %s)", r.Handler, r.Topic, strings.Join(h.Only, ", "))
		}
		count[r.Handler]++
	}
	for _, h := range e.Handlers {
		switch n := count[h.Name]; {
		case n == 0:
			ps.add("handler_routing", "no topic for handler %q", h.Name)
		case h.Topics > 0 && n != h.Topics:
			ps.add("handler_routing", "handler %q serves %d topics, want %d", h.Name, n, h.Topics)
		}
	}
}

// sameSet reports the differences between a declared list and the code's.
func sameSet(c *Contract, ps *problems, path string, declared, code []string, verb string) {
	if code == nil {
		if c.has(path) {
			ps.add(path, "the service %s no intents; remove the section", verb)
		}
		return
	}
	for _, it := range code {
		if !slices.Contains(declared, it) {
			ps.add(path, "missing %q: the code %s it", it, verb)
		}
	}
	for i, it := range declared {
		if !slices.Contains(code, it) {
			ps.add(fmt.Sprintf("%s[%d]", path, i), "%q: the code never %s it", it, strings.TrimSuffix(verb, "s"))
		}
	}
}

func expectParameters(c *Contract, e Expect, ps *problems) {
	if e.Parameters == nil {
		if c.has("parameters") {
			ps.add("parameters", "%s reads no parameters; remove the section", e.Name)
		}
		return
	}
	want := map[string]Parameter{}
	for _, p := range e.Parameters {
		want[p.Name] = p
		path := "parameters[" + p.Name + "]"
		v, ok := c.Parameters[p.Name]
		switch {
		case !ok:
			ps.add("parameters", "missing %s (%g..%g)", p.Name, p.Min, p.Max)
		case !(v >= p.Min && v <= p.Max):
			ps.add(path, "%g is out of range %g..%g", v, p.Min, p.Max)
		}
	}
	for _, k := range sortedKeys(c.Parameters) {
		if _, ok := want[k]; !ok {
			ps.add("parameters["+k+"]", "unknown parameter (the code reads: %s)", strings.Join(sortedKeys(want), ", "))
		}
	}
}

// CompareFSM compares a declared state machine with the code's and returns
// every difference, sorted: the initial state, states declared but unknown
// to the code or missing, transitions declared that the code never makes
// and transitions the code makes that are not declared. The machines' names
// are not compared.
func CompareFSM(declared, code StateMachine) []string {
	var out []string
	for _, d := range compareFSM(declared, code) {
		out = append(out, d.msg)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

type fsmDiff struct{ path, msg string }

// compareFSM is CompareFSM with the field path of each difference: the
// declared item that is wrong, or the list an item is missing from.
func compareFSM(declared, code StateMachine) []fsmDiff {
	var out []fsmDiff
	add := func(path, format string, args ...any) {
		out = append(out, fsmDiff{stateMachinePath + path, fmt.Sprintf(format, args...)})
	}
	if declared.Initial != code.Initial {
		add(".initial", "initial state %q, the code's is %q", declared.Initial, code.Initial)
	}
	for i, s := range declared.States {
		if !slices.Contains(code.States, s) {
			add(fmt.Sprintf(".states[%d]", i), "state %q is declared but unknown to the code", s)
		}
	}
	for _, s := range code.States {
		if !slices.Contains(declared.States, s) {
			add(".states", "state %q is missing from the declaration", s)
		}
	}
	for i, t := range declared.Transitions {
		if !slices.Contains(code.Transitions, t) {
			add(fmt.Sprintf(".transitions[%d]", i), "transition %s is declared but the code never makes it", t)
		}
	}
	for _, t := range code.Transitions {
		if !slices.Contains(declared.Transitions, t) {
			add(".transitions", "transition %s is made by the code but not declared", t)
		}
	}
	return out
}
