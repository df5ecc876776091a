package effect

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/services/consul-effect/internal/backend"
)

// Publisher publishes one effect result for an intent of node, with the
// intent's correlation id. It returns nil only once the broker acknowledged.
type Publisher interface {
	PublishResult(ctx context.Context, res *pipeline.EffectResult) error
}

// Handler is the bus handler of the consul intents topic.
type Handler struct {
	reg     *Registrar
	pub     Publisher
	now     func() time.Time
	intents *prometheus.CounterVec
}

// NewHandler returns the handler; its counter
// onex_consul_intents_total{intent_type,outcome} is registered on reg.
func NewHandler(r *Registrar, pub Publisher, reg prometheus.Registerer) *Handler {
	h := &Handler{reg: r, pub: pub, now: time.Now,
		intents: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_consul_intents_total",
			Help: "Consul intents handled, by intent type and outcome (applied, unchanged, stale, failed)."},
			[]string{"intent_type", "outcome"})}
	if reg != nil {
		reg.MustRegister(h.intents)
	}
	return h
}

// Handle applies one intent record and publishes its result. It returns a
// content error for a record that is not a consul intent (the bus dead-letters
// it) and the publisher's error when the result could not be published (the
// bus retries the whole message; the apply is idempotent). A Consul failure
// is not an error here: it is a failed result.
func (h *Handler) Handle(ctx context.Context, msg *bus.Message) error {
	env, err := envelope.Decode(msg.Value)
	if err != nil {
		return infraerr.ContentWrap("consul intent: envelope", err)
	}
	in, err := pipeline.DecodeIntent(env.Payload)
	if err != nil {
		return infraerr.ContentWrap("consul intent", err)
	}
	corr := msg.CorrelationID
	if env.CorrelationID != nil && *env.CorrelationID != uuid.Nil {
		corr = *env.CorrelationID
	}
	log := observability.Logger(ctx).With("intent_id", in.IntentID.String(), "intent_type", in.IntentType,
		"node_id", in.NodeID.String(), "sequence", in.Sequence, "attempt", in.Attempt)

	start := h.now()
	var res Result
	var serviceID string
	switch in.IntentType {
	case pipeline.ConsulRegister:
		var p pipeline.ConsulRegisterPayload
		if err := decodePayload(in.Payload, &p); err != nil {
			return infraerr.ContentWrap("consul intent: payload", err)
		}
		d, err := Build(in.NodeID, in.Sequence, h.reg.Env(), &p)
		if err != nil {
			return err
		}
		serviceID = p.ServiceID
		res = h.reg.Register(ctx, d)
	case pipeline.ConsulDeregister:
		var p pipeline.ConsulDeregisterPayload
		if err := decodePayload(in.Payload, &p); err != nil {
			return infraerr.ContentWrap("consul intent: payload", err)
		}
		if p.ServiceID == "" {
			return infraerr.Content("payload.service_id", "missing")
		}
		serviceID = p.ServiceID
		res = h.reg.Deregister(ctx, in.NodeID, in.Sequence, p.ServiceID)
	default:
		return infraerr.Content("intent_type", fmt.Sprintf("%q is not a consul intent", in.IntentType))
	}
	elapsed := h.now().Sub(start)

	out := &pipeline.EffectResult{
		IntentID: in.IntentID, IntentType: in.IntentType, Backend: backend.Name, NodeID: in.NodeID,
		CorrelationID: corr, RegistrationAttemptID: in.RegistrationAttemptID, Sequence: in.Sequence,
		Attempt: in.Attempt, Success: res.Outcome != Failed, Stale: res.Outcome == Stale,
		DurationMS: float64(elapsed.Microseconds()) / 1000, BackendID: backend.Name, Completed: pipeline.T(h.now()),
	}
	if res.Outcome == Failed {
		code, retriable := backend.ResultCode(res.Err)
		text := backend.ResultError(res.Err)
		out.ErrorCode, out.Error, out.Retriable = &code, &text, retriable
		log.Warn("consul intent failed", "service_id", serviceID, "error_code", code, "retriable", retriable,
			"error", infraerr.SanitizeError(res.Err))
	} else {
		log.Info("consul intent done", "service_id", serviceID, "outcome", string(res.Outcome))
	}
	h.intents.WithLabelValues(in.IntentType, string(res.Outcome)).Inc()
	if err := h.pub.PublishResult(ctx, out); err != nil {
		return err
	}
	return nil
}

// decodePayload decodes an intent payload. Unknown fields are accepted: the
// payloads are the fleet's own models, and a producer deployed ahead of this
// service with an added field must not send every intent to the DLQ.
func decodePayload(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return err
	}
	return nil
}
