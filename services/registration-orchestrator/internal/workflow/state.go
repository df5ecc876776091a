package workflow

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/retry"
)

// Intent states within an aggregation.
const (
	// StatePending: sent to the effect, no result for this attempt yet.
	StatePending = "pending"
	// StateSucceeded: the effect reported success (a later failure report
	// for the same intent cannot undo it).
	StateSucceeded = "succeeded"
	// StateFailed: the effect reported failure; NextRetryAt says when the
	// intent is re-sent.
	StateFailed = "failed"
	// StateGivenUp: failed for good (not retriable, or retries exhausted);
	// the intent is dead-lettered.
	StateGivenUp = "given_up"
)

// Aggregation is the in-flight state of one node's registration attempt.
// It is the value of the compacted aggregations topic (key node_id), so it
// survives a restart; a tombstone ends it. The record is a protobuf
// onex.fleet.v1.Aggregation (statewire.go); the JSON tags are its older
// form, which restore still reads. One node has at most one attempt
// in flight: a newer attempt replaces the older one.
type Aggregation struct {
	NodeID    uuid.UUID `json:"node_id"`
	AttemptID uuid.UUID `json:"registration_attempt_id"`
	// CorrelationID is the intents' envelope correlation id; the results
	// carry it.
	CorrelationID uuid.UUID     `json:"correlation_id"`
	StartedAt     envelope.Time `json:"started_at"`
	// Expected are the backends whose results the attempt waits for.
	Expected []string `json:"expected_backends"`
	// Intents holds the attempt's intents by backend.
	Intents map[string]*Tracked `json:"intents"`
	// Published counts the results published so far (0, 1 or 2): the first
	// once every backend has reported, a final one after retries.
	Published int `json:"results_published"`

	// outbox: side effects decided but not yet carried out (not persisted;
	// a crash before they are done redelivers the input that caused them).
	results []pipeline.RegistrationResult
	done    bool
	// wakeAt is the earliest wake-up queued for the aggregation in the
	// workflow's retry schedule (zero: none).
	wakeAt time.Time
	// partition is the number of the partition whose lock guards the
	// node's records (see locks.go): the retry loop takes that lock before
	// it touches the aggregation.
	partition int32
}

// Tracked is one intent of an attempt.
type Tracked struct {
	IntentID   uuid.UUID `json:"intent_id"`
	IntentType string    `json:"intent_type"`
	Sequence   int64     `json:"sequence"`
	// Envelope is the intent record value as the reducer published it,
	// when it was the JSON form (an envelope).
	Envelope json.RawMessage `json:"envelope,omitempty"`
	// Record is the intent record value as the reducer published it,
	// when it was in another form (ContentType: protobuf). JSON has no
	// place for those bytes but base64. An orchestrator that predates it
	// sees no envelope and gives such an intent up rather than re-send it.
	Record []byte `json:"record,omitempty"`
	// ContentType is Record's content type (pipeline.HeaderContentType);
	// empty with Envelope.
	ContentType string `json:"content_type,omitempty"`
	// Attempt is the delivery attempt last sent (0 = the reducer's own).
	Attempt int `json:"attempt"`
	// Retries counts re-sends.
	Retries int    `json:"retries"`
	State   string `json:"state"`
	// Last is the latest result that changed the state.
	Last        *pipeline.EffectResult `json:"last_result"`
	NextRetryAt *envelope.Time         `json:"next_retry_at"`
	// DeadLettered is set once a given-up intent is in the DLQ.
	DeadLettered bool `json:"dead_lettered"`
	// RoutedPartition/RoutedOffset locate the last send on the effect topic.
	RoutedPartition int32 `json:"routed_partition"`
	RoutedOffset    int64 `json:"routed_offset"`
	// SentAt is when Attempt was sent; the step timeout counts from it
	// (absent in state written before it existed: the attempt's start).
	SentAt *envelope.Time `json:"sent_at,omitempty"`
}

// setValue keeps the intent record value v of content type ct: a JSON
// one as Envelope (readable in the state as it always was), any other in
// Record.
func (t *Tracked) setValue(ct string, v []byte) {
	if pipeline.IsJSON(ct) {
		t.Envelope, t.Record, t.ContentType = json.RawMessage(v), nil, ""
		return
	}
	t.Envelope, t.Record, t.ContentType = nil, v, ct
}

// value is the intent record value the reducer published and its content
// type.
func (t *Tracked) value() (string, []byte) {
	if t.Record != nil {
		return t.ContentType, t.Record
	}
	return pipeline.ContentTypeJSON, t.Envelope
}

