package dlq

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/topics"
)

func TestRouterNamespace(t *testing.T) {
	for _, tc := range []struct {
		name     string
		r        Router
		original string
		want     string
	}{
		{"no namespace", Router{}, topics.NodeHeartbeat, topics.DLQEvents},
		{"physical original", Router{Namespace: "bench"}, "bench." + topics.NodeHeartbeat, "bench." + topics.DLQEvents},
		{"canonical original", Router{Namespace: "bench"}, topics.ReducerInput, "bench." + topics.DLQCommands},
		{"intent", Router{Namespace: "bench"}, "bench." + topics.RegistrationIntents, "bench." + topics.DLQIntents},
		{"not an onex topic: the fallback", Router{Namespace: "bench"}, "bench.other", "bench." + FallbackTopic},
		{"override", Router{Override: "my-dlq", Namespace: "bench"}, topics.NodeHeartbeat, "bench.my-dlq"},
		{"override already namespaced", Router{Override: "bench.my-dlq", Namespace: "bench"}, topics.NodeHeartbeat, "bench.my-dlq"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.TopicFor(tc.original); got != tc.want {
				t.Errorf("TopicFor(%q) = %q, want %q", tc.original, got, tc.want)
			}
		})
	}
	if got := (Router{Namespace: "bench"}).TopicForEventType("platform.node-heartbeat", "bench."+topics.NodeHeartbeat); got != "bench."+topics.DLQPlatform {
		t.Errorf("TopicForEventType = %q", got)
	}
}

// A namespaced fleet dead-letters onto its own DLQ topic, and the record
// names the canonical original topic, so a replay routes it on any
// namespace.
func TestPublisherNamespace(t *testing.T) {
	fp := &fakeProducer{}
	p, err := NewPublisher(fp, prometheus.NewRegistry(), WithRouter(Router{Namespace: "bench"}))
	if err != nil {
		t.Fatal(err)
	}
	msg := &sarama.ConsumerMessage{Topic: "bench." + topics.NodeIntrospection, Value: []byte("{"), Offset: 1}
	if err := p.Publish(context.Background(), msg, Failure{Err: jsonDecodeError{"bad"}, Class: ClassPublisherMalformed}); err != nil {
		t.Fatal(err)
	}
	if len(fp.sent) != 1 || fp.sent[0].Topic != "bench."+topics.DLQEvents {
		t.Fatalf("sent %+v", fp.sent)
	}
	for _, h := range fp.sent[0].Headers {
		if string(h.Key) == HeaderOriginalTopic && string(h.Value) != topics.NodeIntrospection {
			t.Errorf("original_topic header %q, want the canonical name", h.Value)
		}
	}
	v, _ := fp.sent[0].Value.Encode()
	if !strings.Contains(string(v), `"original_topic": "`+topics.NodeIntrospection+`"`) && !strings.Contains(string(v), `"original_topic":"`+topics.NodeIntrospection+`"`) {
		t.Errorf("record value does not name the canonical original topic: %s", v)
	}
	if msg.Topic != "bench."+topics.NodeIntrospection {
		t.Error("Publish changed the caller's message")
	}
}

// Build and TopicFor take the namespace from the consumed topic's name, for
// the seams that build dead letters without a Router (the reducer's
// transaction).
func TestTopicForNamespacedOriginal(t *testing.T) {
	for original, want := range map[string]string{
		"e2e1.onex.evt.platform.node-heartbeat.v1": "e2e1." + topics.DLQEvents,
		"e2e1.onex.cmd.platform.reducer-input.v1":  "e2e1." + topics.DLQCommands,
		"e2e1.onex.dlq.omnibase-infra.events.v1":   "e2e1." + FallbackTopic,
		topics.ReducerInput:                        topics.DLQCommands,
		"Bad.onex.evt.platform.node-heartbeat.v1":  FallbackTopic,
	} {
		if got := TopicFor(original); got != want {
			t.Errorf("TopicFor(%q) = %q, want %q", original, got, want)
		}
	}
	if got := TopicForEventType("platform.x", "e2e1."+topics.NodeHeartbeat); got != "e2e1."+topics.DLQPlatform {
		t.Errorf("TopicForEventType = %q", got)
	}
	pm, err := Build(&sarama.ConsumerMessage{Topic: "e2e1." + topics.ReducerInput, Value: []byte("x")},
		Failure{Err: jsonDecodeError{"bad"}, Class: ClassPublisherMalformed}, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if pm.Topic != "e2e1."+topics.DLQCommands {
		t.Errorf("Build topic %q", pm.Topic)
	}
	for _, h := range pm.Headers {
		if string(h.Key) == HeaderOriginalTopic && string(h.Value) != topics.ReducerInput {
			t.Errorf("original_topic %q, want the canonical name", h.Value)
		}
	}
}
