package effect

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/retry"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/breaker"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/store"
)

// scriptedApplier fails its first calls with errs, in order, then applies
// every write as an update; calls counts the calls and sizes their writes.
type scriptedApplier struct {
	errs  []error
	calls int
	sizes []int
	// onCall, if set, runs at the start of every call.
	onCall func()
}

func (a *scriptedApplier) Apply(_ context.Context, writes []store.Write) ([]store.Outcome, error) {
	a.calls++
	a.sizes = append(a.sizes, len(writes))
	if a.onCall != nil {
		a.onCall()
	}
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

// recordedResults makes the real records and keeps the results published
// while a batch waits instead of sending them.
type recordedResults struct {
	KafkaResults
	published []*pipeline.EffectResult
}

func newRecordedResults() *recordedResults {
	return &recordedResults{KafkaResults: KafkaResults{Topic: "onex.evt.platform.effect-results.v1", Source: "test"}}
}

func (r *recordedResults) PublishResults(_ context.Context, rs []*pipeline.EffectResult) error {
	r.published = append(r.published, rs...)
	return nil
}

// newProcessor is a processor with fast in-place retries and its metrics.
func newProcessor(a Applier, r Results) (*Processor, *Metrics) {
	m := NewMetrics(nil)
	cb := breaker.New(breaker.Settings{Backend: "postgres", Transport: infraerr.TransportDB,
		Healthy: func(err error) bool { return infraerr.IsContent(err) }}, prometheus.NewRegistry())
	return New(a, cb, r, m, Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Backoff: retry.Policy{MaxAttempts: 2, Initial: time.Millisecond, Max: time.Millisecond, Multiplier: 2}}), m
}

// returned decodes the result records a batch returned to the runner.
func returned(t *testing.T, out bus.Output) []*pipeline.EffectResult {
	t.Helper()
	rs := make([]*pipeline.EffectResult, len(out.Records))
	for i, m := range out.Records {
		v, err := m.Value.Encode()
		if err != nil {
			t.Fatal(err)
		}
		rec, err := pipeline.DecodeEffectResultRecord(recordHeaders(m), v)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		rs[i] = rec.Result
	}
	return rs
}

// codes names results as the tests compare them: "ok" or the error code.
func codes(rs []*pipeline.EffectResult) []string {
	var got []string
	for _, r := range rs {
		switch {
		case r.Success:
			got = append(got, "ok")
		case r.ErrorCode != nil:
			got = append(got, *r.ErrorCode)
		default:
			got = append(got, "failure without a code")
		}
	}
	return got
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// verdicts names a batch's outcomes, one per message ("done" for all when
// the handler returned none).
func verdicts(out bus.Output, n int) []string {
	got := make([]string, n)
	for i := range got {
		got[i] = bus.Done.String()
		if out.Outcomes != nil {
			got[i] = out.Outcomes[i].Verdict.String()
		}
	}
	return got
}

// heartbeatUpdate is a heartbeat's projection update record of node;
// failuresOnly adds the header the orchestrator sets when it routes it
// untracked.
func heartbeatUpdate(t *testing.T, node uuid.UUID, seq int64, state string, failuresOnly bool) *bus.Message {
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
// result, only its failures (a retriable one published while the effect
// retries in place, a poison one returned with its rejection); a record
// without the header is answered as before. The writes, the outcomes (the
// runner commits the batch) and the intent counts do not change.
func TestUntrackedIntentsGetFailedResultsOnly(t *testing.T) {
	down := infraerr.New(infraerr.KindConnection, infraerr.Context{}, "connection refused", nil)
	refused := &store.BatchError{Index: 0, Err: infraerr.Content("node_type", "refused")}
	type want struct {
		published []string // results sent while the batch waited: "ok" or the error code
		returned  []string // results returned with the batch
		notSent   float64
		rejected  int
		attempts  int
	}
	tests := []struct {
		name    string
		headers []bool // per record: routed untracked
		state   string
		errs    []error
		want    want
	}{
		{"untracked update applied", []bool{true}, "active", nil, want{nil, nil, 1, 0, 1}},
		{"update of an older orchestrator applied", []bool{false}, "active", nil, want{nil, []string{"ok"}, 0, 0, 1}},
		{"mixed batch", []bool{true, false, true}, "active", nil, want{nil, []string{"ok"}, 2, 0, 1}},
		{"untracked update after a connection failure", []bool{true}, "active", []error{down},
			want{[]string{store.CodeConnection}, nil, 1, 0, 2}},
		{"update of an older orchestrator after a connection failure", []bool{false}, "active", []error{down},
			want{[]string{store.CodeConnection}, []string{"ok"}, 0, 0, 2}},
		{"untracked update the table refuses", []bool{true}, "active", []error{refused},
			want{nil, []string{store.CodeUpsert}, 0, 1, 1}},
		{"untracked update that is poison", []bool{true}, "asleep", nil, want{nil, []string{store.CodeUpsert}, 0, 1, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := &scriptedApplier{errs: tt.errs}
			res := newRecordedResults()
			p, m := newProcessor(app, res)
			var msgs []*bus.Message
			for i, untracked := range tt.headers {
				msgs = append(msgs, heartbeatUpdate(t, uuid.New(), int64(i+1), tt.state, untracked))
			}
			out, err := p.Handle(context.Background(), msgs)
			if err != nil {
				t.Fatalf("Handle: %v (the batch would be handed again one record at a time)", err)
			}
			if got := codes(res.published); !equal(got, tt.want.published) {
				t.Errorf("published while waiting %q, want %q", got, tt.want.published)
			}
			if got := codes(returned(t, out)); !equal(got, tt.want.returned) {
				t.Errorf("returned %q, want %q", got, tt.want.returned)
			}
			rejected := 0
			for _, v := range verdicts(out, len(msgs)) {
				switch v {
				case bus.DeadLetter.String():
					rejected++
				case bus.Done.String():
				default:
					t.Errorf("verdict %s: the batch would not be committed", v)
				}
			}
			if n := testutil.ToFloat64(m.NotSent); n != tt.want.notSent {
				t.Errorf("results not sent %v, want %v", n, tt.want.notSent)
			}
			if rejected != tt.want.rejected || app.calls != tt.want.attempts {
				t.Errorf("rejected %d, applies %d; want %d, %d", rejected, app.calls, tt.want.rejected, tt.want.attempts)
			}
			applied := testutil.ToFloat64(m.Intents.WithLabelValues(pipeline.PostgresUpdate, store.Updated.String()))
			if wantApplied := float64(len(tt.headers) - tt.want.rejected); applied != wantApplied {
				t.Errorf("intents counted updated %v, want %v", applied, wantApplied)
			}
		})
	}
}
