package effect

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/store"
)

// Item is one consumed record on its way through the effect.
type Item struct {
	Msg *bus.Message
	// CorrelationID is the intent record's correlation id, else the one the
	// runner found for the record (the JSON body's, the correlation_id
	// header's or a fresh v4).
	CorrelationID uuid.UUID
	// Intent is the decoded intent; nil when the record is not one.
	Intent *pipeline.Intent
	// Write is what the intent asks of the projection (when Err is nil).
	Write store.Write
	// Err is set for a record that can never be applied (a content error);
	// it goes to the DLQ. With Intent set it is answered by a failed result.
	Err error
	// Code is the result error code for Err.
	Code string
	// FailuresOnly is set when the record asks for a result only if the
	// intent fails (pipeline.HeaderResults): the orchestrator routed it
	// untracked and nothing waits for its success.
	FailuresOnly bool

	// result is the intent's final result, once known.
	result *pipeline.EffectResult
}

// CodeInvalidTarget answers an intent of another backend (spec 6.1
// INVALID_TARGET_BACKEND).
const CodeInvalidTarget = "INVALID_TARGET_BACKEND"

var states = map[string]bool{
	"pending_registration": true, "accepted": true, "awaiting_ack": true, "rejected": true,
	"ack_timed_out": true, "ack_received": true, "active": true, "liveness_expired": true,
}

var nodeTypes = map[string]bool{"effect": true, "compute": true, "reducer": true, "orchestrator": true}

// Decode turns a postgres-intents record into an Item. It never fails:
// problems are recorded in Item.Err as content errors.
func Decode(msg *bus.Message) *Item {
	it := &Item{Msg: msg, FailuresOnly: pipeline.FailuresOnly(msg.Headers)}
	r, err := pipeline.DecodeIntentRecord(msg.Headers, msg.Value)
	if err != nil {
		it.CorrelationID = correlationOf(msg)
		it.Err, it.Code = infraerr.ContentWrap("postgres intent", err), store.CodeUpsert
		return it
	}
	it.CorrelationID = r.CorrelationID
	if it.CorrelationID == uuid.Nil {
		it.CorrelationID = correlationOf(msg)
	}
	in := r.Intent
	it.Intent = in
	if pipeline.Backend(in.IntentType) != store.Backend {
		it.Err = infraerr.Content("intent_type", fmt.Sprintf("%q is not a postgres intent", in.IntentType))
		it.Code = CodeInvalidTarget
		return it
	}
	w, err := toWrite(in)
	if err != nil {
		it.Err, it.Code = err, store.CodeUpsert
		return it
	}
	it.Write = *w
	return it
}

// correlationOf is the correlation id of a record whose intent carries
// none or does not decode: the message's (bus.FromConsumerMessage), else a
// fresh one.
func correlationOf(msg *bus.Message) uuid.UUID {
	if msg.CorrelationID != uuid.Nil {
		return msg.CorrelationID
	}
	return uuid.New()
}

