package workflow

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/retry"
)

var (
	t0     = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	policy = retry.Policy{MaxAttempts: 3, Initial: time.Second, Max: 30 * time.Second, Multiplier: 2, Jitter: 0}
	half   = func() float64 { return 0.5 }
)

func newAgg() *Aggregation {
	in := &pipeline.Intent{NodeID: uuid.New(), RegistrationAttemptID: uuid.New()}
	a := NewAggregation(in, uuid.New(), []string{"postgres", "consul"}, t0)
	a.Intents["postgres"] = &Tracked{IntentID: uuid.New(), IntentType: pipeline.PostgresUpsert, Sequence: 1, State: StatePending}
	a.Intents["consul"] = &Tracked{IntentID: uuid.New(), IntentType: pipeline.ConsulRegister, Sequence: 2, State: StatePending}
	return a
}

func result(a *Aggregation, backend string, attempt int, ok, retriable bool) *pipeline.EffectResult {
	t := a.Intents[backend]
	r := &pipeline.EffectResult{IntentID: t.IntentID, IntentType: t.IntentType, Backend: backend, NodeID: a.NodeID,
		RegistrationAttemptID: a.AttemptID, Attempt: attempt, Success: ok, Retriable: retriable, DurationMS: 3}
	if !ok {
		code, text := "CONSUL_CONNECTION_ERROR", "consul operation failed: connection refused"
		r.ErrorCode, r.Error = &code, &text
	}
	return r
}

// resend does what the retry loop does when a retry is due.
func resend(a *Aggregation, backend string) {
	t := a.Intents[backend]
	t.Attempt, t.Retries, t.State, t.NextRetryAt = t.Attempt+1, t.Retries+1, StatePending, nil
}

type step struct {
	backend   string
	attempt   int
	ok        bool
	retriable bool
	resend    bool // instead of a result: re-send backend's intent
	// expected after the step
	result    string // status of the result queued, "" none
	scheduled bool   // a retry is scheduled for backend
	givenUp   bool
	done      bool
}

