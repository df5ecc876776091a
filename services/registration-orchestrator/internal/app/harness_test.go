package app

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/contract"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/retry"
	"github.com/omninode/onex-fleet/pkg/service"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/expect"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/ingress"
)

// repoContract is the service's real contract file.
func repoContract() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "contracts", "registration-orchestrator", "contract.yaml")
}

// harness runs orchestrators in-process against the real broker, on a
// private copy of every topic the contract names.
type harness struct {
	t        testing.TB
	brokers  []string
	u, env   string
	rename   map[string]string
	dlqTopic string
	prod     sarama.SyncProducer
	logPath  string
	// logLevel is the orchestrator's log level ("" = debug); benchmarks
	// use info, as in production, so debug lines do not skew them.
	logLevel string

	mu      sync.Mutex
	records map[string][]*sarama.ConsumerMessage
}

// newHarness creates the topics: node-keyed ones with 3 partitions (intents
// and results must match), the one-partition ones as in the registry, the
// aggregation state and the node-topics table compacted.
func newHarness(t testing.TB, skip ...string) *harness {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test (real broker); skipped with -short")
	}
	brokers := testkit.KafkaBrokers(t)
	u := testkit.Unique()
	h := &harness{t: t, brokers: brokers, u: u, env: "orchtest-" + u, rename: map[string]string{},
		dlqTopic: "onex.dlq.o" + u + ".all.v1", records: map[string][]*sarama.ConsumerMessage{},
		logPath: filepath.Join(t.TempDir(), "orchestrator.log")}
	c, err := contract.Load(repoContract(), expect.Contract())
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]bool{}
	for _, list := range [][]string{c.Subscribe(), c.Publish()} {
		for _, n := range list {
			all[n] = true
		}
	}
	compact := "compact"
	for n := range all {
		p, _ := topics.Parse(n)
		renamed := fmt.Sprintf("onex.%s.o%s.%s.v%d", p.Kind, u, p.EventName, p.Version)
		h.rename[n] = renamed
		if slices.Contains(skip, n) {
			continue
		}
		parts := int32(3)
		if sp, ok := topics.Lookup(n); ok && sp.Partitions == 1 {
			parts = 1
		}
		var cfgs map[string]*string
		if n == topics.RegistrationAggregations || n == topics.NodeTopics {
			cfgs = map[string]*string{"cleanup.policy": &compact}
		}
		testkit.CreateTopic(t, brokers, renamed, parts, cfgs)
	}
	testkit.CreateTopic(t, brokers, h.dlqTopic, 1, nil)
	prod, err := sarama.NewSyncProducer(brokers, testkit.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prod.Close() })
	h.prod = prod
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("ORCH_TEST_LOG") == "1" {
			b, _ := os.ReadFile(h.logPath)
			lines := strings.Split(string(b), "\n")
			t.Logf("orchestrator log (last 80 lines):\n%s", strings.Join(lines[max(0, len(lines)-80):], "\n"))
		}
	})
	return h
}

// topic is the test's name for a registry topic.
func (h *harness) topic(name string) string { return h.rename[name] }

// settings are the settings a test starts from.
func (h *harness) settings() Settings {
	return Settings{
		ContractPath: repoContract(), ContractsDir: h.t.TempDir(), Rename: h.rename, DLQTopic: h.dlqTopic, Env: h.env,
		Limits:       ingress.Limits{MaxBytes: 256 << 10, MaxFutureSkew: 5 * time.Minute},
		TickInterval: time.Minute, SchedulerID: "sched-" + h.u, CatalogRefresh: time.Second,
		RetryPolicy:          &retry.Policy{MaxAttempts: 3, Initial: 300 * time.Millisecond, Max: 2 * time.Second, Multiplier: 2, Jitter: 0},
		RequestIntrospection: true, RestoreTimeout: 20 * time.Second, DrainTimeout: 5 * time.Second, FromOldest: true,
		// The topics are the test's own and start empty: reading them from
		// the start means nothing produced while partitions are still being
		// claimed is skipped.
		IngressFromOldest: true,
	}
}

// instance is one running orchestrator.
type instance struct {
	h      *harness
	app    *App
	svc    *service.Service
	cancel context.CancelFunc
	done   chan error
}

// start runs an orchestrator and waits until it is ready and every consumer
// group holds a session.
func (h *harness) start(s Settings) *instance {
	h.t.Helper()
	in := h.launch(s)
	h.eventually(60*time.Second, "orchestrator ready", func() bool { return in.svc.Health.Ready() && in.app.Ready() })
	return in
}

// launch runs an orchestrator without waiting for it.
func (h *harness) launch(s Settings) *instance { return h.launchWith(s, nil) }

