package effect

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/retry"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/breaker"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/store"
)

// scriptedApplier fails its first calls with errs, in order, then applies
// every write as an update; calls counts the calls.
type scriptedApplier struct {
	errs  []error
	calls int
}

func (a *scriptedApplier) Apply(_ context.Context, writes []store.Write) ([]store.Outcome, error) {
	a.calls++
	if len(a.errs) > 0 {
		err := a.errs[0]
		a.errs = a.errs[1:]
		return nil, err
	}
	outs := make([]store.Outcome, len(writes))
	for i := range outs {
		outs[i] = store.Updated
	}
	return outs, nil
}

type recordedResults struct{ sent []*pipeline.EffectResult }

func (r *recordedResults) PublishResults(_ context.Context, rs []*pipeline.EffectResult) error {
	r.sent = append(r.sent, rs...)
	return nil
}

type recordedDLQ struct{ n int }

func (d *recordedDLQ) DeadLetter(context.Context, *sarama.ConsumerMessage, uuid.UUID, error) error {
	d.n++
	return nil
}

// heartbeatUpdate is a heartbeat's projection update record of node;
// failuresOnly adds the header the orchestrator sets when it routes it
// untracked.
func heartbeatUpdate(t *testing.T, node uuid.UUID, seq int64, state string, failuresOnly bool) *sarama.ConsumerMessage {
	t.Helper()
	now := pipeline.T(time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC))
	in := pipeline.Intent{IntentID: uuid.New(), IntentType: pipeline.PostgresUpdate, Target: "postgres://node_registrations/" + node.String(),
		NodeID: node, Sequence: seq, Priority: 1}
	corr := uuid.New()
	msg := record(t, in, pipeline.PostgresUpdatePayload{IntentType: pipeline.PostgresUpdate, CorrelationID: corr, EntityID: node,
		Domain: "registration", Updates: pipeline.ProjectionUpdate{CurrentState: state, LivenessDeadline: &now, LastHeartbeatAt: &now,
			UpdatedAt: now, NodeType: "effect", RegisteredAt: now, LastAppliedEventID: uuid.New()}}, corr)
	if failuresOnly {
		h := pipeline.FailuresOnlyHeader()
		msg.Headers = append(msg.Headers, &h)
	}
	return msg
}

// A record routed untracked (pipeline.HeaderResults) gets no success
// result, only its failures (a retriable one while the effect retries in
// place, a poison one with its dead letter); a record without the header is
// answered as before. The writes, the offsets (Handle returns nil) and the
// intent counts do not change.
func TestUntrackedIntentsGetFailedResultsOnly(t *testing.T) {
	down := infraerr.New(infraerr.KindConnection, infraerr.Context{}, "connection refused", nil)
	refused := &store.BatchError{Index: 0, Err: infraerr.Content("node_type", "refused")}
	type want struct {
		results  []string // per published result: "ok" or its error code
		notSent  float64
		dlq      int
		attempts int
	}
	tests := []struct {
		name    string
		headers []bool // per record: routed untracked
		state   string
		errs    []error
		want    want
	}{
		{"untracked update applied", []bool{true}, "active", nil, want{nil, 1, 0, 1}},
		{"update of an older orchestrator applied", []bool{false}, "active", nil, want{[]string{"ok"}, 0, 0, 1}},
		{"mixed batch", []bool{true, false, true}, "active", nil, want{[]string{"ok"}, 2, 0, 1}},
		{"untracked update after a connection failure", []bool{true}, "active", []error{down},
			want{[]string{store.CodeConnection}, 1, 0, 2}},
		{"update of an older orchestrator after a connection failure", []bool{false}, "active", []error{down},
			want{[]string{store.CodeConnection, "ok"}, 0, 0, 2}},
		{"untracked update the table refuses", []bool{true}, "active", []error{refused},
			want{[]string{store.CodeUpsert}, 0, 1, 1}},
		{"untracked update that is poison", []bool{true}, "asleep", nil, want{[]string{store.CodeUpsert}, 0, 1, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := &scriptedApplier{errs: tt.errs}
			res, dl := &recordedResults{}, &recordedDLQ{}
			m := NewMetrics(nil)
			cb := breaker.New(breaker.Settings{Backend: "postgres", Transport: infraerr.TransportDB,
				Healthy: func(err error) bool { return infraerr.IsContent(err) }}, prometheus.NewRegistry())
			p := New(app, cb, res, dl, m, Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
				Backoff: retry.Policy{MaxAttempts: 2, Initial: time.Millisecond, Max: time.Millisecond, Multiplier: 2}})
			var msgs []*sarama.ConsumerMessage
			for i, untracked := range tt.headers {
				msgs = append(msgs, heartbeatUpdate(t, uuid.New(), int64(i+1), tt.state, untracked))
			}
			if err := p.Handle(context.Background(), make(chan struct{}), msgs); err != nil {
				t.Fatalf("Handle: %v (the batch would stay uncommitted)", err)
			}
			var got []string
			for _, r := range res.sent {
				switch {
				case r.Success:
					got = append(got, "ok")
				case r.ErrorCode != nil:
					got = append(got, *r.ErrorCode)
				default:
					got = append(got, "failure without a code")
				}
			}
			if len(got) != len(tt.want.results) {
				t.Fatalf("results %q, want %q", got, tt.want.results)
			}
			for i := range got {
				if got[i] != tt.want.results[i] {
					t.Fatalf("results %q, want %q", got, tt.want.results)
				}
			}
			if n := testutil.ToFloat64(m.NotSent); n != tt.want.notSent {
				t.Errorf("results not sent %v, want %v", n, tt.want.notSent)
			}
			if dl.n != tt.want.dlq || app.calls != tt.want.attempts {
				t.Errorf("dead letters %d, applies %d; want %d, %d", dl.n, app.calls, tt.want.dlq, tt.want.attempts)
			}
			applied := testutil.ToFloat64(m.Intents.WithLabelValues(pipeline.PostgresUpdate, store.Updated.String()))
			if wantApplied := float64(len(tt.headers) - tt.want.dlq); applied != wantApplied {
				t.Errorf("intents counted updated %v, want %v", applied, wantApplied)
			}
		})
	}
}
