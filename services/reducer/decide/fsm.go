package decide

import "fmt"

// None stands for "no state yet" (a node the reducer has never seen) as the
// source of a transition.
const None State = "none"

// Trigger names the input of a transition.
type Trigger string

// The decision inputs (and TriggerOperator, operator.go).
const (
	TriggerIntrospection Trigger = "introspection"
	TriggerAck           Trigger = "ack"
	TriggerHeartbeat     Trigger = "heartbeat"
	TriggerTick          Trigger = "tick"
)

// Transition is one state change the decision code can make.
type Transition struct {
	From    State   `yaml:"from"`
	Trigger Trigger `yaml:"trigger"`
	To      State   `yaml:"to"`
}

func (t Transition) String() string { return fmt.Sprintf("%s --%s--> %s", t.From, t.Trigger, t.To) }

// Transitions is every state change the decision functions make. The
// reducer's contract.yaml declares the same set; the service refuses to start
// when they differ (services/reducer/expect hands this list to pkg/contract),
// and the property test checks that no decision makes a change outside it.
var Transitions = []Transition{
	{None, TriggerIntrospection, AwaitingAck},
	{LivenessExpired, TriggerIntrospection, AwaitingAck},
	{Rejected, TriggerIntrospection, AwaitingAck},
	{AckTimedOut, TriggerIntrospection, AwaitingAck},
	// A node that restarted, or changed, before it acked: a new attempt
	// (awaiting_ack → awaiting_ack is no transition).
	{Accepted, TriggerIntrospection, AwaitingAck},
	// An introspection whose node type is not projectable (runtime_host);
	// rejected → rejected is no transition (the state stays).
	{None, TriggerIntrospection, Rejected},
	{LivenessExpired, TriggerIntrospection, Rejected},
	{AckTimedOut, TriggerIntrospection, Rejected},
	{Accepted, TriggerAck, Active},
	{AwaitingAck, TriggerAck, Active},
	{Accepted, TriggerTick, AckTimedOut},
	{AwaitingAck, TriggerTick, AckTimedOut},
	{Active, TriggerTick, LivenessExpired},
	// An introspection with reason shutdown (the node's SIGTERM): out of
	// Consul at once, in the terminal liveness_expired (no deregistered
	// state in the Python package's EnumRegistrationState).
	{Active, TriggerIntrospection, LivenessExpired},
	{Accepted, TriggerIntrospection, LivenessExpired},
	{AwaitingAck, TriggerIntrospection, LivenessExpired},
	// An operator's deregister or evict (pkg/operator): out of Consul at
	// once, as at a shutdown.
	{Accepted, TriggerOperator, LivenessExpired},
	{AwaitingAck, TriggerOperator, LivenessExpired},
	{AckReceived, TriggerOperator, LivenessExpired},
	{Active, TriggerOperator, LivenessExpired},
}
