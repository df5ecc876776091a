package app

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/gen"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/pgtest"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/store"
)

// TestReadyOnlyAfterTopicsChecked: with the database reachable and the
// schema at head but a topic missing, /readyz is 503 naming only topics; it
// turns 200 once the topic exists.
func TestReadyOnlyAfterTopicsChecked(t *testing.T) {
	h := newHarness(t, "readiness", pgtest.NewDatabase(t))
	testkit.DeleteTopic(t, h.brokers, h.dlqTopic)
	h.launch(h.settings())
	srv := httptest.NewServer(observability.Handler(h.svc.Health, h.svc.Registry))
	defer srv.Close()
	h.eventually(60*time.Second, "/readyz 503 naming only "+CondTopics, func() bool {
		code, body := httpGet(t, srv.URL+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, `"not_ready":["`+CondTopics+`"]`)
	})
	testkit.CreateTopic(t, h.brokers, h.dlqTopic, 1, nil)
	h.eventually(60*time.Second, "/readyz 200 once the topic exists", func() bool { code, _ := httpGet(t, srv.URL+"/readyz"); return code == http.StatusOK })
}

// TestMetricsMove: a postgres intent is consumed, applied, answered and
// timed, and the registry's node count per state follows the table; a record
// that is not an intent is dead-lettered and counted; while the DLQ topic is
// gone the dead letter cannot be written, the batch stays uncommitted and
// shows as lag, which drains once the topic is back.
func TestMetricsMove(t *testing.T) {
	h := newHarness(t, "metrics", pgtest.NewDatabase(t))
	h.start(h.settings())
	metric := func(name string, labels map[string]string) float64 {
		labels["service"] = "projector-effect"
		return testkit.Metric(t, h.svc.Registry, name, labels)
	}
	stream, err := gen.Generate(21, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	in := stream.InOrder(1)[0]

	testkit.DeleteTopic(t, h.brokers, h.dlqTopic)
	prod, err := sarama.NewSyncProducer(h.brokers, testkit.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	p, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: h.intents, Key: sarama.StringEncoder(in.NodeID.String()), Value: sarama.StringEncoder("not an intent")})
	if err != nil {
		t.Fatal(err)
	}
	h.produce([]gen.Intent{in}) // same key: same partition, behind it
	lag := map[string]string{"group": h.settings().Group, "topic": h.intents, "partition": strconv.Itoa(int(p))}
	h.eventually(60*time.Second, "failed dead-letter writes counted", func() bool {
		return metric("onex_dlq_publish_failures_total", map[string]string{"dlq_topic": h.dlqTopic}) >= 1
	})
	// The dead letter keeps failing until the topic is back: the records
	// behind it wait, and the fetcher's high-water mark catches up with them.
	h.eventually(30*time.Second, "lag 2 while the dead letter is stuck", func() bool { return metric("onex_consumer_lag", lag) == 2 })

	testkit.CreateTopic(t, h.brokers, h.dlqTopic, 1, nil)
	h.eventually(60*time.Second, "lag drained", func() bool { return metric("onex_consumer_lag", lag) == 0 })
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"onex_dlq_messages_total", map[string]string{"original_topic": h.intents, "dlq_topic": h.dlqTopic, "failure_type": "content_error"}, 1},
		{"onex_messages_consumed_total", map[string]string{"topic": h.intents, "outcome": "dead_lettered"}, 1},
		{"onex_messages_consumed_total", map[string]string{"topic": h.intents, "outcome": "handled"}, 1},
		{"onex_messages_produced_total", map[string]string{"topic": h.results}, 1},
		{"onex_circuit_breaker_state", map[string]string{"backend": store.Backend}, 0},
		{"onex_ready", map[string]string{}, 1},
	} {
		if got := metric(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if n := metric("onex_handler_duration_seconds", map[string]string{"topic": h.intents, "handler": HandlerName}); n < 1 {
		t.Errorf("onex_handler_duration_seconds has %v observations, want >= 1", n)
	}
	// The row of the applied intent is counted under its state; every state
	// has a series.
	h.eventually(30*time.Second, "the registry's row counted", func() bool {
		return metric("onex_projector_nodes", map[string]string{}) == 1
	})
	if _, n := testkit.MetricSeries(t, h.svc.Registry, "onex_projector_nodes", nil); n != len(registration.States) {
		t.Errorf("onex_projector_nodes has %d series, want one per state (%d)", n, len(registration.States))
	}
	// Everything is registered by now: the catalogue the dashboard and the
	// docs are checked against.
	testkit.CheckMetricCatalogue(t, h.svc.Registry, "../../metrics.txt")
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
