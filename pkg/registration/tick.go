package registration

import (
	"fmt"

	"github.com/google/uuid"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
)

// RuntimeTick is ModelRuntimeTick, published bare (not enveloped) on
// onex.intent.platform.runtime-tick.v1, keyed by scheduler_id. All fields
// are required.
type RuntimeTick struct {
	// Now is the authoritative time for timeout evaluation.
	Now envelope.Time
	// TickID becomes the causation_id of timeout events.
	TickID uuid.UUID
	// SequenceNumber is >= 0, monotonic per scheduler.
	SequenceNumber int
	ScheduledAt    envelope.Time
	CorrelationID  uuid.UUID
	// SchedulerID is non-empty.
	SchedulerID string
	// TickIntervalMs is 100..60000.
	TickIntervalMs int
}

func (t *RuntimeTick) pyName() string { return "ModelRuntimeTick" }

func (t *RuntimeTick) spec() pyjson.Spec {
	return pyjson.Spec{Extra: pyjson.ExtraForbid, Fields: []pyjson.Field{
		pyjson.Req("now", &t.Now, timeC),
		pyjson.Req("tick_id", &t.TickID, pyjson.UUID),
		pyjson.Req("sequence_number", &t.SequenceNumber, pyjson.Int),
		pyjson.Req("scheduled_at", &t.ScheduledAt, timeC),
		pyjson.Req("correlation_id", &t.CorrelationID, pyjson.UUID),
		pyjson.Req("scheduler_id", &t.SchedulerID, pyjson.String),
		pyjson.Req("tick_interval_ms", &t.TickIntervalMs, pyjson.Int),
	}}
}

// Validate checks sequence_number >= 0, a non-empty scheduler_id and
// tick_interval_ms within 100..60000.
func (t *RuntimeTick) Validate() error {
	return firstErr(
		intMin("sequence_number", t.SequenceNumber, 0),
		strLen("scheduler_id", t.SchedulerID, 1, -1),
		intRange("tick_interval_ms", t.TickIntervalMs, 100, 60000),
	)
}

// DecodeTick decodes a runtime-tick record value in either shape a consumer
// can meet: the bare tick the Python scheduler publishes, or a tick wrapped
// in an event envelope. A top-level "payload" key selects the envelope form
// (a bare tick cannot have one: the model forbids unknown keys); errors
// inside an envelope are reported at "payload.<field>".
func DecodeTick(value []byte) (*RuntimeTick, error) {
	if err := pyjson.CheckSyntax(value); err != nil {
		return nil, fmt.Errorf("ModelRuntimeTick: %w", err)
	}
	members, err := pyjson.ParseMembers(value)
	if err != nil {
		return nil, pyjson.WithModel("ModelRuntimeTick", err)
	}
	if _, enveloped := pyjson.Members(members).Get("payload"); !enveloped {
		return DecodeRuntimeTick(value)
	}
	env, err := envelope.Decode(value)
	if err != nil {
		return nil, err
	}
	return envelope.DecodePayload(env, DecodeRuntimeTick)
}
