package effect

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/services/consul-effect/internal/backend"
)

// DefaultParallel is how many intents are applied at once by default
// (ONEX_CONSUL_PARALLELISM). In catalog mode it also bounds how many
// writes a shared transaction can gather (groupCommit): only intents
// being applied are waiting to write, and a transaction holds 21 new
// registrations or 32 acks; Consul's count of the service name's
// instances, paid once per commit, is shared by as many writes as gather
// (docs/consul-effect.md, "Why 64").
const DefaultParallel = 64

// Handler is the bus handler of the consul intents topic.
type Handler struct {
	reg     *Registrar
	results Results
	now     func() time.Time
	intents *prometheus.CounterVec
	notSent prometheus.Counter
	// slots bounds the intents applied at once, across all partitions.
	slots chan struct{}
}

// NewHandler returns the handler, which answers intents with records built
// by results; its counters
// onex_consul_intents_total{intent_type,outcome} and
// onex_consul_results_not_sent_total are registered on reg.
// parallel bounds how many intents are applied at once, across the batches
// of all partitions (< 1: DefaultParallel).
func NewHandler(r *Registrar, results Results, reg prometheus.Registerer, parallel int) *Handler {
	if parallel < 1 {
		parallel = DefaultParallel
	}
	h := &Handler{reg: r, results: results, now: time.Now, slots: make(chan struct{}, parallel),
		intents: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_consul_intents_total",
			Help: "Consul intents handled, by intent type and outcome (applied, unchanged, stale, failed)."},
			[]string{"intent_type", "outcome"}),
		notSent: prometheus.NewCounter(prometheus.CounterOpts{Name: "onex_consul_results_not_sent_total",
			Help: "Success results not published because the intent's record asked for failed results only (routed untracked)."})}
	if reg != nil {
		reg.MustRegister(h.intents, h.notSent)
	}
	return h
}

// prepared is an intent decoded and checked, ready to apply.
type prepared struct {
	in        *pipeline.Intent
	corr      uuid.UUID
	desired   *Desired // consul.register
	serviceID string
	// failuresOnly: the record asks for a result only if the intent fails
	// (pipeline.HeaderResults); the orchestrator routed it untracked.
	failuresOnly bool
}

// Handle handles consecutive intent records of one partition (bus.Handle).
// It applies the intents of different nodes at once, up to the handler's
// parallelism, each node's in record order, and returns the records of
// their results for the runner to send. One at a time, a registration
// waited for a read and a write of Consul and a send to Kafka before the
// next began, which bounded the effect at about 1/90 ms per partition under
// load while Consul had cores to spare.
//
// A record that is not a usable consul intent is rejected (a content error:
// the runner dead-letters it) and the rest of the batch applied. A Consul
// failure is no error here: it is a failed result. Handle returns no error;
// if the send fails the runner hands the records again one at a time, and
// applying them again is idempotent (unchanged).
func (h *Handler) Handle(ctx context.Context, msgs []*bus.Message) (bus.Output, error) {
	var outcomes []bus.Outcome
	reject := func(i int, err error) {
		if outcomes == nil {
			outcomes = bus.Outcomes(len(msgs))
		}
		outcomes[i] = bus.Reject(err)
	}
	ps := make([]*prepared, len(msgs))
	ctxs := make([]context.Context, len(msgs))
	byNode := map[uuid.UUID][]int{}
	var order []uuid.UUID
	for i, msg := range msgs {
		p, err := h.prepare(msg)
		if err != nil {
			reject(i, err)
			continue
		}
		ps[i], ctxs[i] = p, bus.MessageContext(ctx, msg)
		if _, ok := byNode[p.in.NodeID]; !ok {
			order = append(order, p.in.NodeID)
		}
		byNode[p.in.NodeID] = append(byNode[p.in.NodeID], i)
	}
	res := make([]*pipeline.EffectResult, len(msgs))
	var wg sync.WaitGroup
	for _, node := range order {
		idx := byNode[node]
		h.slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-h.slots }()
			for _, i := range idx {
				res[i] = h.apply(ctxs[i], ps[i])
			}
		})
	}
	wg.Wait()
	var (
		out     bus.Output
		notSent int
	)
	for i, r := range res {
		if r == nil {
			continue // rejected
		}
		if !wanted(ps[i], r) {
			notSent++
			continue
		}
		rec, err := h.results.Record(r)
		if err != nil {
			// Unreachable in practice (the JSON form takes any result);
			// the intent is parked rather than answered by nothing.
			reject(i, err)
			continue
		}
		out.Records = append(out.Records, rec)
	}
	// Counted per handling, as onex_consul_intents_total is: a batch the
	// runner hands again after a failed send counts again.
	h.notSent.Add(float64(notSent))
	out.Outcomes = outcomes
	return out, nil
}

