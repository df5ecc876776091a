// Package expect is the reducer's side of its contract
// (contracts/reducer/contract.yaml): what the code reads and writes, the
// intent types its decision code emits, the state machine it implements and
// the parameters it reads. pkg/contract checks the contract against it when
// the reducer starts and in `onexctl contracts validate`, so the file cannot
// drift from the code.
package expect

import (
	"github.com/omninode/onex-fleet/pkg/contract"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/reducer/decide"
	"github.com/omninode/onex-fleet/services/reducer/internal/wire"
)

// Service is the reducer's directory under the contracts directory.
const Service = "reducer"

// Parameter names (the contract's parameters section). Each is the default of
// the environment variable named beside it.
const (
	ParamAckTimeout          = "ack_timeout_seconds"       // ONEX_ACK_TIMEOUT_SECONDS
	ParamLivenessInterval    = "liveness_interval_seconds" // ONEX_LIVENESS_INTERVAL_SECONDS
	ParamLivenessWindow      = "liveness_window_seconds"   // ONEX_LIVENESS_WINDOW_SECONDS
	ParamMassExpiryShare     = "mass_expiry_share"         // ONEX_MASS_EXPIRY_SHARE
	ParamMassExpiryMinActive = "mass_expiry_min_active"    // ONEX_MASS_EXPIRY_MIN_ACTIVE
	// Accepted-event resends while a node awaits its ack (0 disables them).
	ParamAcceptedResendInitial = "accepted_resend_initial_seconds" // ONEX_ACCEPTED_RESEND_INITIAL_SECONDS
	ParamAcceptedResendMax     = "accepted_resend_max_seconds"     // ONEX_ACCEPTED_RESEND_MAX_SECONDS
)

// Contract returns what the reducer's code needs from its contract.
func Contract() contract.Expect {
	return contract.Expect{
		Name:     "reducer",
		NodeType: contract.NodeTypeReducer,
		// The input, and the snapshot and liveness topics read back on
		// every assignment.
		Subscribes:     []string{topics.ReducerInput, topics.RegistrationSnapshots, topics.RegistrationLiveness},
		Publishes:      wire.OutputTopics(),
		EmittedIntents: intentTypes(),
		StateMachine:   StateMachine(),
		Parameters: []contract.Parameter{
			{Name: ParamAckTimeout, Min: 1, Max: 86400},
			{Name: ParamLivenessInterval, Min: 1, Max: 86400},
			{Name: ParamLivenessWindow, Min: 1, Max: 86400},
			// The share is a fraction of ACTIVE nodes, strictly inside (0, 1).
			{Name: ParamMassExpiryShare, Min: 0.01, Max: 0.99},
			{Name: ParamMassExpiryMinActive, Min: 0, Max: 1_000_000},
			{Name: ParamAcceptedResendInitial, Min: 0, Max: 3600},
			{Name: ParamAcceptedResendMax, Min: 0, Max: 3600},
		},
		RetryPolicy: true,
	}
}

// StateMachine is the registration FSM the decision code implements
// (decide.States, decide.Transitions).
func StateMachine() *contract.StateMachine {
	m := &contract.StateMachine{Name: "registration_fsm", Initial: string(decide.None)}
	for _, s := range decide.States {
		m.States = append(m.States, string(s))
	}
	for _, t := range decide.Transitions {
		m.Transitions = append(m.Transitions, contract.Transition{From: string(t.From), Trigger: string(t.Trigger), To: string(t.To)})
	}
	return m
}

func intentTypes() []string {
	out := make([]string, 0, len(decide.IntentTypes))
	for _, it := range decide.IntentTypes {
		out = append(out, string(it))
	}
	return out
}
