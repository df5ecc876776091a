package dlq

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/topics"
)

func TestTopicFor(t *testing.T) {
	tests := []struct{ original, want string }{
		{topics.NodeIntrospection, topics.DLQEvents},
		{topics.NodeRegistrationAcked, topics.DLQCommands},
		{topics.RuntimeTick, topics.DLQIntents},
		{topics.RegistrationSnapshots, topics.DLQEvents},
		{topics.RegistrationIntents, topics.DLQIntents},
		{topics.ReducerInput, topics.DLQCommands},
		{topics.DLQEvents, topics.DLQIntents},
		{"onex.evt.Platform_X.y.v1", topics.DLQEvents}, // loose: kind segment still read
		{"onex.weird.platform.x.v1", topics.DLQIntents},
		{"orders", topics.DLQIntents},
		{"", topics.DLQIntents},
	}
	for _, tt := range tests {
		t.Run(tt.original, func(t *testing.T) {
			if got := TopicFor(tt.original); got != tt.want {
				t.Errorf("TopicFor = %q, want %q", got, tt.want)
			}
			if got := (Router{}).TopicFor(tt.original); got != tt.want {
				t.Errorf("Router{}.TopicFor = %q", got)
			}
			if got := (Router{Override: "my-dlq"}).TopicFor(tt.original); got != "my-dlq" {
				t.Errorf("override ignored: %q", got)
			}
		})
	}
}

func TestTopicForEventType(t *testing.T) {
	tests := []struct{ eventType, original, want string }{
		{"platform.node-heartbeat", topics.NodeHeartbeat, topics.DLQPlatform},
		{"intelligence.something", topics.NodeHeartbeat, "onex.dlq.omnibase-infra.intelligence.v1"},
		{"Platform.x", topics.NodeHeartbeat, topics.DLQPlatform},
		{"", topics.NodeRegistrationAcked, topics.DLQCommands},
		{"NodeIntrospectionEvent", topics.NodeIntrospection, topics.DLQEvents},
		{"bad_domain.x", topics.RuntimeTick, topics.DLQIntents},
		{"event.x", topics.NodeHeartbeat, topics.DLQEvents},
	}
	for _, tt := range tests {
		t.Run(tt.eventType, func(t *testing.T) {
			if got := TopicForEventType(tt.eventType, tt.original); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if got := (Router{Override: "x"}).TopicForEventType(tt.eventType, tt.original); got != "x" {
				t.Errorf("override ignored: %q", got)
			}
		})
	}
}

func TestTopicName(t *testing.T) {
	tests := []struct{ category, want string }{
		{"event", topics.DLQEvents}, {"events", topics.DLQEvents}, {"evt", topics.DLQEvents},
		{"command", topics.DLQCommands}, {"cmd", topics.DLQCommands},
		{"intent", topics.DLQIntents}, {"intents", topics.DLQIntents},
		{"platform", topics.DLQPlatform}, {"quarantine", topics.DLQQuarantine},
		{"a_b", ""}, {"", ""}, {"x.y", ""},
	}
	for _, tt := range tests {
		if got := TopicName(tt.category); got != tt.want {
			t.Errorf("TopicName(%q) = %q, want %q", tt.category, got, tt.want)
		}
	}
}

