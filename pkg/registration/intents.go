package registration

import (
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
)

// Intent payload discriminators (the payload's intent_type literal).
const (
	IntentPostgresUpsertRegistration = "postgres.upsert_registration"
	IntentPostgresUpdateRegistration = "postgres.update_registration"
	IntentConsulRegister             = "consul.register"
	IntentConsulDeregister           = "consul.deregister"
)

// Intent is ModelIntent, the in-process instruction a reducer hands to an
// effect (extra="forbid"). In registration, IntentType equals the payload's
// intent_type.
type Intent struct {
	// IntentID defaults to a random v4.
	IntentID uuid.UUID
	// IntentType is required, 1..100 characters.
	IntentType string
	// Target is required, 1..200 characters (e.g. "postgres://...").
	Target string
	// Payload is required: a JSON object with a string "intent_type".
	Payload json.RawMessage
	// Priority is 1..10, default 1.
	Priority int
	LeaseID  *uuid.UUID
	// Epoch is nil or >= 0.
	Epoch *int
}

func (i *Intent) pyName() string { return "ModelIntent" }

func (i *Intent) spec() pyjson.Spec {
	return pyjson.Spec{Extra: pyjson.ExtraForbid, Fields: []pyjson.Field{
		pyjson.DefFunc("intent_id", &i.IntentID, pyjson.UUID, newUUID),
		pyjson.Req("intent_type", &i.IntentType, pyjson.String),
		pyjson.Req("target", &i.Target, pyjson.String),
		pyjson.Req("payload", &i.Payload, pyjson.RawObject),
		pyjson.Def("priority", &i.Priority, pyjson.Int, 1),
		pyjson.Prop("lease_id", &i.LeaseID, nullUUID),
		pyjson.Prop("epoch", &i.Epoch, nullInt),
	}}
}

// Validate checks lengths, priority, epoch and that the payload exposes a
// string intent_type.
func (i *Intent) Validate() error {
	_, perr := i.PayloadIntentType()
	return firstErr(
		strLen("intent_type", i.IntentType, 1, 100),
		strLen("target", i.Target, 1, 200),
		perr,
		intRange("priority", i.Priority, 1, 10),
		optIntMin("epoch", i.Epoch, 0),
	)
}

// PayloadIntentType returns the payload's intent_type, or a *FieldError
// naming payload / payload.intent_type.
func (i *Intent) PayloadIntentType() (string, error) {
	if len(i.Payload) == 0 {
		return "", fieldf("payload", "field required")
	}
	members, err := pyjson.ParseMembers(i.Payload)
	if err != nil {
		return "", nested("payload", err)
	}
	raw, ok := pyjson.Members(members).Get("intent_type")
	if !ok {
		return "", fieldf("payload.intent_type", "field required")
	}
	s, err := pyjson.String.Decode(raw)
	if err != nil {
		return "", nested("payload.intent_type", err)
	}
	return s, nil
}

// IntentPayload is implemented by the typed intent payloads of this
// package.
type IntentPayload interface {
	// IntentType returns the payload's intent_type literal.
	IntentType() string
	json.Marshaler
	Validate() error
}

// NewIntent wraps p in an Intent for target: random intent_id, intent_type =
// p.IntentType(), priority 1. p is validated and marshalled Python style.
func NewIntent(target string, p IntentPayload) (*Intent, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	raw, err := p.MarshalJSON()
	if err != nil {
		return nil, err
	}
	in := &Intent{IntentID: uuid.New(), IntentType: p.IntentType(), Target: target, Payload: raw, Priority: 1}
	if err := in.Validate(); err != nil {
		return nil, pyjson.WithModel(in.pyName(), err)
	}
	return in, nil
}

// DecodePayload decodes the payload into its typed model, chosen by the
// payload's intent_type: *PostgresUpsertRegistration,
// *PostgresUpdateRegistration, *ConsulRegister or *ConsulDeregister. Errors
// are located under "payload".
func (i *Intent) DecodePayload() (IntentPayload, error) {
	kind, err := i.PayloadIntentType()
	if err != nil {
		return nil, pyjson.WithModel(i.pyName(), err)
	}
	var p IntentPayload
	switch kind {
	case IntentPostgresUpsertRegistration:
		p, err = DecodePostgresUpsertRegistration(i.Payload)
	case IntentPostgresUpdateRegistration:
		p, err = DecodePostgresUpdateRegistration(i.Payload)
	case IntentConsulRegister:
		p, err = DecodeConsulRegister(i.Payload)
	case IntentConsulDeregister:
		p, err = DecodeConsulDeregister(i.Payload)
	default:
		return nil, pyjson.WithModel(i.pyName(), fieldf("payload.intent_type", "unknown intent type %q", kind))
	}
	if err != nil {
		return nil, nested("payload", err)
	}
	return p, nil
}

// PostgresUpsertRegistration is ModelPayloadPostgresUpsertRegistration
// (intent_type "postgres.upsert_registration", extra="forbid").
type PostgresUpsertRegistration struct {
	CorrelationID uuid.UUID
	Record        ProjectionRecord
}