// wanted reports whether res is to be sent: a record routed untracked
// asks for failed results only, because the orchestrator would count a
// success and drop it (the refresh register at each node's ack is one of
// every registration's records).
func wanted(p *prepared, res *pipeline.EffectResult) bool {
	return !p.failuresOnly || !res.Success
}

// prepare decodes and checks one intent record; its errors are content
// errors (the record can never be applied).
func (h *Handler) prepare(msg *bus.Message) (*prepared, error) {
	r, err := pipeline.DecodeIntentRecord(msg.Headers, msg.Value)
	if err != nil {
		return nil, infraerr.ContentWrap("consul intent", err)
	}
	in := r.Intent
	p := &prepared{in: in, corr: msg.CorrelationID, failuresOnly: pipeline.FailuresOnly(msg.Headers)}
	if r.CorrelationID != uuid.Nil {
		p.corr = r.CorrelationID
	}
	switch in.IntentType {
	case pipeline.ConsulRegister:
		var pl pipeline.ConsulRegisterPayload
		if err := decodePayload(in.Payload, &pl); err != nil {
			return nil, infraerr.ContentWrap("consul intent: payload", err)
		}
		d, err := Build(in.NodeID, in.Sequence, h.reg.Env(), &pl)
		if err != nil {
			return nil, err
		}
		p.desired, p.serviceID = d, pl.ServiceID
	case pipeline.ConsulDeregister:
		var pl pipeline.ConsulDeregisterPayload
		if err := decodePayload(in.Payload, &pl); err != nil {
			return nil, infraerr.ContentWrap("consul intent: payload", err)
		}
		if pl.ServiceID == "" {
			return nil, infraerr.Content("payload.service_id", "missing")
		}
		p.serviceID = pl.ServiceID
	default:
		return nil, infraerr.Content("intent_type", fmt.Sprintf("%q is not a consul intent", in.IntentType))
	}
	return p, nil
}

// apply carries out a prepared intent against Consul and returns its result.
func (h *Handler) apply(ctx context.Context, p *prepared) *pipeline.EffectResult {
	in := p.in
	log := observability.Logger(ctx).With("intent_id", in.IntentID.String(), "intent_type", in.IntentType,
		"node_id", in.NodeID.String(), "sequence", in.Sequence, "attempt", in.Attempt)
	start := h.now()
	var res Result
	if p.desired != nil {
		res = h.reg.Register(ctx, p.desired)
	} else {
		res = h.reg.Deregister(ctx, in.NodeID, in.Sequence, p.serviceID)
	}
	elapsed := h.now().Sub(start)

	out := &pipeline.EffectResult{
		IntentID: in.IntentID, IntentType: in.IntentType, Backend: backend.Name, NodeID: in.NodeID,
		CorrelationID: p.corr, RegistrationAttemptID: in.RegistrationAttemptID, Sequence: in.Sequence,
		Attempt: in.Attempt, Success: res.Outcome != Failed, Stale: res.Outcome == Stale,
		DurationMS: float64(elapsed.Microseconds()) / 1000, BackendID: backend.Name, Completed: pipeline.T(h.now()),
	}
	if res.Outcome == Failed {
		code, retriable := backend.ResultCode(res.Err)
		text := backend.ResultError(res.Err)
		out.ErrorCode, out.Error, out.Retriable = &code, &text, retriable
		log.Warn("consul intent failed", "service_id", p.serviceID, "error_code", code, "retriable", retriable,
			"error", infraerr.SanitizeError(res.Err))
	} else {
		log.Info("consul intent done", "service_id", p.serviceID, "outcome", string(res.Outcome))
	}
	h.intents.WithLabelValues(in.IntentType, string(res.Outcome)).Inc()
	return out
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
