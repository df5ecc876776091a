package dlq

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// TestPublishRealBroker publishes a DLQ record to a real broker
// (KAFKA_BOOTSTRAP_SERVERS; skipped without it unless ONEX_REQUIRE_INFRA=1),
// reads it back and checks key, body and headers.
func TestPublishRealBroker(t *testing.T) {
	brokers := testkit.KafkaBrokers(t)
	dlqTopic := "onex.dlq.test" + testkit.Unique() + ".events.v1"
	if err := topics.Validate(dlqTopic); err != nil {
		t.Fatal(err)
	}
	testkit.CreateTopic(t, brokers, dlqTopic, 1, nil)

	producer, err := sarama.NewSyncProducer(brokers, NewProducerConfig("onex-dlq-test"))
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	t.Cleanup(func() { _ = producer.Close() })

	clock := time.Date(2026, 3, 2, 14, 8, 0, 513330000, time.UTC)
	msgID := "0a1b2c3d-4e5f-4a6b-9c7d-8e9f0a1b2c3d"
	pinMessageID(t, msgID)
	reg := prometheus.NewRegistry()
	p, err := NewPublisher(producer, reg, WithSource("test"), WithRouter(Router{Override: dlqTopic}), WithClock(func() time.Time { return clock }))
	if err != nil {
		t.Fatal(err)
	}

	orig := &sarama.ConsumerMessage{
		Topic: topics.NodeIntrospection, Key: []byte("node-7"),
		Value:  []byte(`{"payload": {"node_id": "not-a-uuid", "node_type": "effect"}`),
		Offset: 1042, Partition: 3,
	}
	corr := uuid.MustParse("5d6e7f80-91a2-4b3c-8d4e-5f6a7b8c9d0e")
	f := Failure{Err: jsonDecodeError{"payload is not valid JSON"}, Class: ClassPublisherMalformed, CorrelationID: corr}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.Publish(ctx, orig, f); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	// What Build makes for the same input is what must be on the topic.
	f.DLQTopic = dlqTopic
	want, err := Build(orig, f, "test", clock)
	if err != nil {
		t.Fatal(err)
	}
	wantValue, _ := want.Value.Encode()

	got := testkit.ReadAll(t, brokers, dlqTopic, 1, 30*time.Second, false)
	if len(got) != 1 {
		t.Fatalf("read %d records from %s, want 1", len(got), dlqTopic)
	}
	m := got[0]
	if string(m.Key) != "node-7" {
		t.Errorf("key %q", m.Key)
	}
	if string(m.Value) != string(wantValue) {
		t.Errorf("value\n got %s\nwant %s", m.Value, wantValue)
	}
	rec, err := Decode(m.Value)
	if err != nil {
		t.Fatal(err)
	}
	wantRec := &Record{
		OriginalTopic:    topics.NodeIntrospection,
		OriginalMessage:  OriginalMessage{Key: ptr("node-7"), Value: string(orig.Value), Offset: ptr(int64(1042)), Partition: ptr(int32(3))},
		FailureReason:    "JSONDecodeError: payload is not valid JSON",
		FailureType:      FailureTypeContent,
		FailureTimestamp: "2026-03-02T14:08:00.513330+00:00",
		CorrelationID:    corr.String(),
		ErrorType:        "JSONDecodeError",
		FailureClass:     ClassPublisherMalformed,
	}
	if !reflect.DeepEqual(rec, wantRec) {
		t.Errorf("record\n got %+v\nwant %+v", rec, wantRec)
	}

	var gotHeaders, wantHeaders [][2]string
	for _, h := range m.Headers {
		gotHeaders = append(gotHeaders, [2]string{string(h.Key), string(h.Value)})
	}
	for _, h := range want.Headers {
		wantHeaders = append(wantHeaders, [2]string{string(h.Key), string(h.Value)})
	}
	if !reflect.DeepEqual(gotHeaders, wantHeaders) {
		t.Errorf("headers\n got %v\nwant %v", gotHeaders, wantHeaders)
	}
	if wantHeaders[2][1] != msgID || wantHeaders[4][1] != "test" || wantHeaders[11][1] != dlqTopic {
		t.Errorf("unexpected expected headers %v", wantHeaders)
	}
	if c := counterValues(t, reg, MetricMessages); len(c) != 1 {
		t.Errorf("messages metric %v", c)
	}
}

// TestPublishUnknownTopicRealBroker checks that a DLQ topic missing on a
// broker without auto-creation is reported as a non-retriable configuration
// error, not as success.
func TestPublishUnknownTopicRealBroker(t *testing.T) {
	brokers := testkit.KafkaBrokers(t)
	cfg := NewProducerConfig("onex-dlq-test")
	cfg.Producer.Retry.Max = 1
	cfg.Metadata.Retry.Max = 1
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	producer, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	t.Cleanup(func() { _ = producer.Close() })
	missing := "onex.dlq.test" + testkit.Unique() + ".missing.v1"
	p, err := NewPublisher(producer, nil, WithRouter(Router{Override: missing}))
	if err != nil {
		t.Fatal(err)
	}
	err = p.Publish(context.Background(), &sarama.ConsumerMessage{Topic: topics.NodeHeartbeat, Value: []byte("x")}, Failure{Err: errors.New("x")})
	var ie *infraerr.Error
	if !errors.As(err, &ie) || ie.Kind != infraerr.KindConfiguration || infraerr.Retriable(err) {
		t.Fatalf("err = %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

// A record as large as the broker allows, of bytes that JSON escapes six
// to one, is dead-lettered (cut to fit) instead of failing every retry.
func TestPublishOversizedRealBroker(t *testing.T) {
	brokers := testkit.KafkaBrokers(t)
	dlqTopic := "onex.dlq.test" + testkit.Unique() + ".events.v1"
	testkit.CreateTopic(t, brokers, dlqTopic, 1, nil)
	producer, err := sarama.NewSyncProducer(brokers, NewProducerConfig("onex-dlq-test"))
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	t.Cleanup(func() { _ = producer.Close() })
	p, err := NewPublisher(producer, prometheus.NewRegistry(), WithRouter(Router{Override: dlqTopic}))
	if err != nil {
		t.Fatal(err)
	}
	orig := &sarama.ConsumerMessage{Topic: topics.NodeHeartbeat, Value: bytes.Repeat([]byte{0x02}, 1_000_000), Offset: 9}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.Publish(ctx, orig, Failure{Err: errors.New("record value is over the limit")}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	got := testkit.ReadAll(t, brokers, dlqTopic, 1, 30*time.Second, false)
	if len(got) != 1 {
		t.Fatalf("read %d records, want 1", len(got))
	}
	rec, err := Decode(got[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(rec.OriginalMessage.Value); n == 0 || n >= len(orig.Value) {
		t.Fatalf("original value of %d bytes on the topic", n)
	}
	var marked bool
	for _, h := range got[0].Headers {
		marked = marked || (string(h.Key) == HeaderValueTruncated && string(h.Value) == "1000000")
	}
	if !marked {
		t.Errorf("no %s header: %v", HeaderValueTruncated, got[0].Headers)
	}
}