func toWrite(in *pipeline.Intent) (*store.Write, error) {
	if in.Sequence < 0 {
		return nil, infraerr.Content("sequence", "must be >= 0")
	}
	switch in.IntentType {
	case pipeline.PostgresUpsert:
		var p pipeline.PostgresUpsertPayload
		if err := json.Unmarshal(in.Payload, &p); err != nil {
			return nil, infraerr.ContentWrap("postgres intent: payload", err)
		}
		r, d := p.Record, p.Record.Data
		if r.EntityID != in.NodeID {
			return nil, infraerr.Content("payload.record.entity_id", "differs from the intent's node_id")
		}
		w := &store.Write{
			Kind: store.Upsert, NodeID: in.NodeID, Domain: r.Domain, Sequence: in.Sequence,
			State: r.CurrentState, AckDeadline: tp(d.AckDeadline), LivenessDeadline: tp(d.LivenessDeadline),
			LastHeartbeatAt: tp(d.LastHeartbeatAt), AckTimeoutEmittedAt: tp(d.AckTimeoutEmittedAt),
			LivenessTimeoutEmittedAt: tp(d.LivenessTimeoutEmittedAt), UpdatedAt: d.UpdatedAt.UTC(),
			NodeType: r.NodeType, RegisteredAt: d.RegisteredAt.UTC(), AttemptID: d.LastAppliedEventID,
			NodeVersion: d.NodeVersion, Capabilities: d.Capabilities, Endpoints: d.Endpoints, NodeName: d.NodeName,
			ContractType: d.ContractType, ContractVersion: d.ContractVersion,
			IntentTypes: d.IntentTypes, Protocols: d.Protocols, CapabilityTags: d.CapabilityTags,
			IntrospectionExtras: d.IntrospectionExtras,
			SubscribeTopics:     d.SubscribeTopics, PublishTopics: d.PublishTopics,
		}
		// An empty contract type or version says "none", which the table
		// spells NULL (contract_type is constrained to a set of names).
		if w.ContractType != nil && *w.ContractType == "" {
			w.ContractType = nil
		}
		if w.ContractVersion != nil && *w.ContractVersion == "" {
			w.ContractVersion = nil
		}
		if w.ContractType != nil && !slices.Contains(store.ContractTypes, *w.ContractType) {
			return nil, infraerr.Content("payload.record.data.contract_type", "must be one of "+strings.Join(store.ContractTypes, ", "))
		}
		if d.CorrelationID != uuid.Nil {
			c := d.CorrelationID
			w.CorrelationID = &c
		}
		if w.NodeVersion == "" {
			w.NodeVersion = "1.0.0"
		}
		if len(w.Capabilities) > 0 && string(w.Capabilities) != "null" {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(w.Capabilities, &obj); err != nil {
				return nil, infraerr.Content("payload.record.data.capabilities", "must be a JSON object")
			}
		}
		if x := w.IntrospectionExtras; len(x) > 0 && string(x) != "null" {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(x, &obj); err != nil {
				return nil, infraerr.Content("payload.record.data.introspection_extras", "must be a JSON object")
			}
		}
		return w, check(w, d.RegisteredAt, d.UpdatedAt, "payload.record")
	case pipeline.PostgresUpdate:
		// The protobuf form carries it as fields: no JSON to decode.
		p, err := in.PostgresUpdatePayload()
		if err != nil {
			return nil, infraerr.ContentWrap("postgres intent: payload", err)
		}
		if p.EntityID != in.NodeID {
			return nil, infraerr.Content("payload.entity_id", "differs from the intent's node_id")
		}
		u := p.Updates
		w := &store.Write{
			Kind: store.Update, NodeID: in.NodeID, Domain: p.Domain, Sequence: in.Sequence,
			State: u.CurrentState, AckDeadline: tp(u.AckDeadline), LivenessDeadline: tp(u.LivenessDeadline),
			LastHeartbeatAt: tp(u.LastHeartbeatAt), AckTimeoutEmittedAt: tp(u.AckTimeoutEmittedAt),
			LivenessTimeoutEmittedAt: tp(u.LivenessTimeoutEmittedAt), UpdatedAt: u.UpdatedAt.UTC(),
			NodeType: u.NodeType, RegisteredAt: u.RegisteredAt.UTC(), AttemptID: u.LastAppliedEventID,
		}
		return w, check(w, u.RegisteredAt, u.UpdatedAt, "payload.updates")
	}
	return nil, infraerr.Content("intent_type", fmt.Sprintf("%q is not supported by the projector", in.IntentType))
}

// check refuses what the table would refuse anyway, so that the failure is
// named by field and never reaches the database.
func check(w *store.Write, registeredAt, updatedAt envelope.Time, at string) error {
	switch {
	case w.Domain != "" && w.Domain != store.Domain:
		return infraerr.Content(at+".domain", fmt.Sprintf("must be %q", store.Domain))
	case !states[w.State]:
		return infraerr.Content(at+".current_state", "not a registration state")
	case !nodeTypes[w.NodeType]:
		return infraerr.Content(at+".node_type", "must be effect, compute, reducer or orchestrator")
	case w.AttemptID == uuid.Nil:
		return infraerr.Content(at+".last_applied_event_id", "missing")
	case registeredAt.IsZero():
		return infraerr.Content(at+".registered_at", "missing")
	case updatedAt.IsZero():
		return infraerr.Content(at+".updated_at", "missing")
	case len(w.NodeVersion) > 32:
		return infraerr.Content(at+".data.node_version", "longer than 32 characters")
	}
	w.Domain = store.Domain
	return nil
}

func tp(t *envelope.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
