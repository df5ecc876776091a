package effect

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/store"
)

// notAnIntent is a record that is no intent in either form.
func notAnIntent() *bus.Message {
	return bus.FromConsumerMessage(&sarama.ConsumerMessage{Topic: "onex.cmd.platform.postgres-intents.v1", Value: []byte("not an intent")})
}

// consulIntent is an intent of another backend.
func consulIntent(t *testing.T) *bus.Message {
	t.Helper()
	node := uuid.New()
	in := pipeline.Intent{IntentID: uuid.New(), IntentType: pipeline.ConsulRegister, Target: "consul://" + node.String(), NodeID: node, Priority: 1}
	return record(t, in, map[string]string{"service_name": "x"}, uuid.New())
}

// protoUpdate is a heartbeat's update in the protobuf form whose
// correlation_id header disagrees with the record (the runner reads only
// the header of a protobuf record).
func protoUpdate(t *testing.T, corr uuid.UUID) *bus.Message {
	t.Helper()
	node := uuid.New()
	now := pipeline.T(time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC))
	in := pipeline.Intent{IntentID: uuid.New(), IntentType: pipeline.PostgresUpdate, Target: "postgres://node_registrations/" + node.String(),
		NodeID: node, Sequence: 1, Priority: 1}
	msg := protoRecord(t, in, pipeline.PostgresUpdatePayload{IntentType: pipeline.PostgresUpdate, CorrelationID: corr, EntityID: node,
		Domain: "registration", Updates: pipeline.ProjectionUpdate{CurrentState: "active", LivenessDeadline: &now, LastHeartbeatAt: &now,
			UpdatedAt: now, NodeType: "effect", RegisteredAt: now, LastAppliedEventID: uuid.New()}}, corr)
	msg.CorrelationID = uuid.New()
	return msg
}