// launchWith is launch with a chance to change the App before it runs.
func (h *harness) launchWith(s Settings, prepare func(*App)) *instance {
	t := h.t
	t.Helper()
	f, err := os.OpenFile(h.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	svc := &service.Service{
		Name: "registration-orchestrator",
		Config: &config.Config{Service: "registration-orchestrator", KafkaBootstrap: strings.Join(h.brokers, ","), Environment: h.env,
			DrainTimeout: s.DrainTimeout, ContractsDir: s.ContractsDir},
		Log:      observability.NewLogger(f, "registration-orchestrator", cmp.Or(h.logLevel, "debug")),
		Registry: prometheus.NewRegistry(),
		Health:   observability.NewHealth(Conditions...),
	}
	a, err := New(svc, s)
	if err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{h: h, app: a, svc: svc, cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- a.Run(ctx); f.Close() }()
	t.Cleanup(in.stop)
	return in
}

// stop drains the instance and waits for Run to return.
func (in *instance) stop() {
	if in.cancel == nil {
		return
	}
	in.cancel()
	in.cancel = nil
	select {
	case err := <-in.done:
		if err != nil {
			in.h.t.Errorf("Run: %v", err)
		}
	case <-time.After(40 * time.Second):
		in.h.t.Error("orchestrator did not stop within 40s")
	}
}

func (h *harness) eventually(timeout time.Duration, what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Fatalf("timed out after %v waiting for: %s", timeout, what)
}

// watch consumes topic from the start for the rest of the test; records()
// returns what arrived so far.
func (h *harness) watch(topic string) {
	t := h.t
	t.Helper()
	consumer, err := sarama.NewConsumer(h.brokers, testkit.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	parts, err := consumer.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var pcs []sarama.PartitionConsumer
	for _, p := range parts {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		pcs = append(pcs, pc)
		wg.Add(1)
		go func() { // owned by the test: ends when Cleanup closes pc
			defer wg.Done()
			for m := range pc.Messages() {
				h.mu.Lock()
				h.records[topic] = append(h.records[topic], m)
				h.mu.Unlock()
			}
		}()
	}
	t.Cleanup(func() {
		for _, pc := range pcs {
			pc.AsyncClose()
		}
		wg.Wait()
		consumer.Close()
	})
}

// seen returns the records of a watched topic that match pred.
func (h *harness) seen(topic string, pred func(*sarama.ConsumerMessage) bool) []*sarama.ConsumerMessage {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*sarama.ConsumerMessage
	for _, m := range h.records[topic] {
		if pred == nil || pred(m) {
			out = append(out, m)
		}
	}
	return out
}

// waitRecords waits until at least n records of a watched topic match pred.
func (h *harness) waitRecords(topic string, n int, timeout time.Duration, what string, pred func(*sarama.ConsumerMessage) bool) []*sarama.ConsumerMessage {
	h.t.Helper()
	var got []*sarama.ConsumerMessage
	h.eventually(timeout, what, func() bool {
		got = h.seen(topic, pred)
		return len(got) >= n
	})
	return got
}

func keyIs(k string) func(*sarama.ConsumerMessage) bool {
	return func(m *sarama.ConsumerMessage) bool { return string(m.Key) == k }
}

// produce publishes one record; an empty key means an unkeyed record.
func (h *harness) produce(topic, key string, value []byte) (int32, int64) {
	h.t.Helper()
	msg := &sarama.ProducerMessage{Topic: topic}
	if key != "" {
		msg.Key = sarama.StringEncoder(key)
	}
	if value != nil {
		msg.Value = sarama.ByteEncoder(value)
	}
	p, o, err := h.prod.SendMessage(msg)
	if err != nil {
		h.t.Fatal(err)
	}
	return p, o
}

// payloadOf decodes the envelope payload of a record into v.
func payloadOf(t *testing.T, m *sarama.ConsumerMessage, v any) *envelope.Envelope {
	t.Helper()
	env, err := envelope.Decode(m.Value)
	if err != nil {
		t.Fatalf("record on %s is not an envelope: %v", m.Topic, err)
	}
	if err := json.Unmarshal(env.Payload, v); err != nil {
		t.Fatalf("payload on %s: %v", m.Topic, err)
	}
	return env
}

// attempt is a registration attempt the test plays the reducer for.
type attempt struct {
	node, attemptID, corr uuid.UUID
	upsert, register      pipeline.Intent
}

func newAttempt() *attempt {
	node := uuid.New()
	a := &attempt{node: node, attemptID: uuid.New(), corr: uuid.New()}
	a.upsert = a.intent(pipeline.PostgresUpsert, 1, map[string]any{"intent_type": pipeline.PostgresUpsert, "correlation_id": a.corr,
		"record": map[string]any{"entity_id": node, "current_state": "awaiting_ack", "domain": "registration", "node_type": "effect", "data": map[string]any{}}})
	id := node.String()
	a.register = a.intent(pipeline.ConsulRegister, 2, pipeline.ConsulRegisterPayload{IntentType: pipeline.ConsulRegister, CorrelationID: a.corr,
		NodeID: &id, ServiceID: "onex-effect-" + id, ServiceName: "onex-effect", Tags: []string{"onex"}, EventBusConfig: json.RawMessage("null")})
	return a
}

func (a *attempt) intent(typ string, seq int64, payload any) pipeline.Intent {
	body, _ := json.Marshal(payload)
	return pipeline.Intent{IntentID: uuid.NewSHA1(a.node, fmt.Appendf(nil, "intent:%d", seq)), IntentType: typ,
		Target: "test://" + typ, Payload: body, Priority: 1, NodeID: a.node, Sequence: seq, RegistrationAttemptID: a.attemptID}
}

// sendIntent publishes an intent as the reducer does (envelope, key node_id).
func (h *harness) sendIntent(a *attempt, in pipeline.Intent) {
	h.t.Helper()
	m := h.intentRecord(a, in)
	h.produce(m.Topic, in.NodeID.String(), m.Value.(sarama.ByteEncoder))
}

// intentRecord is the record the reducer writes for an intent.
func (h *harness) intentRecord(a *attempt, in pipeline.Intent) *sarama.ProducerMessage {
	h.t.Helper()
	env, err := envelope.New(in, envelope.WithEnvelopeID(in.IntentID), envelope.WithCorrelationID(a.corr),
		envelope.WithEventType(envelope.EventTypeFromTopic(topics.RegistrationIntents)))
	if err != nil {
		h.t.Fatal(err)
	}
	b, err := env.Encode()
	if err != nil {
		h.t.Fatal(err)
	}
	return &sarama.ProducerMessage{Topic: h.topic(topics.RegistrationIntents), Key: sarama.StringEncoder(in.NodeID.String()), Value: sarama.ByteEncoder(b)}
}

// protoIntentRecord is the record the reducer writes for an intent since
// it writes protobuf: an update's payload as fields.
func (h *harness) protoIntentRecord(a *attempt, in pipeline.Intent) *sarama.ProducerMessage {
	h.t.Helper()
	if in.IntentType == pipeline.PostgresUpdate {
		in.Payload, in.Update = nil, &pipeline.PostgresUpdatePayload{IntentType: in.IntentType, CorrelationID: a.corr, EntityID: in.NodeID,
			Domain: "registration", Updates: pipeline.ProjectionUpdate{CurrentState: "active", UpdatedAt: pipeline.T(time.Now()),
				RegisteredAt: pipeline.T(time.Now()), NodeType: "effect", LastAppliedEventID: a.attemptID}}
	}
	b, err := pipeline.MarshalIntent(pipeline.IntentRecord{Intent: &in, EnvelopeID: in.IntentID, CreatedAt: time.Now(), CorrelationID: a.corr})
	if err != nil {
		h.t.Fatal(err)
	}
	return &sarama.ProducerMessage{Topic: h.topic(topics.RegistrationIntents), Key: sarama.StringEncoder(in.NodeID.String()), Value: sarama.ByteEncoder(b),
		Headers: []sarama.RecordHeader{{Key: []byte(pipeline.HeaderContentType), Value: []byte(pipeline.IntentContentType)}}}
}

// sendResult publishes an effect result as an effect does (protobuf, with
// its content type).
func (h *harness) sendResult(a *attempt, in pipeline.Intent, attemptNo int, ok, retriable bool) {
	h.t.Helper()
	backend := pipeline.Backend(in.IntentType)
	r := pipeline.EffectResult{IntentID: in.IntentID, IntentType: in.IntentType, Backend: backend, NodeID: a.node, CorrelationID: a.corr,
		RegistrationAttemptID: a.attemptID, Sequence: in.Sequence, Attempt: attemptNo, Success: ok, Retriable: retriable,
		DurationMS: 2.5, BackendID: backend, Completed: pipeline.T(time.Now())}
	if !ok {
		code, text := strings.ToUpper(backend)+"_CONNECTION_ERROR", backend+" operation failed: connection refused"
		r.ErrorCode, r.Error = &code, &text
	}
	b, err := pipeline.MarshalEffectResult(pipeline.EffectResultRecord{Result: &r, EnvelopeID: uuid.New(), CreatedAt: time.Now()})
	if err != nil {
		h.t.Fatal(err)
	}
	if _, _, err := h.prod.SendMessage(&sarama.ProducerMessage{Topic: h.topic(topics.EffectResults), Key: sarama.StringEncoder(a.node.String()),
		Value: sarama.ByteEncoder(b), Headers: []sarama.RecordHeader{{Key: []byte(pipeline.HeaderContentType), Value: []byte(pipeline.EffectResultContentType)}}}); err != nil {
		h.t.Fatal(err)
	}
}
