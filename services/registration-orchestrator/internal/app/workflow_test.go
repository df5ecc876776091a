package app

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/retry"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// routedIntent decodes an intent record routed to an effect topic, in
// either form.
func routedIntent(t *testing.T, m *sarama.ConsumerMessage) pipeline.Intent {
	t.Helper()
	r, err := pipeline.DecodeIntentRecord(m.Headers, m.Value)
	if err != nil {
		t.Fatalf("record on %s: %v", m.Topic, err)
	}
	return *r.Intent
}

func isIntent(id string, attempt int) func(*sarama.ConsumerMessage) bool {
	return func(m *sarama.ConsumerMessage) bool {
		r, err := pipeline.DecodeIntentRecord(m.Headers, m.Value)
		if err != nil {
			return false
		}
		return r.Intent.IntentID.String() == id && r.Intent.Attempt == attempt
	}
}

// payloadField extracts an envelope's payload without failing the test
// (predicates run in polling loops).
func payloadField(v []byte) json.RawMessage {
	var env struct {
		Payload json.RawMessage `json:"payload"`
	}
	_ = json.Unmarshal(v, &env)
	return env.Payload
}

func resultOf(t *testing.T, m *sarama.ConsumerMessage) pipeline.RegistrationResult {
	t.Helper()
	var r pipeline.RegistrationResult
	env := payloadOf(t, m, &r)
	if env.EventType == nil || !strings.HasSuffix(*env.EventType, ".node-registration-result") {
		t.Errorf("result event_type %v", env.EventType)
	}
	return r
}

// TestWorkflowPartialFailureRetryAndRestart plays the reducer and both
// effects: an attempt whose Consul registration fails is reported partial,
// only the Consul intent is re-sent (after an orchestrator restart, from the
// persisted state), and its success yields a final success that names the
// retried backend. The finished attempt's state is tombstoned.
func TestWorkflowPartialFailureRetryAndRestart(t *testing.T) {
	h := newHarness(t)
	pg, consul, results, state := h.topic(topics.PostgresIntents), h.topic(topics.ConsulIntents), h.topic(topics.NodeRegistrationResult), h.topic(topics.RegistrationAggregations)
	for _, tp := range []string{pg, consul, results, state, h.dlqTopic} {
		h.watch(tp)
	}
	s := h.settings()
	// Long enough to restart the orchestrator between the failure and the
	// re-send.
	s.RetryPolicy = &retry.Policy{MaxAttempts: 3, Initial: 4 * time.Second, Max: 8 * time.Second, Multiplier: 2, Jitter: 0}
	first := h.start(s)

	a := newAttempt()
	h.sendIntent(a, a.upsert)
	h.sendIntent(a, a.register)
	up := h.waitRecords(pg, 1, 20*time.Second, "upsert routed to postgres-intents", keyIs(a.node.String()))
	reg := h.waitRecords(consul, 1, 20*time.Second, "register routed to consul-intents", keyIs(a.node.String()))
	if in := routedIntent(t, up[0]); in.IntentID != a.upsert.IntentID || in.Attempt != 0 {
		t.Fatalf("routed upsert %+v", in)
	}
	if in := routedIntent(t, reg[0]); in.IntentID != a.register.IntentID {
		t.Fatalf("routed register %+v", in)
	}

	h.sendResult(a, a.upsert, 0, true, false)
	h.sendResult(a, a.register, 0, false, true)
	got := h.waitRecords(results, 1, 20*time.Second, "partial result", keyIs(a.node.String()))
	r := resultOf(t, got[0])
	if r.Status != pipeline.StatusPartial || !r.PostgresApplied || r.ConsulApplied || r.ConsulError == nil ||
		!strings.Contains(*r.ConsulError, "CONSUL_CONNECTION_ERROR") || r.CorrelationID != a.corr || r.RegistrationAttemptID != a.attemptID {
		t.Fatalf("first result %+v", r)
	}

	// Restart before the re-send is due: the new instance restores the
	// aggregation from the compacted topic and re-arms the retry.
	h.waitRecords(state, 1, 10*time.Second, "aggregation state persisted", keyIs(a.node.String()))
	first.stop()
	if n := len(h.seen(consul, isIntent(a.register.IntentID.String(), 1))); n != 0 {
		t.Fatalf("re-send happened before the restart (%d); the test needs a longer delay", n)
	}
	second := h.start(s)
	if _, ok := second.app.Workflow().InFlight(a.node); !ok {
		t.Fatal("aggregation not restored after restart")
	}
	resent := h.waitRecords(consul, 1, 20*time.Second, "consul intent re-sent with attempt 1", isIntent(a.register.IntentID.String(), 1))
	if n := len(h.seen(pg, keyIs(a.node.String()))); n != 1 {
		t.Errorf("postgres intent sent %d times; only the failed backend is retried", n)
	}
	if in := routedIntent(t, resent[0]); in.Sequence != a.register.Sequence || in.RegistrationAttemptID != a.attemptID {
		t.Errorf("re-sent intent %+v", in)
	}

	h.sendResult(a, a.register, 1, true, false)
	got = h.waitRecords(results, 2, 20*time.Second, "final result", keyIs(a.node.String()))
	r = resultOf(t, got[1])
	if r.Status != pipeline.StatusSuccess || !r.PostgresApplied || !r.ConsulApplied || r.Retries["consul"] != 1 || len(r.Retries) != 1 {
		t.Fatalf("final result %+v", r)
	}
	recs := h.waitRecords(state, 1, 10*time.Second, "aggregation tombstoned", func(m *sarama.ConsumerMessage) bool {
		return string(m.Key) == a.node.String() && m.Value == nil
	})
	if len(recs) != 1 {
		t.Errorf("%d tombstones", len(recs))
	}
	if _, ok := second.app.Workflow().InFlight(a.node); ok {
		t.Error("finished aggregation still in memory")
	}
	if n := len(h.seen(h.dlqTopic, nil)); n != 0 {
		t.Errorf("%d DLQ records for a recovered attempt", n)
	}
}