// Handle returns a batch's final results as records in offset order and
// one outcome per record: done, or a rejection (the runner's dead letter)
// with the content error as the reason for a poison record; the rest of
// the batch is applied without it. A retriable failure is retried in place
// and answered at once with a failed result per intent.
func TestHandleOutcomes(t *testing.T) {
	down := infraerr.New(infraerr.KindConnection, infraerr.Context{}, "connection refused", nil)
	refusal := infraerr.Content("node_version", "refused")
	ok := func() *bus.Message { return heartbeatUpdate(t, uuid.New(), 1, "active", false) }
	tests := []struct {
		name      string
		msgs      []func() *bus.Message
		errs      []error
		verdicts  []string
		returned  []string // "<index of the intent's record>:<ok or error code>"
		published []string
		applies   []int // writes per apply
	}{
		{"applied", []func() *bus.Message{ok, ok}, nil,
			[]string{"done", "done"}, []string{"0:ok", "1:ok"}, nil, []int{2}},
		{"poison in the middle", []func() *bus.Message{ok, notAnIntent, ok}, nil,
			[]string{"done", "dead_letter", "done"}, []string{"0:ok", "2:ok"}, nil, []int{2}},
		{"intent of another backend", []func() *bus.Message{func() *bus.Message { return consulIntent(t) }, ok}, nil,
			[]string{"dead_letter", "done"}, []string{"0:" + CodeInvalidTarget, "1:ok"}, nil, []int{1}},
		{"data the table refuses", []func() *bus.Message{ok, func() *bus.Message { return protoUpdate(t, uuid.New()) }, ok},
			[]error{&store.BatchError{Index: 1, Err: refusal}},
			[]string{"done", "dead_letter", "done"}, []string{"0:ok", "1:" + store.CodeUpsert, "2:ok"}, nil, []int{3, 2}},
		{"connection failure, then applied", []func() *bus.Message{ok, ok}, []error{down},
			[]string{"done", "done"}, []string{"0:ok", "1:ok"}, []string{store.CodeConnection, store.CodeConnection}, []int{2, 2}},
		{"only poison", []func() *bus.Message{notAnIntent}, nil,
			[]string{"dead_letter"}, nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := &scriptedApplier{errs: tt.errs}
			res := newRecordedResults()
			p, _ := newProcessor(app, res)
			msgs := make([]*bus.Message, len(tt.msgs))
			byIntent := map[uuid.UUID]int{}
			corrs := make([]uuid.UUID, len(tt.msgs))
			for i, mk := range tt.msgs {
				msgs[i] = mk()
				it := Decode(msgs[i])
				if it.Intent != nil {
					byIntent[it.Intent.IntentID] = i
				}
				corrs[i] = it.CorrelationID
			}
			out, err := p.Handle(context.Background(), msgs)
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if got := verdicts(out, len(msgs)); !equal(got, tt.verdicts) {
				t.Errorf("verdicts %q, want %q", got, tt.verdicts)
			}
			for i, o := range out.Outcomes {
				if o.Verdict == bus.DeadLetter && !infraerr.IsContent(o.Err) {
					t.Errorf("record %d rejected with %v, want a content error (the DLQ's publisher_malformed)", i, o.Err)
				}
				// The dead letter carries the intent's correlation id, not
				// the header's.
				if msgs[i].CorrelationID != corrs[i] {
					t.Errorf("record %d: correlation %s, want the intent's %s", i, msgs[i].CorrelationID, corrs[i])
				}
			}
			rs := returned(t, out)
			var got []string
			for i, r := range rs {
				idx, known := byIntent[r.IntentID]
				if !known {
					t.Fatalf("result %d answers intent %s of no record", i, r.IntentID)
				}
				got = append(got, fmt.Sprintf("%d:%s", idx, codes(rs[i : i+1])[0]))
				if r.CorrelationID != corrs[idx] || (!r.Success && r.Retriable) {
					t.Errorf("result %d: correlation %s (want %s), retriable %v", i, r.CorrelationID, corrs[idx], r.Retriable)
				}
			}
			if !equal(got, tt.returned) {
				t.Errorf("returned %q, want %q", got, tt.returned)
			}
			if got := codes(res.published); !equal(got, tt.published) {
				t.Errorf("published while waiting %q, want %q", got, tt.published)
			}
			for _, r := range res.published {
				if !r.Retriable {
					t.Errorf("failed result published while waiting is not retriable: %+v", r)
				}
			}
			if fmt.Sprint(app.sizes) != fmt.Sprint(tt.applies) {
				t.Errorf("applies of %v writes, want %v", app.sizes, tt.applies)
			}
		})
	}
}

// Stopped while waiting to retry, Handle finishes nothing: it returns
// retry.ErrStopped and no outcome, so the runner marks no offset and
// rejects nothing, not even the poison, and the next owner takes the whole
// batch. The runner's stop channel cannot be
// closed outside a runner; the drain deadline (ctx cancelled) takes the
// same path.
func TestHandleStoppedWhileWaiting(t *testing.T) {
	down := infraerr.New(infraerr.KindConnection, infraerr.Context{}, "connection refused", nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	app := &scriptedApplier{errs: []error{down, down, down}, onCall: cancel}
	res := newRecordedResults()
	p, _ := newProcessor(app, res)
	msgs := []*bus.Message{notAnIntent(), heartbeatUpdate(t, uuid.New(), 1, "active", false), heartbeatUpdate(t, uuid.New(), 1, "active", false)}
	out, err := p.Handle(ctx, msgs)
	if !errors.Is(err, ErrStopped) {
		t.Fatalf("Handle: %v, want ErrStopped", err)
	}
	if len(out.Records) != 0 || len(out.Outcomes) != 0 {
		t.Errorf("%d records and %d outcomes returned for a batch that is not done", len(out.Records), len(out.Outcomes))
	}
	if app.calls != 1 {
		t.Errorf("%d applies, want 1", app.calls)
	}
	if got := codes(res.published); !equal(got, []string{store.CodeConnection, store.CodeConnection}) {
		t.Errorf("published while waiting %q, want a failed result per intent", got)
	}
}