// IntentType returns "postgres.upsert_registration".
func (p PostgresUpsertRegistration) IntentType() string { return IntentPostgresUpsertRegistration }

func (p *PostgresUpsertRegistration) pyName() string {
	return "ModelPayloadPostgresUpsertRegistration"
}

func (p *PostgresUpsertRegistration) spec() pyjson.Spec {
	var lit string
	return forbid([]pyjson.Field{
		pyjson.Prop("intent_type", &lit, literal(IntentPostgresUpsertRegistration)),
		pyjson.Req("correlation_id", &p.CorrelationID, pyjson.UUID),
		pyjson.Req("record", &p.Record, projectionRecordC),
	})
}

// Validate checks the record.
func (p *PostgresUpsertRegistration) Validate() error { return nested("record", p.Record.Validate()) }

// ProjectionRecord is ModelProjectionRecord, the row an upsert intent
// writes (extra="forbid").
type ProjectionRecord struct {
	EntityID uuid.UUID
	// CurrentState is a registration state value.
	CurrentState string
	// Domain defaults to "registration".
	Domain   string
	NodeType string
	// Data holds extra projection columns merged into the row (JSON object;
	// nil encodes as {}).
	Data json.RawMessage
}

func (r *ProjectionRecord) pyName() string { return "ModelProjectionRecord" }

func (r *ProjectionRecord) spec() pyjson.Spec {
	return forbid([]pyjson.Field{
		pyjson.Req("entity_id", &r.EntityID, pyjson.UUID),
		pyjson.Req("current_state", &r.CurrentState, pyjson.String),
		pyjson.Def("domain", &r.Domain, pyjson.String, "registration"),
		pyjson.Req("node_type", &r.NodeType, pyjson.String),
		pyjson.Prop("data", &r.Data, pyjson.RawObject),
	})
}

// Validate checks current_state is a registration state.
func (r *ProjectionRecord) Validate() error {
	return enumField("current_state", State(r.CurrentState))
}

// PostgresUpdateRegistration is ModelPayloadPostgresUpdateRegistration
// (intent_type "postgres.update_registration", extra="forbid"). Updates is
// a *RegistrationAckUpdate or a *RegistrationHeartbeatUpdate; on decode an
// updates object with a last_heartbeat_at key is a heartbeat update,
// anything else an ack update.
type PostgresUpdateRegistration struct {
	CorrelationID uuid.UUID
	EntityID      uuid.UUID
	// Domain defaults to "registration".
	Domain  string
	Updates RegistrationUpdate
}

// IntentType returns "postgres.update_registration".
func (p PostgresUpdateRegistration) IntentType() string { return IntentPostgresUpdateRegistration }

func (p *PostgresUpdateRegistration) pyName() string {
	return "ModelPayloadPostgresUpdateRegistration"
}

func (p *PostgresUpdateRegistration) spec() pyjson.Spec {
	var lit string
	return forbid([]pyjson.Field{
		pyjson.Prop("intent_type", &lit, literal(IntentPostgresUpdateRegistration)),
		pyjson.Req("correlation_id", &p.CorrelationID, pyjson.UUID),
		pyjson.Req("entity_id", &p.EntityID, pyjson.UUID),
		pyjson.Def("domain", &p.Domain, pyjson.String, "registration"),
		pyjson.Req("updates", &p.Updates, updatesC),
	})
}

// Validate checks that Updates is set and valid.
func (p *PostgresUpdateRegistration) Validate() error {
	if p.Updates == nil {
		return fieldf("updates", "field required")
	}
	return nested("updates", p.Updates.Validate())
}

// RegistrationUpdate is the column set of a PostgresUpdateRegistration:
// *RegistrationAckUpdate or *RegistrationHeartbeatUpdate.
type RegistrationUpdate interface {
	Validate() error
	isRegistrationUpdate()
}

// RegistrationAckUpdate is ModelRegistrationAckUpdate (extra="forbid").
type RegistrationAckUpdate struct {
	CurrentState     string
	LivenessDeadline envelope.Time
	UpdatedAt        envelope.Time
}

func (*RegistrationAckUpdate) isRegistrationUpdate() {}
func (u *RegistrationAckUpdate) pyName() string      { return "ModelRegistrationAckUpdate" }
func (u *RegistrationAckUpdate) spec() pyjson.Spec {
	return forbid([]pyjson.Field{
		pyjson.Req("current_state", &u.CurrentState, pyjson.String),
		pyjson.Req("liveness_deadline", &u.LivenessDeadline, timeC),
		pyjson.Req("updated_at", &u.UpdatedAt, timeC),
	})
}

// Validate checks current_state is a registration state.
func (u *RegistrationAckUpdate) Validate() error {
	return enumField("current_state", State(u.CurrentState))
}

// RegistrationHeartbeatUpdate is ModelRegistrationHeartbeatUpdate
// (extra="forbid").
type RegistrationHeartbeatUpdate struct {
	LastHeartbeatAt  envelope.Time
	LivenessDeadline envelope.Time
	UpdatedAt        envelope.Time
}