// NewAggregation starts the aggregation of an attempt expecting expected.
func NewAggregation(in *pipeline.Intent, correlationID uuid.UUID, expected []string, now time.Time) *Aggregation {
	exp := slices.Clone(expected)
	sort.Strings(exp)
	return &Aggregation{
		NodeID: in.NodeID, AttemptID: in.RegistrationAttemptID, CorrelationID: correlationID,
		StartedAt: pipeline.T(now), Expected: exp, Intents: map[string]*Tracked{},
	}
}

// MaxSequence is the highest sequence among the attempt's intents.
func (a *Aggregation) MaxSequence() int64 {
	var m int64 = -1
	for _, t := range a.Intents {
		m = max(m, t.Sequence)
	}
	return m
}

// Due returns the backends whose retry is due at now, sorted.
func (a *Aggregation) Due(now time.Time) []string {
	var out []string
	for b, t := range a.Intents {
		if t.State == StateFailed && t.NextRetryAt != nil && !t.NextRetryAt.After(now) {
			out = append(out, b)
		}
	}
	sort.Strings(out)
	return out
}

// NextDue is the earliest scheduled retry, or the zero time.
func (a *Aggregation) NextDue() time.Time {
	var next time.Time
	for _, t := range a.Intents {
		if t.State == StateFailed && t.NextRetryAt != nil && (next.IsZero() || t.NextRetryAt.Before(next)) {
			next = t.NextRetryAt.Time
		}
	}
	return next
}

// sentAt is when t's current delivery left, for the step timeout.
func (a *Aggregation) sentAt(t *Tracked) time.Time {
	if t.SentAt != nil {
		return t.SentAt.Time
	}
	return a.StartedAt.Time
}

// TimedOut returns the backends whose pending delivery has waited for its
// result for timeout or longer at now, sorted.
func (a *Aggregation) TimedOut(now time.Time, timeout time.Duration) []string {
	var out []string
	for b, t := range a.Intents {
		if t.State == StatePending && !a.sentAt(t).Add(timeout).After(now) {
			out = append(out, b)
		}
	}
	sort.Strings(out)
	return out
}

