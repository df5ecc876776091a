package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/pipeline"
)

// recDLQ records dead letters.
type recDLQ struct{ failures []dlq.Failure }

func (d *recDLQ) Publish(_ context.Context, _ *sarama.ConsumerMessage, f dlq.Failure) error {
	d.failures = append(d.failures, f)
	return nil
}

// stepRig is a workflow with a hand-moved clock and a recording sender.
type stepRig struct {
	t    *testing.T
	w    *Workflow
	s    *sender
	dl   *recDLQ
	reg  *prometheus.Registry
	now  time.Time
	node uuid.UUID
	att  uuid.UUID
}

func newStepRig(t *testing.T, timeout time.Duration) *stepRig {
	r := &stepRig{t: t, s: &sender{}, dl: &recDLQ{}, reg: prometheus.NewRegistry(), now: t0, node: uuid.New(), att: uuid.New()}
	cfg := attemptConfig(r.s, r.dl)
	cfg.StepTimeout, cfg.Registerer = timeout, r.reg
	r.w = New(cfg)
	r.w.now = func() time.Time { return r.now }
	r.w.rand = half
	for i, typ := range []string{pipeline.PostgresUpsert, pipeline.ConsulRegister} {
		mustHandle(t, r.w, intentMsg(t, r.node, typ, int64(i+1), r.att))
	}
	return r
}

// answer feeds backend's result for attempt to the workflow.
func (r *stepRig) answer(backend string, attempt int, ok bool) {
	r.t.Helper()
	mustHandle(r.t, r.w, resultMsg(r.t, r.w, r.node, backend, attempt, ok))
}

// at moves the clock to t0+d and runs one pass of the retry loop.
func (r *stepRig) at(d time.Duration) {
	r.now = t0.Add(d)
	r.w.retryPass(context.Background())
}

// results returns the registration results published so far.
func (r *stepRig) results() []pipeline.RegistrationResult {
	r.t.Helper()
	var out []pipeline.RegistrationResult
	for _, call := range r.s.calls {
		for _, m := range call {
			if m.Topic != "result" {
				continue
			}
			v, _ := m.Value.Encode()
			env, err := envelope.Decode(v)
			if err != nil {
				r.t.Fatal(err)
			}
			var res pipeline.RegistrationResult
			if err := json.Unmarshal(env.Payload, &res); err != nil {
				r.t.Fatal(err)
			}
			out = append(out, res)
		}
	}
	return out
}

// sends counts the intents sent to topic.
func (r *stepRig) sends(topic string) int {
	n := 0
	for _, call := range r.s.calls {
		for _, m := range call {
			if m.Topic == topic {
				n++
			}
		}
	}
	return n
}

// A backend that never answers (its effect's partition waits out an
// outage) yields a partial result at the step timeout and a re-send; the
// late success of the first delivery still settles the attempt.
func TestStepTimeoutGivesPartialThenLateSuccessSettles(t *testing.T) {
	r := newStepRig(t, 30*time.Second)
	r.at(time.Second)
	r.answer("consul", 0, true)
	r.at(29 * time.Second)
	if got := r.results(); len(got) != 0 {
		t.Fatalf("results before the step timeout: %+v", got)
	}
	r.at(30 * time.Second)
	got := r.results()
	if len(got) != 1 || got[0].Status != pipeline.StatusPartial || got[0].PostgresApplied || !got[0].ConsulApplied ||
		got[0].PostgresError == nil || !strings.HasPrefix(*got[0].PostgresError, "POSTGRES_TIMEOUT_ERROR") {
		t.Fatalf("results at the step timeout %+v, want one partial with a postgres timeout", got)
	}
	if n := testutil.ToFloat64(r.w.m.timeouts.WithLabelValues("postgres")); n != 1 {
		t.Fatalf("step timeouts counted %v, want 1", n)
	}
	// The re-send follows the policy's first delay (1 s, no jitter).
	r.at(30*time.Second + 999*time.Millisecond)
	if n := r.sends("pg"); n != 1 {
		t.Fatalf("pg sends before the retry is due: %d", n)
	}
	r.at(31 * time.Second)
	if n := r.sends("pg"); n != 2 {
		t.Fatalf("pg sends once the retry is due: %d, want 2", n)
	}
	// The first delivery's result arrives late: a success settles the attempt.
	r.answer("postgres", 0, true)
	got = r.results()
	if len(got) != 2 || got[1].Status != pipeline.StatusSuccess || !got[1].PostgresApplied || got[1].Retries["postgres"] != 1 {
		t.Fatalf("results after the late success %+v, want partial then success with one postgres retry", got)
	}
	if _, ok := r.w.InFlight(r.node); ok {
		t.Fatal("aggregation still in flight after its final result")
	}
}

// The late failure report of a delivery that already timed out is the same
// failure: it neither schedules a second retry nor publishes a result.
func TestStepTimeoutLateFailureIsIgnored(t *testing.T) {
	r := newStepRig(t, 10*time.Second)
	r.answer("consul", 0, true)
	r.at(10 * time.Second)
	agg, _ := r.w.InFlight(r.node)
	next := agg.Intents["postgres"].NextRetryAt
	r.answer("postgres", 0, false)
	agg, _ = r.w.InFlight(r.node)
	if n := len(r.results()); n != 1 {
		t.Fatalf("%d results, want the partial only", n)
	}
	if got := agg.Intents["postgres"].NextRetryAt; got == nil || next == nil || !got.Equal(next.Time) {
		t.Fatalf("retry moved from %v to %v by a duplicate failure", next, got)
	}
}