// TestWorkflowRetriesExhausted: a Consul registration that keeps failing is
// re-sent until the policy's attempts are used up, then the attempt is
// reported failed and the intent dead-lettered with the last error. Intents
// outside an attempt are routed untracked; an intent type with no route is
// dead-lettered as a configuration error.
func TestWorkflowRetriesExhausted(t *testing.T) {
	h := newHarness(t)
	pg, consul, results := h.topic(topics.PostgresIntents), h.topic(topics.ConsulIntents), h.topic(topics.NodeRegistrationResult)
	for _, tp := range []string{pg, consul, results, h.dlqTopic} {
		h.watch(tp)
	}
	s := h.settings() // 3 attempts, 300 ms then 600 ms
	in := h.start(s)

	a := newAttempt()
	h.sendIntent(a, a.upsert)
	h.sendIntent(a, a.register)
	h.waitRecords(consul, 1, 20*time.Second, "register routed", isIntent(a.register.IntentID.String(), 0))
	h.sendResult(a, a.upsert, 0, true, false)
	for attempt := 0; attempt < 3; attempt++ {
		h.waitRecords(consul, 1, 20*time.Second, "register attempt", isIntent(a.register.IntentID.String(), attempt))
		h.sendResult(a, a.register, attempt, false, true)
	}
	got := h.waitRecords(results, 2, 20*time.Second, "partial then failed", keyIs(a.node.String()))
	if r := resultOf(t, got[0]); r.Status != pipeline.StatusPartial {
		t.Errorf("first result %s", r.Status)
	}
	r := resultOf(t, got[1])
	if r.Status != pipeline.StatusFailed || !r.PostgresApplied || r.ConsulApplied || r.Retries["consul"] != 2 {
		t.Fatalf("final result %+v", r)
	}
	dl := h.waitRecords(h.dlqTopic, 1, 20*time.Second, "DLQ entry for the given-up intent", keyIs(a.node.String()))
	rec, err := dlq.Decode(dl[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	if rec.OriginalTopic != consul || rec.ErrorType != "InfraConnectionError" || rec.RetryCount != 2 ||
		!strings.Contains(rec.FailureReason, "gave up on consul.register after 3 attempts") ||
		!strings.Contains(rec.FailureReason, "CONSUL_CONNECTION_ERROR") || rec.CorrelationID != a.corr.String() {
		t.Fatalf("DLQ record %+v", rec)
	}
	var dead pipeline.Intent
	if err := json.Unmarshal(payloadField([]byte(rec.OriginalMessage.Value)), &dead); err != nil || dead.IntentID != a.register.IntentID || dead.Attempt != 2 {
		t.Fatalf("dead-lettered intent %+v (%v)", dead, err)
	}
	if n := len(h.seen(consul, keyIs(a.node.String()))); n != 3 {
		t.Errorf("consul intent sent %d times, want 3", n)
	}

	// An update outside any attempt is routed and its result dropped.
	upd := a.intent(pipeline.PostgresUpdate, 3, map[string]any{"intent_type": pipeline.PostgresUpdate})
	h.sendIntent(a, upd)
	h.waitRecords(pg, 1, 20*time.Second, "update routed", isIntent(upd.IntentID.String(), 0))
	h.sendResult(a, upd, 0, false, true)

	// No route: dead-lettered, naming the intent type.
	bad := a.intent("vault.write", 4, map[string]any{"intent_type": "vault.write"})
	h.sendIntent(a, bad)
	dl = h.waitRecords(h.dlqTopic, 2, 20*time.Second, "unrouted intent dead-lettered", keyIs(a.node.String()))
	rec, err = dlq.Decode(dl[1].Value)
	if err != nil {
		t.Fatal(err)
	}
	if rec.ErrorType != "ProtocolConfigurationError" || rec.FailureClass != dlq.ClassNoDispatcher ||
		!strings.Contains(rec.FailureReason, `intent_type "vault.write" has no route`) || rec.OriginalTopic != h.topic(topics.RegistrationIntents) {
		t.Fatalf("unrouted DLQ record %+v", rec)
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(h.seen(results, keyIs(a.node.String()))); n != 2 {
		t.Errorf("%d results; the update's failure must not produce one", n)
	}
	_ = in
}
