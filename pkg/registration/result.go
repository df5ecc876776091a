package registration

import (
	"github.com/google/uuid"
	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
)

// OrchestratorOutput is ModelOrchestratorOutput, the outcome shape a Go
// fleet emits on onex.evt.platform.node-registration-result.v1 (no Python
// consumer depends on it; extra="forbid").
type OrchestratorOutput struct {
	// CorrelationID is required.
	CorrelationID uuid.UUID
	// Status is required: success or failed.
	Status          ResultStatus
	PostgresApplied bool
	PostgresError   *string
	IntentResults   []IntentResult
	// TotalExecutionTimeMs is required, >= 0.
	TotalExecutionTimeMs float64
}

func (o *OrchestratorOutput) pyName() string { return "ModelOrchestratorOutput" }

func (o *OrchestratorOutput) spec() pyjson.Spec {
	return forbid([]pyjson.Field{
		pyjson.Req("correlation_id", &o.CorrelationID, pyjson.UUID),
		pyjson.Req("status", &o.Status, resultStatusC),
		pyjson.Prop("postgres_applied", &o.PostgresApplied, pyjson.Bool),
		pyjson.Prop("postgres_error", &o.PostgresError, nullString),
		pyjson.Prop("intent_results", &o.IntentResults, intentResultsC),
		pyjson.Req("total_execution_time_ms", &o.TotalExecutionTimeMs, pyjson.Float),
	})
}

// Validate checks status, timings and every intent result.
func (o *OrchestratorOutput) Validate() error {
	for i := range o.IntentResults {
		if err := o.IntentResults[i].Validate(); err != nil {
			return nested("intent_results", pyjson.AtIndex(i, err))
		}
	}
	return firstErr(
		enumField("status", o.Status),
		floatMin0("total_execution_time_ms", o.TotalExecutionTimeMs),
	)
}

// IntentResult is ModelIntentExecutionResult, one entry of
// OrchestratorOutput.IntentResults (extra="forbid").
type IntentResult struct {
	// IntentKind is required, non-empty.
	IntentKind string
	// Success is required.
	Success bool
	Error   *string
	// ExecutionTimeMs is required, >= 0.
	ExecutionTimeMs float64
}

func (r *IntentResult) pyName() string { return "ModelIntentExecutionResult" }

func (r *IntentResult) spec() pyjson.Spec {
	return forbid([]pyjson.Field{
		pyjson.Req("intent_kind", &r.IntentKind, pyjson.String),
		pyjson.Req("success", &r.Success, pyjson.Bool),
		pyjson.Prop("error", &r.Error, nullString),
		pyjson.Req("execution_time_ms", &r.ExecutionTimeMs, pyjson.Float),
	})
}

// Validate checks intent_kind is non-empty and execution_time_ms >= 0.
func (r *IntentResult) Validate() error {
	return firstErr(
		strLen("intent_kind", r.IntentKind, 1, -1),
		floatMin0("execution_time_ms", r.ExecutionTimeMs),
	)
}

var intentResultC = object[IntentResult]()