func TestRouterFromEnvAndSource(t *testing.T) {
	env := map[string]string{EnvDeadLetterTopic: " onex.dlq.custom.all.v1 ", "ONEX_ENVIRONMENT": "dev"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if r := RouterFromEnv(lookup); r.Override != "onex.dlq.custom.all.v1" {
		t.Errorf("override %q", r.Override)
	}
	if s := SourceFromEnv(lookup); s != "dev" {
		t.Errorf("source %q", s)
	}
	env["KAFKA_ENVIRONMENT"] = "staging"
	if s := SourceFromEnv(lookup); s != "staging" {
		t.Errorf("source %q", s)
	}
	if s := SourceFromEnv(func(string) (string, bool) { return "", false }); s != "local" {
		t.Errorf("default source %q", s)
	}
	if r := RouterFromEnv(func(string) (string, bool) { return "", false }); r.Override != "" {
		t.Error("override without env")
	}
}

func TestFormatTimestamp(t *testing.T) {
	tests := []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 3, 2, 14, 8, 0, 513330000, time.UTC), "2026-03-02T14:08:00.513330+00:00"},
		{time.Date(2026, 3, 2, 14, 8, 0, 0, time.UTC), "2026-03-02T14:08:00+00:00"},
		{time.Date(2026, 3, 2, 14, 8, 0, 999, time.UTC), "2026-03-02T14:08:00+00:00"},         // sub-µs truncated
		{time.Date(2026, 3, 2, 14, 8, 0, 1999, time.UTC), "2026-03-02T14:08:00.000001+00:00"}, // truncated, not rounded
		{time.Date(2026, 3, 2, 16, 8, 0, 500000000, time.FixedZone("x", 2*3600)), "2026-03-02T14:08:00.500000+00:00"},
	}
	for _, tt := range tests {
		if got := FormatTimestamp(tt.in); got != tt.want {
			t.Errorf("FormatTimestamp(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, s := range []string{"2026-03-02T14:08:00.513330+00:00", "2026-03-02T14:08:00.513330Z", "2026-03-02T14:08:00.51333", "2026-03-02T16:08:00.51333+02:00"} {
		got, err := ParseTimestamp(s)
		if err != nil || !got.Equal(time.Date(2026, 3, 2, 14, 8, 0, 513330000, time.UTC)) {
			t.Errorf("ParseTimestamp(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseTimestamp("yesterday"); err == nil {
		t.Error("bad timestamp parsed")
	}
}

func TestPythonJSONStrings(t *testing.T) {
	// Expected outputs produced by CPython's json.dumps.
	tests := []struct{ in, want string }{
		{"é\u2028😀\x7f\x01\"\\\n\r\t\b\f/<>&", `"\u00e9\u2028\ud83d\ude00\u007f\u0001\"\\\n\r\t\b\f/<>&"`},
		{"plain ascii ~", `"plain ascii ~"`},
		{"\xff", `"\ufffd"`},
		{"", `""`},
	}
	for _, tt := range tests {
		var w pyWriter
		w.str(tt.in)
		if got := w.b.String(); got != tt.want {
			t.Errorf("str(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestDecodeVariants(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		check   func(*Record) bool
		wantErr bool
	}{
		{"processed path: string offset, no failure_type", `{"original_topic": "t", "original_message": {"key": "k", "value": "v", "offset": "1042", "partition": 3}, "failure_reason": "r", "failure_timestamp": "x", "correlation_id": "c", "retry_count": 2, "error_type": "E"}`,
			func(r *Record) bool {
				return *r.OriginalMessage.Offset == 1042 && *r.OriginalMessage.Key == "k" && r.FailureType == "" && r.RetryCount == 2
			}, false},
		{"nulls", `{"original_topic": "t", "original_message": {"key": null, "value": "<no_value>", "offset": null, "partition": null}, "retry_count": "0"}`,
			func(r *Record) bool {
				return r.OriginalMessage.Offset == nil && r.OriginalMessage.Partition == nil && r.OriginalMessage.Key == nil && r.OriginalMessage.Value == "<no_value>"
			}, false},
		{"python None string offset", `{"original_topic": "t", "original_message": {"offset": "None"}}`,
			func(r *Record) bool { return r.OriginalMessage.Offset == nil }, false},
		{"fallback flag and extras", `{"original_topic": "t", "original_message": {}, "serialization_fallback": true, "failure_class": "no_dispatcher", "validation_detail": "d", "unknown": 1}`,
			func(r *Record) bool {
				return r.SerializationFallback && r.FailureClass == ClassNoDispatcher && r.ValidationDetail == "d"
			}, false},
		{"bad offset", `{"original_topic": "t", "original_message": {"offset": "abc"}}`, nil, true},
		{"partition out of range", `{"original_topic": "t", "original_message": {"partition": 99999999999}}`, nil, true},
		{"missing topic", `{"original_message": {}}`, nil, true},
		{"not json", `{"original_topic": `, nil, true},
		{"not utf8", "{\"original_topic\": \"\xff\"}", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Decode([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err == nil && !tt.check(r) {
				t.Errorf("decoded %+v", r)
			}
		})
	}
}

func headerMap(pm *sarama.ProducerMessage) map[string]string {
	m := map[string]string{}
	for _, h := range pm.Headers {
		m[string(h.Key)] = string(h.Value)
	}
	return m
}

func bodyOf(t *testing.T, pm *sarama.ProducerMessage) *Record {
	t.Helper()
	b, _ := pm.Value.Encode()
	r, err := Decode(b)
	if err != nil {
		t.Fatalf("decode own record: %v\n%s", err, b)
	}
	return r
}

func TestBuild(t *testing.T) {
	now := time.Date(2026, 3, 2, 14, 8, 0, 513330000, time.UTC)
	base := &sarama.ConsumerMessage{Topic: topics.NodeRegistrationAcked, Key: []byte("node-1"), Value: []byte(`{"x": 1}`), Offset: 7, Partition: 2}
	corr := uuid.MustParse("11111111-2222-4333-8444-555555555555")
	timeout := infraerr.New(infraerr.KindTimeout, infraerr.Context{}, "db slow", context.DeadlineExceeded)
	tests := []struct {
		name    string
		msg     *sarama.ConsumerMessage
		f       Failure
		source  string
		wantErr string
		check   func(t *testing.T, pm *sarama.ProducerMessage, r *Record, h map[string]string)
	}{
		{"infra derived, keyed, commands DLQ", base, Failure{Err: timeout, CorrelationID: corr}, "dev", "",
			func(t *testing.T, pm *sarama.ProducerMessage, r *Record, h map[string]string) {
				k, _ := pm.Key.Encode()
				if pm.Topic != topics.DLQCommands || string(k) != "node-1" || *r.OriginalMessage.Key != "node-1" {
					t.Errorf("topic %s key %s", pm.Topic, k)
				}
				if r.FailureType != FailureTypeInfra || r.ErrorType != "InfraTimeoutError" || r.FailureReason != "InfraTimeoutError: db slow: context deadline exceeded" {
					t.Errorf("record %+v", r)
				}
				if h["source"] != "dev" || h["correlation_id"] != corr.String() || h["failure_type"] != "infra_error" || h["dlq_topic"] != topics.DLQCommands {
					t.Errorf("headers %v", h)
				}
				if _, ok := h["failure_class"]; ok {
					t.Error("failure_class header without a class")
				}
			}},
		{"content derived, empty source → local, new correlation", base, Failure{Err: infraerr.Content("payload.node_id", "not a UUID")}, "", "",
			func(t *testing.T, pm *sarama.ProducerMessage, r *Record, h map[string]string) {
				id, err := uuid.Parse(r.CorrelationID)
				if err != nil || id.Version() != 4 || h["correlation_id"] != r.CorrelationID {
					t.Errorf("correlation %q", r.CorrelationID)
				}
				if r.FailureType != FailureTypeContent || h["source"] != "local" || r.ErrorType != "ValidationError" {
					t.Errorf("record %+v headers %v", r, h)
				}
			}},
		{"secrets redacted, value verbatim", &sarama.ConsumerMessage{Topic: topics.NodeIntrospection, Value: []byte(`{"password": "hunter2"}`)},
			Failure{Err: fmt.Errorf("connect postgresql://svc:hunter2@db/x: %w", syscall.ECONNREFUSED), ValidationDetail: "token=abc"}, "", "",
			func(t *testing.T, pm *sarama.ProducerMessage, r *Record, h map[string]string) {
				if r.FailureReason != "InfraConnectionError: "+infraerr.Redacted || h["failure_reason"] != r.FailureReason {
					t.Errorf("reason %q / %q", r.FailureReason, h["failure_reason"])
				}
				if r.ValidationDetail != infraerr.Redacted {
					t.Errorf("validation detail %q", r.ValidationDetail)
				}
				for _, hd := range pm.Headers {
					if strings.Contains(string(hd.Value), "hunter2") {
						t.Errorf("header %s leaks", hd.Key)
					}
				}
				if r.OriginalMessage.Value != `{"password": "hunter2"}` {
					t.Errorf("original value changed: %q", r.OriginalMessage.Value)
				}
				if pm.Key != nil || r.OriginalMessage.Key != nil {
					t.Error("key for an unkeyed record")
				}
			}},
		{"invalid utf8 replaced, class and retry count", &sarama.ConsumerMessage{Topic: topics.RuntimeTick, Key: []byte("k\xff"), Value: []byte("v\xfe\xff")},
			Failure{Err: errors.New("x"), Type: "infra_error", Class: ClassConsumerError, RetryCount: 2, DLQTopic: "legacy.dlq"}, "", "",
			func(t *testing.T, pm *sarama.ProducerMessage, r *Record, h map[string]string) {
				if *r.OriginalMessage.Key != "k\ufffd" || r.OriginalMessage.Value != "v\ufffd\ufffd" {
					t.Errorf("replacement %q %q", *r.OriginalMessage.Key, r.OriginalMessage.Value)
				}
				if pm.Topic != "legacy.dlq" || h["failure_class"] != ClassConsumerError || h["retry_count"] != "2" || r.RetryCount != 2 || h["max_retries"] != "3" {
					t.Errorf("headers %v", h)
				}
				if last := pm.Headers[len(pm.Headers)-1]; string(last.Key) != "failure_class" {
					t.Errorf("failure_class not last: %s", last.Key)
				}
			}},
		{"nil value", &sarama.ConsumerMessage{Topic: topics.NodeHeartbeat}, Failure{Err: errors.New("x"), Type: "content"}, "", "",
			func(t *testing.T, pm *sarama.ProducerMessage, r *Record, h map[string]string) {
				if r.OriginalMessage.Value != "" || r.FailureType != "content_error" {
					t.Errorf("record %+v", r)
				}
			}},
		{"replayed record keeps its replay count", &sarama.ConsumerMessage{Topic: topics.NodeIntrospection, Value: []byte(`{}`),
			Headers: []*sarama.RecordHeader{{Key: []byte("x-replay-count"), Value: []byte("3")}}}, Failure{Err: errors.New("x"), RetryCount: 1}, "", "",
			func(t *testing.T, pm *sarama.ProducerMessage, r *Record, h map[string]string) {
				if r.RetryCount != 3 || h["retry_count"] != "3" {
					t.Errorf("retry_count %d / %q, want 3 from x-replay-count", r.RetryCount, h["retry_count"])
				}
			}},
		{"own retry count above the replay count wins", &sarama.ConsumerMessage{Topic: topics.NodeIntrospection, Value: []byte(`{}`),
			Headers: []*sarama.RecordHeader{{Key: []byte("x-replay-count"), Value: []byte("1")}}}, Failure{Err: errors.New("x"), RetryCount: 4}, "", "",
			func(t *testing.T, pm *sarama.ProducerMessage, r *Record, h map[string]string) {
				if r.RetryCount != 4 || h["retry_count"] != "4" {
					t.Errorf("retry_count %d / %q, want 4", r.RetryCount, h["retry_count"])
				}
			}},
		{"nil message", nil, Failure{Err: errors.New("x")}, "", "without a topic", nil},
		{"blank topic", &sarama.ConsumerMessage{Topic: " "}, Failure{Err: errors.New("x")}, "", "without a topic", nil},
		{"nil error", base, Failure{}, "", "without an error", nil},
		{"negative retry", base, Failure{Err: errors.New("x"), RetryCount: -1}, "", "negative retry", nil},
		{"unknown class", base, Failure{Err: errors.New("x"), Class: "oops"}, "", "unknown failure class", nil},
		{"bad type", base, Failure{Err: errors.New("x"), Type: "Content Error"}, "", "failure type", nil},
		{"bad dlq topic", base, Failure{Err: errors.New("x"), DLQTopic: "a b"}, "", "not a valid Kafka topic", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pm, err := Build(tt.msg, tt.f, tt.source, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			h := headerMap(pm)
			order := []string{"content_type", "correlation_id", "message_id", "timestamp", "source", "event_type", "schema_version", "priority", "retry_count", "max_retries", "original_topic", "dlq_topic", "failure_type", "failure_reason", "failure_timestamp"}
			for i, k := range order {
				if string(pm.Headers[i].Key) != k {
					t.Fatalf("header %d is %s, want %s", i, pm.Headers[i].Key, k)
				}
			}
			if h["event_type"] != "dlq_raw_message" || h["content_type"] != "application/json" || h["timestamp"] != "2026-03-02T14:08:00.513330+00:00" || h["failure_timestamp"] != h["timestamp"] {
				t.Errorf("fixed headers %v", h)
			}
			if _, err := uuid.Parse(h["message_id"]); err != nil {
				t.Errorf("message_id %q", h["message_id"])
			}
			r := bodyOf(t, pm)
			if r.OriginalTopic != tt.msg.Topic || h["original_topic"] != tt.msg.Topic || *r.OriginalMessage.Offset != tt.msg.Offset || *r.OriginalMessage.Partition != tt.msg.Partition {
				t.Errorf("original %+v", r)
			}
			tt.check(t, pm, r, h)
		})
	}
}

// fakeProducer acknowledges or fails SendMessage; other methods panic via
// the nil embedded interface.
type fakeProducer struct {
	sarama.SyncProducer
	err  error
	sent []*sarama.ProducerMessage
}

func (f *fakeProducer) SendMessage(m *sarama.ProducerMessage) (int32, int64, error) {
	if f.err != nil {
		return 0, 0, f.err
	}
	f.sent = append(f.sent, m)
	return 0, int64(len(f.sent) - 1), nil
}

func counterValues(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var parts []string
			for _, l := range m.GetLabel() {
				parts = append(parts, l.GetName()+"="+l.GetValue())
			}
			out[strings.Join(parts, ",")] = m.GetCounter().GetValue()
		}
	}
	return out
}

func TestPublisher(t *testing.T) {
	reg := prometheus.NewRegistry()
	fp := &fakeProducer{}
	clock := time.Date(2026, 3, 2, 14, 8, 0, 0, time.UTC)
	p, err := NewPublisher(fp, reg, WithSource("dev"), WithClock(func() time.Time { return clock }))
	if err != nil {
		t.Fatal(err)
	}
	msg := &sarama.ConsumerMessage{Topic: topics.NodeIntrospection, Value: []byte("{"), Offset: 1, Partition: 0}
	content := jsonDecodeError{"payload is not valid JSON"}
	if err := p.Publish(context.Background(), msg, Failure{Err: content, Class: ClassPublisherMalformed}); err != nil {
		t.Fatal(err)
	}
	if len(fp.sent) != 1 || fp.sent[0].Topic != topics.DLQEvents {
		t.Fatalf("sent %v", fp.sent)
	}
	if h := headerMap(fp.sent[0]); h["source"] != "dev" || h["timestamp"] != "2026-03-02T14:08:00+00:00" {
		t.Errorf("headers %v", h)
	}

	// Second publisher on the same registry shares the series; router override.
	p2, err := NewPublisher(fp, reg, WithRouter(Router{Override: "custom-dlq"}))
	if err != nil {
		t.Fatalf("second publisher on the same registry: %v", err)
	}
	if err := p2.Publish(context.Background(), msg, Failure{Err: content}); err != nil {
		t.Fatal(err)
	}
	if fp.sent[1].Topic != "custom-dlq" {
		t.Errorf("override topic %s", fp.sent[1].Topic)
	}

	// Free text never becomes a label.
	odd := &sarama.ConsumerMessage{Topic: "bad topic with spaces\n", Value: []byte("x")}
	if err := p.Publish(context.Background(), odd, Failure{Err: errors.New("x"), Type: "weird", DLQTopic: topics.DLQIntents}); err != nil {
		t.Fatal(err)
	}

	// A writer with its own transactions (the reducer) counts on the same series.
	shared, err := NewMetrics(reg)
	if err != nil {
		t.Fatalf("metrics on a registry that has the publisher's: %v", err)
	}
	shared.Written(msg.Topic, topics.DLQEvents, Failure{Err: content, Type: "content"})

	got := counterValues(t, reg, MetricMessages)
	want := map[string]float64{
		"dlq_topic=onex.dlq.omnibase-infra.events.v1,error_type=JSONDecodeError,failure_type=content_error,original_topic=onex.evt.platform.node-introspection.v1": 2,
		"dlq_topic=custom-dlq,error_type=JSONDecodeError,failure_type=content_error,original_topic=onex.evt.platform.node-introspection.v1":                        1,
		"dlq_topic=onex.dlq.omnibase-infra.intents.v1,error_type=RuntimeHostError,failure_type=other,original_topic=other":                                         1,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("messages metric\n got %v\nwant %v", got, want)
	}

	// Broker failure: error classified, failure counted, nothing counted as sent.
	tests := []struct {
		name      string
		sendErr   error
		kind      infraerr.Kind
		retriable bool
	}{
		{"out of brokers", sarama.ErrOutOfBrokers, infraerr.KindConnection, true},
		{"not enough replicas", sarama.ErrNotEnoughReplicas, infraerr.KindConnection, true},
		{"request timed out", sarama.ErrRequestTimedOut, infraerr.KindTimeout, true},
		{"unknown topic", sarama.ErrUnknownTopicOrPartition, infraerr.KindConfiguration, false},
		{"not authorized", sarama.ErrTopicAuthorizationFailed, infraerr.KindAuthentication, false},
		{"refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), infraerr.KindConnection, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fp.err = tt.sendErr
			err := p.Publish(context.Background(), msg, Failure{Err: content})
			var ie *infraerr.Error
			if !errors.As(err, &ie) || ie.Kind != tt.kind || infraerr.Retriable(err) != tt.retriable || !errors.Is(err, tt.sendErr) {
				t.Fatalf("err = %v", err)
			}
			if ie.Context.Target != topics.DLQEvents || ie.Context.Transport != infraerr.TransportKafka {
				t.Errorf("context %+v", ie.Context)
			}
		})
	}
	fp.err = nil
	if f := counterValues(t, reg, MetricFailures)["dlq_topic=onex.dlq.omnibase-infra.events.v1"]; f != float64(len(tests)) {
		t.Errorf("failure metric %v", f)
	}

	// Build failure and cancelled context.
	if err := p.Publish(context.Background(), msg, Failure{}); !infraerr.IsContent(err) {
		t.Errorf("build failure err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before := len(fp.sent)
	if err := p.Publish(ctx, msg, Failure{Err: content}); !errors.Is(err, context.Canceled) || len(fp.sent) != before {
		t.Errorf("cancelled publish err = %v, sent %d", err, len(fp.sent)-before)
	}
	if _, err := NewPublisher(nil, nil); err == nil {
		t.Error("nil producer accepted")
	}
}

func TestNewProducerConfigValid(t *testing.T) {
	cfg := NewProducerConfig("x")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Producer.RequiredAcks != sarama.WaitForAll || !cfg.Producer.Return.Successes || !cfg.Version.IsAtLeast(sarama.V3_6_0_0) {
		t.Errorf("config %+v", cfg.Producer)
	}
}

func FuzzRecordJSON(f *testing.F) {
	f.Add("onex.evt.a.b.v1", []byte("k"), []byte(`{"x": "é😀"}`), "reason\n\"q\"", int64(5))
	f.Add("", []byte(nil), []byte("\xff\x00"), "", int64(-1))
	f.Fuzz(func(t *testing.T, topic string, key, value []byte, reason string, offset int64) {
		r := Record{OriginalTopic: topic + "x", FailureReason: reason, FailureTimestamp: "t", CorrelationID: "c", ErrorType: "E"}
		r.OriginalMessage.Value = utf8Replace(value)
		if key != nil {
			k := utf8Replace(key)
			r.OriginalMessage.Key = &k
		}
		r.OriginalMessage.Offset = &offset
		b, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(b) {
			t.Fatalf("invalid JSON: %s", b)
		}
		for _, c := range b {
			if c >= 0x80 {
				t.Fatalf("non-ASCII byte in %s", b)
			}
		}
		back, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		wantTopic := strings.ToValidUTF8(r.OriginalTopic, "\ufffd")
		if back.OriginalMessage.Value != r.OriginalMessage.Value || *back.OriginalMessage.Offset != offset || (back.OriginalTopic != wantTopic && back.OriginalTopic != utf8Replace([]byte(r.OriginalTopic))) {
			t.Fatalf("round trip %+v vs %+v", back, r)
		}
	})
}

func TestReplayCount(t *testing.T) {
	h := func(kv ...string) []*sarama.RecordHeader {
		var out []*sarama.RecordHeader
		for i := 0; i < len(kv); i += 2 {
			out = append(out, &sarama.RecordHeader{Key: []byte(kv[i]), Value: []byte(kv[i+1])})
		}
		return out
	}
	tests := []struct {
		name    string
		headers []*sarama.RecordHeader
		want    int
		ok      bool
	}{
		{"none", nil, 0, false},
		{"other headers", h("retry_count", "4"), 0, false},
		{"plain", h("x-replay-count", "2"), 2, true},
		{"spaces", h("x-replay-count", " 7 "), 7, true},
		{"zero", h("x-replay-count", "0"), 0, true},
		{"negative ignored", h("x-replay-count", "-1"), 0, false},
		{"garbage ignored", h("x-replay-count", "two"), 0, false},
		{"last valid wins", h("x-replay-count", "1", "x-replay-count", "5", "x-replay-count", "x"), 5, true},
		{"nil header skipped", []*sarama.RecordHeader{nil, {Key: []byte("x-replay-count"), Value: []byte("1")}}, 1, true},
	}
	for _, tt := range tests {
		if got, ok := ReplayCount(tt.headers); got != tt.want || ok != tt.ok {
			t.Errorf("%s: ReplayCount = %d, %v; want %d, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzReplayCount(f *testing.F) {
	f.Add([]byte("3"))
	f.Add([]byte("-0"))
	f.Add([]byte("99999999999999999999"))
	f.Fuzz(func(t *testing.T, v []byte) {
		n, ok := ReplayCount([]*sarama.RecordHeader{{Key: []byte(HeaderReplayCount), Value: v}})
		if !ok {
			if n != 0 {
				t.Fatalf("ReplayCount(%q) = %d without a value", v, n)
			}
			return
		}
		if m, err := strconv.Atoi(strings.TrimSpace(string(v))); err != nil || m != n || n < 0 {
			t.Fatalf("ReplayCount(%q) = %d, not the number written", v, n)
		}
	})
}

// A record too large to be dead-lettered whole is cut, at a UTF-8
// boundary, to a prefix of itself that fits, and says so in a header.
func TestBuildTruncatesOversizedValues(t *testing.T) {
	now := time.Date(2026, 3, 2, 14, 8, 0, 0, time.UTC)
	for name, value := range map[string][]byte{
		"control characters (six bytes each as JSON)": bytes.Repeat([]byte{0x01}, 1_000_000),
		"multi-byte runes":                            []byte(strings.Repeat("é€😀", 120_000)),
		"quotes":                                      bytes.Repeat([]byte(`"`), 700_000),
	} {
		t.Run(name, func(t *testing.T) {
			msg := &sarama.ConsumerMessage{Topic: topics.NodeIntrospection, Value: value, Offset: 7}
			pm, err := Build(msg, Failure{Err: errors.New("oversized")}, "test", now)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := pm.Value.Encode()
			if len(body) > MaxValueBytes {
				t.Fatalf("record value is %d bytes, over %d", len(body), MaxValueBytes)
			}
			rec, err := Decode(body)
			if err != nil {
				t.Fatal(err)
			}
			kept := rec.OriginalMessage.Value
			if len(kept) == 0 || len(kept) >= len(value) || !strings.HasPrefix(string(value), kept) || !utf8.ValidString(kept) {
				t.Fatalf("kept %d of %d bytes, not a valid prefix", len(kept), len(value))
			}
			if len(body) < MaxValueBytes-100_000 {
				t.Errorf("cut far more than needed: %d bytes left of %d allowed", len(body), MaxValueBytes)
			}
			var got string
			for _, h := range pm.Headers {
				if string(h.Key) == HeaderValueTruncated {
					got = string(h.Value)
				}
			}
			if got != strconv.Itoa(len(value)) {
				t.Errorf("header %s = %q, want the original length %d", HeaderValueTruncated, got, len(value))
			}
		})
	}
	// The Kafka record carries the original key too: key and value fit
	// the bound together.
	key := bytes.Repeat([]byte("k"), 200_000)
	pm, err := Build(&sarama.ConsumerMessage{Topic: topics.NodeIntrospection, Key: key, Value: bytes.Repeat([]byte("v"), 900_000)},
		Failure{Err: errors.New("oversized")}, "test", now)
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := pm.Value.Encode(); len(body)+len(key) > MaxValueBytes {
		t.Fatalf("value %d + key %d bytes, over %d", len(body), len(key), MaxValueBytes)
	}
	// A key that leaves no room is refused, not sent to fail for ever.
	if _, err := Build(&sarama.ConsumerMessage{Topic: topics.NodeIntrospection, Key: bytes.Repeat([]byte("k"), 500_000)},
		Failure{Err: errors.New("oversized")}, "test", now); err == nil {
		t.Fatal("a record that cannot fit was built")
	}
	// A record that fits is not marked.
	pm, err = Build(&sarama.ConsumerMessage{Topic: topics.NodeIntrospection, Value: []byte(`{}`)}, Failure{Err: errors.New("x")}, "test", now)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range pm.Headers {
		if string(h.Key) == HeaderValueTruncated {
			t.Fatal("a small record was marked truncated")
		}
	}
}

// A record of the Python DLQ writer that stripped credential fields names
// them in redacted_fields; anything but a list is no redaction record, as
// the Python replay reads it.
func TestDecodeRedactedFields(t *testing.T) {
	base := `{"original_topic": "t", "original_message": {"key": null, "value": "{}", "offset": 1, "partition": 0}, "correlation_id": "c"`
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"absent", base + `}`, nil},
		{"list", base + `, "redacted_fields": ["payload.password", "", "payload.token"]}`, []string{"payload.password", "payload.token"}},
		{"empty list", base + `, "redacted_fields": []}`, nil},
		{"not a list", base + `, "redacted_fields": "payload.password"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Decode([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r.RedactedFields, tt.want) {
				t.Errorf("RedactedFields = %q, want %q", r.RedactedFields, tt.want)
			}
		})
	}
}
