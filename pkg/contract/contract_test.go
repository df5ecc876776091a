package contract

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omninode/onex-fleet/pkg/retry"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// routerDoc is an orchestrator-like contract: handlers, intent routing,
// result aggregation, a retry policy.
const routerDoc = `name: router
node_type: ORCHESTRATOR_GENERIC
contract_version: {major: 1, minor: 2, patch: 3}
event_bus:
  subscribe_topics:
    - topic: onex.intent.platform.registration-intents.v1
    - topic: onex.evt.platform.effect-results.v1
  publish_topics:
    - topic: onex.cmd.platform.postgres-intents.v1
    - topic: onex.cmd.platform.consul-intents.v1
    - topic: onex.evt.platform.node-registration-result.v1
  dlq_topics:
    - topic: onex.dlq.omnibase-infra.intents.v1
handler_routing:
  - {topic: onex.intent.platform.registration-intents.v1, handler: intent_router}
  - {topic: onex.evt.platform.effect-results.v1, handler: result_aggregator}
intent_routing:
  postgres.upsert_registration: onex.cmd.platform.postgres-intents.v1
  consul.register: onex.cmd.platform.consul-intents.v1
result_aggregation:
  strategy: all_or_partial
  attempt_intents: [postgres.upsert_registration, consul.register]
  result_topic: onex.evt.platform.node-registration-result.v1
error_handling:
  retry_policy: {max_attempts: 5, initial_delay_ms: 1000, max_delay_ms: 30000, exponential_base: 2, jitter_factor: 0.25}
`

var routerExpect = Expect{
	Name: "router", NodeType: NodeTypeOrchestrator,
	Handlers:      []Handler{{Name: "intent_router", Topics: 1}, {Name: "result_aggregator", Topics: 1, Only: []string{topics.EffectResults}}},
	Publishes:     []string{topics.NodeRegistrationResult},
	RoutedIntents: []string{"postgres.upsert_registration", "consul.register"}, ResultAggregation: true, RetryPolicy: true,
}

// machineDoc is a reducer-like contract: emitted intents, a state machine,
// parameters.
const machineDoc = `name: machine
node_type: REDUCER_GENERIC
contract_version: {major: 1, minor: 0, patch: 0}
event_bus:
  subscribe_topics:
    - topic: onex.cmd.platform.reducer-input.v1
  publish_topics:
    - topic: onex.intent.platform.registration-intents.v1
emitted_intents:
  - postgres.upsert_registration
  - consul.register
state_machine:
  name: light
  initial: none
  states: [off, on]
  transitions:
    - {from: none, trigger: install, to: off}
    - {from: off, trigger: flip, to: on}
    - {from: on, trigger: flip, to: off}
parameters:
  brightness: 0.5
error_handling:
  retry_policy: {max_attempts: 10, initial_delay_ms: 200, max_delay_ms: 5000, exponential_base: 2, jitter_factor: 0}
`

var machineExpect = Expect{
	Name: "machine", NodeType: NodeTypeReducer, Subscribes: []string{topics.ReducerInput},
	EmittedIntents: []string{"postgres.upsert_registration", "consul.register"},
	StateMachine: &StateMachine{Name: "light", Initial: "none", States: []string{"off", "on"}, Transitions: []Transition{
		{"none", "install", "off"}, {"off", "flip", "on"}, {"on", "flip", "off"}}},
	Parameters:  []Parameter{{Name: "brightness", Min: 0, Max: 1}},
	RetryPolicy: true,
}

// dbDoc and kvDoc are effect-like contracts.
const dbDoc = `name: db
node_type: EFFECT_GENERIC
contract_version: {major: 1, minor: 0, patch: 0}
event_bus:
  subscribe_topics:
    - topic: onex.cmd.platform.postgres-intents.v1
  publish_topics:
    - topic: onex.evt.platform.effect-results.v1
handler_routing:
  - {topic: onex.cmd.platform.postgres-intents.v1, handler: db_intents}
handled_intents: [postgres.upsert_registration]
error_handling:
  circuit_breaker: {failure_threshold: 5, reset_timeout_seconds: 60}
`

const kvDoc = `name: kv
node_type: EFFECT_GENERIC
contract_version: {major: 1, minor: 0, patch: 0}
event_bus:
  subscribe_topics:
    - topic: onex.cmd.platform.consul-intents.v1
  publish_topics:
    - topic: onex.evt.platform.effect-results.v1
handled_intents: [consul.register]
`