func TestEvaluateScenarios(t *testing.T) {
	cases := []struct {
		name  string
		steps []step
		// retries in the last queued result
		retries map[string]int
	}{
		{"both succeed", []step{
			{backend: "postgres", ok: true},
			{backend: "consul", ok: true, result: "success", done: true},
		}, map[string]int{}},
		{"consul fails, is retried and recovers", []step{
			{backend: "postgres", ok: true},
			{backend: "consul", retriable: true, result: "partial", scheduled: true},
			{backend: "consul", resend: true},
			{backend: "consul", attempt: 1, ok: true, result: "success", done: true},
		}, map[string]int{"consul": 1}},
		{"consul retries exhausted", []step{
			{backend: "postgres", ok: true},
			{backend: "consul", retriable: true, result: "partial", scheduled: true},
			{backend: "consul", resend: true},
			{backend: "consul", attempt: 1, retriable: true, scheduled: true},
			{backend: "consul", resend: true},
			{backend: "consul", attempt: 2, retriable: true, givenUp: true, result: "failed", done: true},
		}, map[string]int{"consul": 2}},
		{"non-retriable failure is final at once", []step{
			{backend: "consul", retriable: false, givenUp: true},
			{backend: "postgres", ok: true, result: "partial", done: true},
		}, map[string]int{}},
		{"both fail: failed, retry both", []step{
			{backend: "postgres", retriable: true, scheduled: true},
			{backend: "consul", retriable: true, scheduled: true, result: "failed"},
		}, nil},
		{"a failure then an in-place success of the same attempt", []step{
			{backend: "postgres", retriable: true, scheduled: true},
			{backend: "consul", ok: true, result: "partial"},
			{backend: "postgres", ok: true, result: "success", done: true},
		}, map[string]int{}},
		{"duplicate failure does not schedule twice", []step{
			{backend: "postgres", ok: true},
			{backend: "consul", retriable: true, scheduled: true, result: "partial"},
			{backend: "consul", retriable: true, scheduled: true},
		}, nil},
		{"late success of the first attempt after a re-send supersedes", []step{
			{backend: "postgres", ok: true},
			{backend: "consul", retriable: true, scheduled: true, result: "partial"},
			{backend: "consul", resend: true},
			{backend: "consul", attempt: 0, ok: true, result: "success", done: true},
		}, map[string]int{"consul": 1}},
		{"stale failure of an older attempt is ignored", []step{
			{backend: "postgres", ok: true},
			{backend: "consul", retriable: true, scheduled: true, result: "partial"},
			{backend: "consul", resend: true},
			{backend: "consul", attempt: 0, retriable: true},
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAgg()
			var last pipeline.RegistrationResult
			for i, s := range tc.steps {
				if s.resend {
					resend(a, s.backend)
					continue
				}
				before := len(a.results)
				var d Decision
				if Apply(a.Intents[s.backend], result(a, s.backend, s.attempt, s.ok, s.retriable)) {
					d = Evaluate(a, t0.Add(time.Duration(i)*time.Second), policy, half)
				}
				got := ""
				if len(a.results) > before {
					last = a.results[len(a.results)-1]
					got = last.Status
				}
				if got != s.result {
					t.Fatalf("step %d: result %q, want %q", i, got, s.result)
				}
				tr := a.Intents[s.backend]
				if (tr.NextRetryAt != nil) != s.scheduled {
					t.Fatalf("step %d: retry scheduled = %v (%+v)", i, tr.NextRetryAt != nil, d)
				}
				if (tr.State == StateGivenUp) != s.givenUp {
					t.Fatalf("step %d: state %s", i, tr.State)
				}
				if a.done != s.done {
					t.Fatalf("step %d: done = %v", i, a.done)
				}
			}
			if tc.retries != nil {
				if len(last.Retries) != len(tc.retries) {
					t.Fatalf("retries %v, want %v", last.Retries, tc.retries)
				}
				for b, n := range tc.retries {
					if last.Retries[b] != n {
						t.Fatalf("retries %v, want %v", last.Retries, tc.retries)
					}
				}
			}
		})
	}
}

func TestEvaluateBackoffFollowsPolicy(t *testing.T) {
	a := newAgg()
	Apply(a.Intents["postgres"], result(a, "postgres", 0, true, false))
	Apply(a.Intents["consul"], result(a, "consul", 0, false, true))
	Evaluate(a, t0, policy, half)
	if got := a.Intents["consul"].NextRetryAt.Sub(t0); got != time.Second {
		t.Fatalf("first retry after %s, want 1s", got)
	}
	resend(a, "consul")
	Apply(a.Intents["consul"], result(a, "consul", 1, false, true))
	Evaluate(a, t0, policy, half)
	if got := a.Intents["consul"].NextRetryAt.Sub(t0); got != 2*time.Second {
		t.Fatalf("second retry after %s, want 2s", got)
	}
	if d := a.Due(t0.Add(time.Second)); len(d) != 0 {
		t.Fatalf("due too early: %v", d)
	}
	if d := a.Due(t0.Add(2 * time.Second)); len(d) != 1 || d[0] != "consul" {
		t.Fatalf("due = %v", d)
	}
}

func TestResultReportsBackends(t *testing.T) {
	a := newAgg()
	Apply(a.Intents["postgres"], result(a, "postgres", 0, true, false))
	Apply(a.Intents["consul"], result(a, "consul", 0, false, true))
	r := a.Result(pipeline.StatusPartial, t0.Add(1500*time.Millisecond))
	if !r.PostgresApplied || r.ConsulApplied || r.PostgresError != nil {
		t.Fatalf("%+v", r)
	}
	if r.ConsulError == nil || *r.ConsulError != "CONSUL_CONNECTION_ERROR: consul operation failed: connection refused" {
		t.Fatalf("consul error %v", r.ConsulError)
	}
	if len(r.IntentResults) != 2 || r.IntentResults[0].IntentKind != pipeline.ConsulRegister || r.TotalExecutionTimeMS != 1500 {
		t.Fatalf("%+v", r)
	}
}