func (*RegistrationHeartbeatUpdate) isRegistrationUpdate() {}
func (u *RegistrationHeartbeatUpdate) pyName() string      { return "ModelRegistrationHeartbeatUpdate" }
func (u *RegistrationHeartbeatUpdate) spec() pyjson.Spec {
	return forbid([]pyjson.Field{
		pyjson.Req("last_heartbeat_at", &u.LastHeartbeatAt, timeC),
		pyjson.Req("liveness_deadline", &u.LivenessDeadline, timeC),
		pyjson.Req("updated_at", &u.UpdatedAt, timeC),
	})
}

// Validate has nothing to check beyond JSON types.
func (u *RegistrationHeartbeatUpdate) Validate() error { return nil }

var (
	projectionRecordC = object[ProjectionRecord]()
	ackUpdateC        = object[RegistrationAckUpdate]()
	heartbeatUpdateC  = object[RegistrationHeartbeatUpdate]()
	updatesC          = pyjson.Codec[RegistrationUpdate]{
		Decode: func(raw []byte) (RegistrationUpdate, error) {
			members, err := pyjson.ParseMembers(raw)
			if err != nil {
				return nil, err
			}
			if _, hb := pyjson.Members(members).Get("last_heartbeat_at"); hb {
				u, err := heartbeatUpdateC.Decode(raw)
				return &u, err
			}
			u, err := ackUpdateC.Decode(raw)
			return &u, err
		},
		Encode: func(w *pyjson.Writer, v RegistrationUpdate) error {
			switch u := v.(type) {
			case *RegistrationAckUpdate:
				return ackUpdateC.Encode(w, *u)
			case *RegistrationHeartbeatUpdate:
				return heartbeatUpdateC.Encode(w, *u)
			case nil:
				w.Null()
				return nil
			}
			return fmt.Errorf("unsupported update type %T", v)
		},
		Type: &pyjson.Type{Kind: pyjson.KindUnion, AnyOf: []*pyjson.Type{ackUpdateC.Type, heartbeatUpdateC.Type}},
	}
)

// ConsulRegister is ModelPayloadConsulRegister (intent_type
// "consul.register"; removed from the Python code in OMN-3540, kept in its
// historical shape for the documented Consul derivation, extra="forbid").
type ConsulRegister struct {
	CorrelationID uuid.UUID
	NodeID        *string
	// ServiceID and ServiceName are required and non-empty.
	ServiceID   string
	ServiceName string
	Tags        []string
	Address     *string
	// Port is nil or 0..65535.
	Port *int
	// HealthCheck is a Consul check definition object, or nil.
	HealthCheck    json.RawMessage
	EventBusConfig *NodeEventBusConfig
}

// IntentType returns "consul.register".
func (p ConsulRegister) IntentType() string { return IntentConsulRegister }

func (p *ConsulRegister) pyName() string { return "ModelPayloadConsulRegister" }

func (p *ConsulRegister) spec() pyjson.Spec {
	var lit string
	return forbid([]pyjson.Field{
		pyjson.Prop("intent_type", &lit, literal(IntentConsulRegister)),
		pyjson.Req("correlation_id", &p.CorrelationID, pyjson.UUID),
		pyjson.Prop("node_id", &p.NodeID, nullString),
		pyjson.Req("service_id", &p.ServiceID, pyjson.String),
		pyjson.Req("service_name", &p.ServiceName, pyjson.String),
		pyjson.Prop("tags", &p.Tags, stringList),
		pyjson.Prop("address", &p.Address, nullString),
		pyjson.Prop("port", &p.Port, nullInt),
		pyjson.Prop("health_check", &p.HealthCheck, pyjson.RawObjectOrNull),
		pyjson.Prop("event_bus_config", &p.EventBusConfig, nullEventBusC),
	})
}

// Validate checks service id/name are non-empty and the port range.
func (p *ConsulRegister) Validate() error {
	var port error
	if p.Port != nil {
		port = intRange("port", *p.Port, 0, 65535)
	}
	return firstErr(
		strLen("service_id", p.ServiceID, 1, -1),
		strLen("service_name", p.ServiceName, 1, -1),
		port,
	)
}

// ConsulDeregister is the deregistration counterpart of ConsulRegister
// (intent_type "consul.deregister", extra="forbid"); it has no Python
// model of its own.
type ConsulDeregister struct {
	CorrelationID uuid.UUID
	NodeID        *string
	// ServiceID is required and non-empty.
	ServiceID string
}

// IntentType returns "consul.deregister".
func (p ConsulDeregister) IntentType() string { return IntentConsulDeregister }

func (p *ConsulDeregister) pyName() string { return "ModelPayloadConsulDeregister" }

func (p *ConsulDeregister) spec() pyjson.Spec {
	var lit string
	return forbid([]pyjson.Field{
		pyjson.Prop("intent_type", &lit, literal(IntentConsulDeregister)),
		pyjson.Req("correlation_id", &p.CorrelationID, pyjson.UUID),
		pyjson.Prop("node_id", &p.NodeID, nullString),
		pyjson.Req("service_id", &p.ServiceID, pyjson.String),
	})
}

// Validate checks service_id is non-empty.
func (p *ConsulDeregister) Validate() error { return strLen("service_id", p.ServiceID, 1, -1) }