// A backend that never answers any delivery is given up after the policy's
// attempts: a failed final result and the intent in the DLQ, with the
// timeout as the reason.
func TestStepTimeoutExhaustsRetries(t *testing.T) {
	r := newStepRig(t, 5*time.Second)
	r.answer("consul", 0, true)
	// policy: 3 attempts, 1 s then 2 s between them; each waits 5 s.
	for _, d := range []time.Duration{5, 6, 11, 13, 18} {
		r.at(d * time.Second)
	}
	got := r.results()
	if len(got) != 2 || got[0].Status != pipeline.StatusPartial || got[1].Status != pipeline.StatusFailed {
		t.Fatalf("results %+v, want partial then failed", got)
	}
	if n := r.sends("pg"); n != 3 {
		t.Fatalf("pg deliveries %d, want 3 (the policy's max attempts)", n)
	}
	if len(r.dl.failures) != 1 || !strings.Contains(r.dl.failures[0].Err.Error(), "POSTGRES_TIMEOUT_ERROR") {
		t.Fatalf("dead letters %+v, want one naming the timeout", r.dl.failures)
	}
	if n := testutil.ToFloat64(r.w.m.timeouts.WithLabelValues("postgres")); n != 3 {
		t.Fatalf("step timeouts counted %v, want 3", n)
	}
}

// Aggregation state written before sent_at existed times out from the
// attempt's start.
func TestStepTimeoutWithoutSentAt(t *testing.T) {
	a := newAgg()
	if got := a.TimedOut(t0.Add(29*time.Second), 30*time.Second); len(got) != 0 {
		t.Fatalf("timed out early: %v", got)
	}
	if got := a.TimedOut(t0.Add(30*time.Second), 30*time.Second); len(got) != 2 {
		t.Fatalf("timed out %v, want both backends", got)
	}
	sent := pipeline.T(t0.Add(10 * time.Second))
	a.Intents["consul"].SentAt = &sent
	if got := a.NextTimeout(30 * time.Second); !got.Equal(t0.Add(30 * time.Second)) {
		t.Fatalf("next timeout %v", got)
	}
	if got := a.TimedOut(t0.Add(30*time.Second), 30*time.Second); len(got) != 1 || got[0] != "postgres" {
		t.Fatalf("timed out %v, want postgres only", got)
	}
}

// failOnce fails the first send that carries a record of topic.
type failOnce struct {
	*sender
	topic  string
	failed bool
}

func (f *failOnce) Send(ctx context.Context, msgs ...*sarama.ProducerMessage) error {
	for _, m := range msgs {
		if m.Topic == f.topic && !f.failed {
			f.failed = true
			return errors.New("broker hiccup")
		}
	}
	return f.sender.Send(ctx, msgs...)
}

// A result whose side effects fail (the broker refuses the registration
// result) is finished by the retry loop, even if the result is never
// redelivered.
func TestFailedFlushIsFinishedByRetryLoop(t *testing.T) {
	r := newStepRig(t, 30*time.Second)
	f := &failOnce{sender: r.s, topic: "result"}
	r.w.cfg.Send = f
	r.answer("consul", 0, true)
	if err := handled(r.w, resultMsg(t, r.w, r.node, "postgres", 0, true)); err == nil {
		t.Fatal("the failed result publish was not reported")
	}
	if n := len(r.results()); n != 0 {
		t.Fatalf("%d results published through a failing broker", n)
	}
	// The loop was poked for a second from now; it tries again then.
	if r.w.wakeAt != t0.Add(time.Second) {
		t.Fatalf("retry loop wakes at %v, want a second after the failure", r.w.wakeAt)
	}
	r.at(time.Second)
	if got := r.results(); len(got) != 1 || got[0].Status != pipeline.StatusSuccess {
		t.Fatalf("results after the retry loop %+v, want the success", got)
	}
	if _, ok := r.w.InFlight(r.node); ok {
		t.Fatal("aggregation still in flight")
	}
}

// The retry loop's pass costs what is due, not what is in flight.
func BenchmarkRetryPass10kInFlightNoneDue(b *testing.B) {
	w := New(attemptConfig(&sender{}, noDLQ{}))
	now := t0
	w.now = func() time.Time { return now }
	t := &testing.T{}
	for i := range 10000 {
		node := uuid.New()
		for j, typ := range []string{pipeline.PostgresUpsert, pipeline.ConsulRegister} {
			mustHandle(b, w, intentMsg(t, node, typ, int64(2*i+j), uuid.New()))
		}
	}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		w.retryPass(ctx)
	}
}

// An attempt found past its retry budget (restored long after it was
// written) is not re-sent: its unsettled intents are given up and
// dead-lettered, and its one result says which backend applied.
func TestAttemptOlderThanBudgetIsAbandoned(t *testing.T) {
	r := newStepRig(t, 30*time.Second)
	r.answer("consul", 0, true)
	r.at(r.w.budget() + time.Second)
	got := r.results()
	if len(got) != 1 || got[0].Status != pipeline.StatusPartial || !got[0].ConsulApplied || got[0].PostgresApplied {
		t.Fatalf("results %+v, want one partial with consul applied", got)
	}
	if n := r.sends("pg"); n != 1 {
		t.Fatalf("pg deliveries %d, want only the first (no re-send)", n)
	}
	if len(r.dl.failures) != 1 {
		t.Fatalf("dead letters %+v, want the postgres intent", r.dl.failures)
	}
	if _, ok := r.w.InFlight(r.node); ok {
		t.Fatal("abandoned aggregation still in flight")
	}
	if n := testutil.ToFloat64(r.w.m.abandoned); n != 1 {
		t.Fatalf("abandoned counted %v", n)
	}
}