var effectExpects = map[string]Expect{
	"db": {Name: "db", NodeType: NodeTypeEffect, Handlers: []Handler{{Name: "db_intents", Topics: 1}},
		HandledIntents: []string{"postgres.upsert_registration"}, CircuitBreaker: true},
	"kv": {Name: "kv", NodeType: NodeTypeEffect, HandledIntents: []string{"consul.register"}},
}

func parse(t *testing.T, doc string) *Contract {
	t.Helper()
	c, err := Parse("x/contract.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGoodContracts(t *testing.T) {
	for _, tc := range []struct {
		doc string
		e   Expect
	}{{routerDoc, routerExpect}, {machineDoc, machineExpect}, {dbDoc, effectExpects["db"]}, {kvDoc, effectExpects["kv"]}} {
		c := parse(t, tc.doc)
		if ps := Check(c, tc.e); len(ps) > 0 {
			t.Errorf("%s: %v", tc.e.Name, ps)
		}
	}
	c := parse(t, routerDoc)
	if c.ContractVersion.String() != "1.2.3" || c.TopicFor("result_aggregator") != topics.EffectResults ||
		c.IntentRouting["consul.register"] != topics.ConsulIntents || len(c.RouteTopics()) != 2 || len(c.DLQ()) != 1 {
		t.Errorf("decoded %+v", c)
	}
	want := retry.Policy{MaxAttempts: 5, Initial: time.Second, Max: 30 * time.Second, Multiplier: 2, Jitter: 0.25}
	if c.Retry() != want {
		t.Errorf("retry %+v, want %+v", c.Retry(), want)
	}
	if b := parse(t, dbDoc).Breaker(); b.FailureThreshold != 5 || b.ResetTimeout() != time.Minute {
		t.Errorf("breaker %+v", b)
	}
}

// TestDefects edits a good contract one defect at a time; each must be a
// problem at the named field path whose message says what is wrong.
func TestDefects(t *testing.T) {
	cases := []struct {
		name     string
		doc      string
		e        Expect
		old, new string
		path     string
		msg      string
	}{
		// Topics.
		{"bad topic name", routerDoc, routerExpect, "    - topic: onex.cmd.platform.consul-intents.v1\n", "    - topic: onex.cmd.platform.consul-intents.v1\n    - topic: Onex.Bad\n",
			"event_bus.publish_topics[2]", `topic "Onex.Bad": must be lowercase`},
		{"environment prefix", routerDoc, routerExpect, "- topic: onex.dlq.omnibase-infra.intents.v1", "- topic: dev.onex.dlq.x.v1",
			"event_bus.dlq_topics[0]", "environment prefix"},
		{"topic not in registry", routerDoc, routerExpect, "    - topic: onex.evt.platform.effect-results.v1\n  publish", "    - topic: onex.evt.platform.effect-results.v1\n    - topic: onex.evt.platform.made-up.v1\n  publish",
			"event_bus.subscribe_topics[2]", `"onex.evt.platform.made-up.v1" is not in the platform topic registry`},
		{"duplicate topic", routerDoc, routerExpect, "    - topic: onex.evt.platform.node-registration-result.v1\n", "    - topic: onex.evt.platform.node-registration-result.v1\n    - topic: onex.cmd.platform.postgres-intents.v1\n",
			"event_bus.publish_topics[3]", "already listed at [0]"},
		{"non-DLQ topic as DLQ", routerDoc, routerExpect, "- topic: onex.dlq.omnibase-infra.intents.v1", "- topic: onex.evt.platform.node-heartbeat.v1",
			"event_bus.dlq_topics[0]", "not a dead-letter topic"},
		{"no subscriptions", kvDoc, effectExpects["kv"], "  subscribe_topics:\n    - topic: onex.cmd.platform.consul-intents.v1\n", "",
			"event_bus.subscribe_topics", "empty"},
		{"code topic not published", routerDoc, routerExpect, "    - topic: onex.evt.platform.node-registration-result.v1\n", "",
			"event_bus.publish_topics", `must list "onex.evt.platform.node-registration-result.v1"`},
		// Routes.
		{"missing route", routerDoc, routerExpect, "  consul.register: onex.cmd.platform.consul-intents.v1\n", "",
			"intent_routing", `intent type "consul.register" has no route`},
		{"route to unknown topic", routerDoc, routerExpect, "consul.register: onex.cmd.platform.consul-intents.v1", "consul.register: onex.cmd.platform.vault-intents.v1",
			"intent_routing[consul.register]", `"onex.cmd.platform.vault-intents.v1" is not in the platform topic registry`},
		{"route to unpublished topic", routerDoc, routerExpect, "consul.register: onex.cmd.platform.consul-intents.v1", "consul.register: onex.cmd.platform.reducer-input.v1",
			"intent_routing[consul.register]", `route target "onex.cmd.platform.reducer-input.v1" is not in event_bus.publish_topics`},
		{"malformed intent type", routerDoc, routerExpect, "  consul.register: onex", "  consul.register: onex.cmd.platform.consul-intents.v1\n  Consul: onex",
			"intent_routing[Consul]", "<backend>.<action>"},
		{"routes in a service that routes nothing", kvDoc, effectExpects["kv"], "handled_intents", "intent_routing: {consul.register: onex.cmd.platform.consul-intents.v1}\nhandled_intents",
			"intent_routing", "routes no intents"},
		{"attempt intent without route", routerDoc, routerExpect, "[postgres.upsert_registration, consul.register]", "[postgres.upsert_registration, consul.register, vault.write]",
			"result_aggregation.attempt_intents[2]", `"vault.write" has no route`},
		{"two attempt intents of one backend", routerDoc, routerExpect, "[postgres.upsert_registration, consul.register]", "[postgres.upsert_registration, consul.register, consul.deregister]",
			"result_aggregation.attempt_intents[2]", "one intent per backend"},
		{"unknown aggregation strategy", routerDoc, routerExpect, "strategy: all_or_partial", "strategy: all_or_none",
			"result_aggregation.strategy", "want all_or_partial"},
		{"step timeout out of range", routerDoc, routerExpect, "  result_topic: onex.evt.platform.node-registration-result.v1", "  result_topic: onex.evt.platform.node-registration-result.v1\n  step_timeout_ms: 600000",
			"result_aggregation.step_timeout_ms", "want 1..300000"},
		// Handlers.
		{"unknown handler", routerDoc, routerExpect, "handler: intent_router}", "handler: intent_forwarder}",
			"handler_routing[0].handler", `unknown handler "intent_forwarder"`},
		{"handler on unsubscribed topic", routerDoc, routerExpect, "{topic: onex.intent.platform.registration-intents.v1, handler: intent_router}", "{topic: onex.cmd.platform.consul-intents.v1, handler: intent_router}",
			"handler_routing[0].topic", "is not in event_bus.subscribe_topics"},
		{"handler without topic", routerDoc, routerExpect, "  - {topic: onex.evt.platform.effect-results.v1, handler: result_aggregator}\n", "",
			"handler_routing", `no topic for handler "result_aggregator"`},
		{"handler on a topic it cannot serve", routerDoc, routerExpect, "intent_router}\n  - {topic: onex.evt.platform.effect-results.v1, handler: result_aggregator}", "result_aggregator}\n  - {topic: onex.evt.platform.effect-results.v1, handler: intent_router}",
			"handler_routing[0].topic", `handler "result_aggregator" cannot serve`},
		{"two handlers for one topic", routerDoc, routerExpect, "{topic: onex.evt.platform.effect-results.v1, handler: result_aggregator}", "{topic: onex.intent.platform.registration-intents.v1, handler: result_aggregator}",
			"handler_routing[1].topic", "already has a handler"},
		// Intents.
		{"emitted intent the code never emits", machineDoc, machineExpect, "  - consul.register\n", "  - consul.register\n  - consul.deregister\n",
			"emitted_intents[2]", `"consul.deregister": the code never emit`},
		{"emitted intent not declared", machineDoc, machineExpect, "  - consul.register\n", "",
			"emitted_intents", `missing "consul.register"`},
		{"handled intent twice", kvDoc, effectExpects["kv"], "[consul.register]", "[consul.register, consul.register]",
			"handled_intents[1]", "listed twice"},
		// State machine.
		{"FSM: transition the code does not make", machineDoc, machineExpect, "    - {from: on, trigger: flip, to: off}\n", "    - {from: on, trigger: flip, to: off}\n    - {from: on, trigger: smash, to: off}\n",
			"state_machine.transitions[3]", "transition on --smash--> off is declared but the code never makes it"},
		{"FSM: transition the code makes is missing", machineDoc, machineExpect, "    - {from: on, trigger: flip, to: off}\n", "",
			"state_machine.transitions", "transition on --flip--> off is made by the code but not declared"},
		{"FSM: unknown state", machineDoc, machineExpect, "states: [off, on]", "states: [off, on, dim]",
			"state_machine.states[2]", `state "dim" is declared but unknown to the code`},
		{"FSM: other initial state", machineDoc, machineExpect, "initial: none", "initial: off",
			"state_machine.initial", `initial state "off", the code's is "none"`},
		{"FSM: transition to an undeclared state", machineDoc, machineExpect, "{from: off, trigger: flip, to: on}", "{from: off, trigger: flip, to: broken}",
			"state_machine.transitions[1].to", `"broken" is not a declared state`},
		{"FSM: duplicate transition", machineDoc, machineExpect, "    - {from: on, trigger: flip, to: off}\n", "    - {from: on, trigger: flip, to: off}\n    - {from: on, trigger: flip, to: off}\n",
			"state_machine.transitions[3]", "already declared at transitions[2]"},
		{"FSM in a service without one", routerDoc, routerExpect, "error_handling:", "state_machine: {name: x, initial: a, states: [a]}\nerror_handling:",
			"state_machine", "has no state machine"},
		// Strict decoding.
		{"unknown key", routerDoc, routerExpect, "error_handling:", "error_handlin:",
			"error_handlin", "unknown key"},
		{"unknown nested key", routerDoc, routerExpect, "max_attempts: 5,", "max_attempts: 5, max_atempts: 5,",
			"error_handling.retry_policy.max_atempts", "unknown key"},
		{"wrong shape", routerDoc, routerExpect, "  subscribe_topics:\n    - topic: onex.intent.platform.registration-intents.v1\n    - topic: onex.evt.platform.effect-results.v1\n",
			"  subscribe_topics: onex.evt.platform.effect-results.v1\n", "event_bus.subscribe_topics", "must be a list"},
		{"string for a number", routerDoc, routerExpect, "max_attempts: 5,", "max_attempts: five,",
			"error_handling.retry_policy.max_attempts", `must be an integer, got "five"`},
		// Error handling.
		{"retry attempts out of range", routerDoc, routerExpect, "max_attempts: 5,", "max_attempts: 0,",
			"error_handling.retry_policy.max_attempts", "0 is out of range 1..10"},
		{"retry base out of range", routerDoc, routerExpect, "exponential_base: 2,", "exponential_base: 8,",
			"error_handling.retry_policy.exponential_base", "8 is out of range 1.5..4"},
		{"retry jitter out of range", routerDoc, routerExpect, "jitter_factor: 0.25}", "jitter_factor: 0.9}",
			"error_handling.retry_policy.jitter_factor", "0.9 is out of range 0..0.5"},
		{"retry max below initial", routerDoc, routerExpect, "initial_delay_ms: 1000, max_delay_ms: 30000", "initial_delay_ms: 20000, max_delay_ms: 10000",
			"error_handling.retry_policy.max_delay_ms", "below initial_delay_ms"},
		{"retry field missing", routerDoc, routerExpect, ", jitter_factor: 0.25}", "}",
			"error_handling.retry_policy.jitter_factor", "missing"},
		{"retry section missing", routerDoc, routerExpect, "error_handling:\n  retry_policy: {max_attempts: 5, initial_delay_ms: 1000, max_delay_ms: 30000, exponential_base: 2, jitter_factor: 0.25}\n", "",
			"error_handling.retry_policy", "missing: router reads it"},
		{"breaker threshold out of range", dbDoc, effectExpects["db"], "failure_threshold: 5", "failure_threshold: 0",
			"error_handling.circuit_breaker.failure_threshold", "0 is out of range 1..100"},
		{"breaker reset out of range", dbDoc, effectExpects["db"], "reset_timeout_seconds: 60", "reset_timeout_seconds: 86400",
			"error_handling.circuit_breaker.reset_timeout_seconds", "86400 is out of range 1..3600"},
		{"breaker the code does not have", kvDoc, effectExpects["kv"], "handled_intents", "error_handling: {circuit_breaker: {failure_threshold: 5, reset_timeout_seconds: 60}}\nhandled_intents",
			"error_handling.circuit_breaker", "does not use it"},
		// Parameters and identity.
		{"parameter out of range", machineDoc, machineExpect, "brightness: 0.5", "brightness: 1.5",
			"parameters[brightness]", "1.5 is out of range 0..1"},
		{"unknown parameter", machineDoc, machineExpect, "brightness: 0.5", "brightness: 0.5\n  colour: 3",
			"parameters[colour]", "unknown parameter"},
		{"parameter missing", machineDoc, machineExpect, "  brightness: 0.5\n", "  {}\n",
			"parameters", "missing brightness"},
		{"wrong name", routerDoc, routerExpect, "name: router", "name: rooter", "name", `"rooter", want "router"`},
		{"wrong node type", routerDoc, routerExpect, "node_type: ORCHESTRATOR_GENERIC", "node_type: EFFECT_GENERIC", "node_type", "want ORCHESTRATOR_GENERIC"},
		{"no version", routerDoc, routerExpect, "{major: 1, minor: 2, patch: 3}", "{major: 0, minor: 0, patch: 0}", "contract_version", "missing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(tc.doc, tc.old, tc.new, 1)
			if doc == tc.doc {
				t.Fatalf("edit %q did not apply", tc.old)
			}
			p := filepath.Join(t.TempDir(), "svc", FileName)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(p, tc.e)
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("Load = %v, want an *Error", err)
			}
			for _, pr := range cerr.Problems {
				if pr.Path == tc.path && strings.Contains(pr.Msg, tc.msg) {
					if pr.File != p {
						t.Errorf("problem names file %q, want %q", pr.File, p)
					}
					if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tc.msg) || strings.Contains(err.Error(), "\n") {
						t.Errorf("error text %q: want one line naming the file and the problem", err)
					}
					return
				}
			}
			t.Fatalf("no problem at %s saying %q; got:\n%s", tc.path, tc.msg, strings.Join(strs(cerr.Problems), "\n"))
		})
	}
}

