package app

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/fixtures"
)

// The throughput benchmarks run the orchestrator in-process against the
// real broker on a backlog of b.N records written before it starts, and
// time from the first forwarded record to the b.N-th, so group joins and
// state restore are not measured. Run them with a fixed count, e.g.
//
//	ONEX_REQUIRE_INFRA=1 go test ./services/registration-orchestrator/internal/app \
//	    -run '^$' -bench 'RouteIntents|IngressHeartbeats' -benchtime 20000x -count 1
//
// (each run of the function creates its own topics; with a time-based
// -benchtime the framework's probing runs would each pay that setup).

// benchNodes is the simulated fleet size of the end-to-end suite.
const benchNodes = 2000

// BenchmarkRouteIntents: heartbeat updates (postgres.update_registration,
// the untracked intents that dominate the fleet's traffic) routed from
// registration-intents to postgres-intents. Reports intents/s.
func BenchmarkRouteIntents(b *testing.B) {
	h := newHarness(b)
	h.logLevel = "info"
	routed := h.counter(h.topic(topics.PostgresIntents), nil)
	nodes := make([]uuid.UUID, benchNodes)
	for i := range nodes {
		nodes[i] = uuid.New()
	}
	msgs := make([]*sarama.ProducerMessage, 0, b.N)
	for i := 0; i < b.N; i++ {
		node := nodes[i%len(nodes)]
		msgs = append(msgs, updateIntentRecord(b, h.topic(topics.RegistrationIntents), node, int64(10+i/len(nodes))))
	}
	h.sendBacklog(msgs)
	h.measure(b, routed, b.N, "intents/s")
}

// BenchmarkIngressHeartbeats: node heartbeats (the golden Python heartbeat,
// one node id per record) validated and forwarded to the reducer input.
// Reports heartbeats/s.
func BenchmarkIngressHeartbeats(b *testing.B) {
	h := newHarness(b)
	h.logLevel = "info"
	set, err := fixtures.LoadSet()
	if err != nil {
		b.Fatal(err)
	}
	want := make(map[string]bool, b.N)
	msgs := make([]*sarama.ProducerMessage, 0, b.N)
	for i := 0; i < b.N; i++ {
		r := set.Heartbeat()
		want[r.NodeID.String()] = true
		msgs = append(msgs, &sarama.ProducerMessage{Topic: h.topic(topics.NodeHeartbeat), Key: sarama.StringEncoder(r.NodeID.String()),
			Value: sarama.ByteEncoder(r.Value)})
	}
	// Ticks also land on the reducer input: count only the heartbeats.
	forwarded := h.counter(h.topic(topics.ReducerInput), func(m *sarama.ConsumerMessage) bool { return want[string(m.Key)] })
	h.sendBacklog(msgs)
	h.measure(b, forwarded, b.N, "heartbeats/s")
}

// updateIntentRecord is a heartbeat's update intent as the reducer writes it.
func updateIntentRecord(tb testing.TB, topic string, node uuid.UUID, seq int64) *sarama.ProducerMessage {
	tb.Helper()
	corr := uuid.New()
	now := pipeline.T(time.Now())
	upd := pipeline.PostgresUpdatePayload{IntentType: pipeline.PostgresUpdate, CorrelationID: corr, EntityID: node, Domain: "registration",
		Updates: pipeline.ProjectionUpdate{CurrentState: "active", LastHeartbeatAt: &now, LivenessDeadline: &now}}
	payload, err := json.Marshal(upd)
	if err != nil {
		tb.Fatal(err)
	}
	in := pipeline.Intent{IntentID: uuid.NewSHA1(node, fmt.Appendf(nil, "intent:%d", seq)), IntentType: pipeline.PostgresUpdate,
		Target: "postgres://registration_projections", Payload: payload, Priority: 1, NodeID: node, Sequence: seq}
	env, err := envelope.New(in, envelope.WithEnvelopeID(in.IntentID), envelope.WithCorrelationID(corr),
		envelope.WithEventType(envelope.EventTypeFromTopic(topics.RegistrationIntents)))
	if err != nil {
		tb.Fatal(err)
	}
	v, err := env.Encode()
	if err != nil {
		tb.Fatal(err)
	}
	return &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(node.String()), Value: sarama.ByteEncoder(v)}
}

// sendBacklog writes msgs in large batches.
func (h *harness) sendBacklog(msgs []*sarama.ProducerMessage) {
	h.t.Helper()
	for start := 0; start < len(msgs); start += 2000 {
		if err := h.prod.SendMessages(msgs[start:min(start+2000, len(msgs))]); err != nil {
			h.t.Fatal(err)
		}
	}
}

// counter counts the records of topic, from its oldest offset, that match
// pred (nil: all), for the rest of the test.
func (h *harness) counter(topic string, pred func(*sarama.ConsumerMessage) bool) *atomic.Int64 {
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
	var n atomic.Int64
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
				if pred == nil || pred(m) {
					n.Add(1)
				}
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
	return &n
}

// measure starts an orchestrator on the backlog and times from the first
// forwarded record to the n-th, reporting the rate in unit.
func (h *harness) measure(b *testing.B, c *atomic.Int64, n int, unit string) {
	b.StopTimer()
	b.ResetTimer()
	h.launch(h.settings())
	wait := func(k int64, timeout time.Duration) {
		deadline := time.Now().Add(timeout)
		for c.Load() < k {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d records forwarded after %s", c.Load(), n, timeout)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	wait(1, 60*time.Second)
	start := time.Now()
	b.StartTimer()
	wait(int64(n), 30*time.Minute)
	b.StopTimer()
	if el := time.Since(start); n > 1 && el > 0 {
		b.ReportMetric(float64(n-1)/el.Seconds(), unit)
	}
}