// NextTimeout is the earliest step timeout of a pending delivery, or the
// zero time.
func (a *Aggregation) NextTimeout(timeout time.Duration) time.Time {
	var next time.Time
	for _, t := range a.Intents {
		if t.State != StatePending {
			continue
		}
		if at := a.sentAt(t).Add(timeout); next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next
}

// TimeoutResult is the failure the orchestrator records for a delivery that
// got no result within the step timeout: retriable, with the backend's
// timeout error code (e.g. POSTGRES_TIMEOUT_ERROR), so it is re-sent like
// any retriable failure. A late result of the same delivery is then a
// duplicate failure (ignored) or a success (which still settles the
// intent, see Apply).
func TimeoutResult(a *Aggregation, backend string, t *Tracked, timeout time.Duration, now time.Time) *pipeline.EffectResult {
	code := strings.ToUpper(backend) + "_TIMEOUT_ERROR"
	text := fmt.Sprintf("%s operation failed: timeout (no result within the %s step timeout)", backend, timeout)
	return &pipeline.EffectResult{
		IntentID: t.IntentID, IntentType: t.IntentType, Backend: backend, NodeID: a.NodeID, CorrelationID: a.CorrelationID,
		RegistrationAttemptID: a.AttemptID, Sequence: t.Sequence, Attempt: t.Attempt, Error: &text, ErrorCode: &code,
		Retriable: true, DurationMS: float64(now.Sub(a.sentAt(t)).Microseconds()) / 1000, BackendID: "orchestrator-step-timeout",
		Completed: pipeline.T(now),
	}
}

// Apply records an effect result on t and reports whether the state changed.
// A success always wins: it settles the intent even when it answers an older
// attempt than the one last sent (an effect that retried in place) or comes
// after a failure. A failure counts only for the attempt last sent, once.
func Apply(t *Tracked, res *pipeline.EffectResult) bool {
	if t.State == StateSucceeded {
		return false
	}
	if res.Success {
		t.State, t.Last, t.NextRetryAt = StateSucceeded, res, nil
		return true
	}
	if t.State == StateGivenUp || res.Attempt < t.Attempt {
		return false
	}
	if t.State == StateFailed && t.Last != nil && !t.Last.Success && t.Last.Attempt == res.Attempt {
		return false // the same failure delivered again
	}
	t.State, t.Last, t.NextRetryAt = StateFailed, res, nil
	return true
}

// Decision is what Evaluate decided, for metrics and logs.
type Decision struct {
	// Scheduled and GivenUp name the backends whose retry was scheduled or
	// abandoned by this evaluation.
	Scheduled, GivenUp []string
	// Result is the status of the result queued by this evaluation ("" none).
	Result string
}

// Evaluate advances an aggregation after a change: a failed intent gets its
// retry scheduled (retriable failure, attempts left under p) or is given up;
// once every expected backend has reported, the first result is queued with
// the all_or_partial status; once nothing is failed-and-retrying or pending
// any more after that, a final result is queued (success when every backend
// succeeded, failed when one was given up) and the aggregation is done.
// u draws uniform numbers in [0,1) for the jitter.
func Evaluate(a *Aggregation, now time.Time, p retry.Policy, u func() float64) Decision {
	var d Decision
	for _, b := range sortedBackends(a) {
		t := a.Intents[b]
		if t.State != StateFailed || t.NextRetryAt != nil {
			continue
		}
		if t.Last != nil && t.Last.Retriable && 1+t.Retries < p.MaxAttempts {
			at := pipeline.T(now.Add(p.Delay(t.Retries, u())))
			t.NextRetryAt = &at
			d.Scheduled = append(d.Scheduled, b)
		} else {
			t.State = StateGivenUp
			d.GivenUp = append(d.GivenUp, b)
		}
	}
	for _, b := range a.Expected {
		if t := a.Intents[b]; t == nil || t.Last == nil {
			return d // some backend has not reported yet
		}
	}
	settled, allOK := true, true
	for _, b := range a.Expected {
		switch a.Intents[b].State {
		case StateSucceeded:
		case StateGivenUp:
			allOK = false
		default:
			settled, allOK = false, false
		}
	}
	switch {
	case a.Published == 0:
		ok := map[string]bool{}
		for _, b := range a.Expected {
			ok[b] = a.Intents[b].State == StateSucceeded
		}
		d.Result = pipeline.Aggregate(ok)
	case settled:
		d.Result = pipeline.StatusFailed
		if allOK {
			d.Result = pipeline.StatusSuccess
		}
	}
	if d.Result != "" {
		a.results = append(a.results, a.Result(d.Result, now))
		a.Published++
	}
	if settled {
		a.done = true
	}
	return d
}

// Result builds the registration result of the aggregation with status.
func (a *Aggregation) Result(status string, now time.Time) pipeline.RegistrationResult {
	r := pipeline.RegistrationResult{
		CorrelationID: a.CorrelationID, NodeID: a.NodeID, RegistrationAttemptID: a.AttemptID, Status: status,
		IntentResults: []pipeline.IntentResult{}, Retries: map[string]int{},
		TotalExecutionTimeMS: float64(max(0, now.Sub(a.StartedAt.Time)).Microseconds()) / 1000, EmittedAt: pipeline.T(now),
	}
	for _, b := range a.Expected {
		t := a.Intents[b]
		if t == nil {
			continue
		}
		ok := t.State == StateSucceeded
		var errText *string
		var ms float64
		if t.Last != nil {
			ms = t.Last.DurationMS
			if !ok {
				errText = describe(t.Last)
			}
		}
		switch b {
		case "postgres":
			r.PostgresApplied, r.PostgresError = ok, errText
		case "consul":
			r.ConsulApplied, r.ConsulError = ok, errText
		}
		r.IntentResults = append(r.IntentResults, pipeline.IntentResult{IntentKind: t.IntentType, Success: ok, Error: errText, ExecutionTimeMS: ms})
		if t.Retries > 0 {
			r.Retries[b] = t.Retries
		}
	}
	return r
}

// describe renders a failed result's error as "<code>: <error>"; both parts
// were sanitized by the effect.
func describe(res *pipeline.EffectResult) *string {
	var parts []string
	if res.ErrorCode != nil && *res.ErrorCode != "" {
		parts = append(parts, *res.ErrorCode)
	}
	if res.Error != nil && *res.Error != "" {
		parts = append(parts, *res.Error)
	}
	s := strings.Join(parts, ": ")
	if s == "" {
		s = fmt.Sprintf("%s reported failure without an error", res.Backend)
	}
	return &s
}

func sortedBackends(a *Aggregation) []string {
	out := make([]string, 0, len(a.Intents))
	for b := range a.Intents {
		out = append(out, b)
	}
	sort.Strings(out)
	return out
}