func strs(ps []Problem) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func TestProblemLines(t *testing.T) {
	doc := strings.Replace(routerDoc, "max_attempts: 5,", "max_attempts: 50,", 1)
	c := parse(t, doc)
	ps := Check(c, routerExpect)
	if len(ps) != 1 {
		t.Fatalf("problems %v", ps)
	}
	want := strings.Count(doc[:strings.Index(doc, "max_attempts")], "\n") + 1
	if ps[0].Line != want {
		t.Errorf("line %d, want %d", ps[0].Line, want)
	}
	if got := ps[0].String(); got != "x/contract.yaml:"+strconv.Itoa(want)+": error_handling.retry_policy.max_attempts: 50 is out of range 1..10" {
		t.Errorf("String() = %q", got)
	}
}

func TestDocumentProblems(t *testing.T) {
	for _, tc := range []struct{ name, doc, msg string }{
		{"empty", "", "the document is empty"},
		{"not a mapping", "- a\n- b\n", "must be a mapping"},
		{"two documents", routerDoc + "---\nname: other\n", "more than one YAML document"},
		{"broken YAML", "name: [\n", "invalid YAML"},
		{"duplicate key", "name: a\nname: b\n", "name: defined twice (first at line 1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "f.yaml") {
				t.Fatalf("err = %v, want %q", err, tc.msg)
			}
		})
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "none.yaml")); err == nil || !strings.Contains(err.Error(), "none.yaml") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestCompareFSM(t *testing.T) {
	code := *machineExpect.StateMachine
	if d := CompareFSM(code, code); len(d) != 0 {
		t.Fatalf("a machine differs from itself: %v", d)
	}
	declared := StateMachine{Initial: "none", States: []string{"on", "dim"}, Transitions: []Transition{{"none", "install", "off"}, {"on", "dim", "dim"}}}
	got := CompareFSM(declared, code)
	want := []string{
		`state "dim" is declared but unknown to the code`,
		`state "off" is missing from the declaration`,
		"transition off --flip--> on is made by the code but not declared",
		"transition on --dim--> dim is declared but the code never makes it",
		"transition on --flip--> off is made by the code but not declared",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
