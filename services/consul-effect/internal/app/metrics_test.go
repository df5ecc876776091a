package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/services/consul-effect/internal/backend"
	"github.com/omninode/onex-fleet/services/consul-effect/internal/effect"
)

// TestReadyOnlyAfterSnapshotsCaughtUp: with the topics present and Consul
// reachable but the snapshot view's catch-up held, /readyz is 503 naming
// only snapshots_caught_up; it turns 200 once the view has caught up.
func TestReadyOnlyAfterSnapshotsCaughtUp(t *testing.T) {
	h := newHarness(t, testkit.ConsulAddr(t), effect.ModeCatalog)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	h.launch(h.settings(time.Hour), func(a *App) {
		follow := a.follow
		a.follow = func(ctx context.Context, client sarama.Client, topic string, idle time.Duration, log *slog.Logger) error {
			select {
			case entered <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-ctx.Done():
				return nil
			}
			return follow(ctx, client, topic, idle, log)
		}
	})
	srv := httptest.NewServer(observability.Handler(h.svc.Health, h.svc.Registry))
	defer srv.Close()
	select {
	case <-entered:
	case <-time.After(60 * time.Second):
		t.Fatal("the snapshot view never started")
	}
	h.eventually(60*time.Second, "/readyz 503 naming only "+CondSnapshots, func() bool {
		code, body := httpGet(t, srv.URL+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, `"not_ready":["`+CondSnapshots+`"]`)
	})
	released = true
	close(release)
	h.eventually(60*time.Second, "/readyz 200 after the catch-up", func() bool { code, _ := httpGet(t, srv.URL+"/readyz"); return code == http.StatusOK })
}

// TestMetricsMove: a register intent is consumed, answered and timed; a
// record that is not an intent is dead-lettered and counted; while the DLQ
// topic is gone the dead letter cannot be written, the partition stalls and
// the intent behind it shows as lag, which drains once the topic is back.
func TestMetricsMove(t *testing.T) {
	h := newHarness(t, testkit.ConsulAddr(t), effect.ModeCatalog)
	h.start(h.settings(time.Hour))
	metric := func(name string, labels map[string]string) float64 {
		labels["service"] = "consul-effect"
		return testkit.Metric(t, h.svc.Registry, name, labels)
	}
	node := uuid.New()
	t.Cleanup(func() { h.deregisterByHand("onex-effect-" + node.String()) })

	testkit.DeleteTopic(t, h.brokers, h.dlqTopic)
	p, _, err := h.prod.SendMessage(&sarama.ProducerMessage{Topic: h.intents, Key: sarama.StringEncoder(node.String()), Value: sarama.StringEncoder("not an intent")})
	if err != nil {
		t.Fatal(err)
	}
	s := h.sendIntent(node, 2, 0, pipeline.ConsulRegister, registerPayload(node, 8080, ""), uuid.Nil) // same key: same partition, behind it
	lag := map[string]string{"group": h.env, "topic": h.intents, "partition": strconv.Itoa(int(p))}
	h.eventually(60*time.Second, "failed dead-letter writes counted", func() bool {
		return metric("onex_dlq_publish_failures_total", map[string]string{"dlq_topic": h.dlqTopic}) >= 1
	})
	// The dead letter keeps failing until the topic is back: the records
	// behind it wait, and the fetcher's high-water mark catches up with them.
	h.eventually(30*time.Second, "lag 2 while the dead letter is stuck", func() bool { return metric("onex_consumer_lag", lag) == 2 })

	testkit.CreateTopic(t, h.brokers, h.dlqTopic, 1, nil)
	if r := h.result(s.intentID, 1).res; !r.Success {
		t.Fatalf("result of the intent behind the poison: %+v", r)
	}
	h.eventually(30*time.Second, "lag drained", func() bool { return metric("onex_consumer_lag", lag) == 0 })
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"onex_dlq_messages_total", map[string]string{"original_topic": h.intents, "dlq_topic": h.dlqTopic, "failure_type": "content_error"}, 1},
		{"onex_messages_consumed_total", map[string]string{"topic": h.intents, "outcome": "dead_lettered"}, 1},
		{"onex_messages_consumed_total", map[string]string{"topic": h.intents, "outcome": "handled"}, 1},
		{"onex_messages_produced_total", map[string]string{"topic": h.results}, 1},
		{"onex_circuit_breaker_state", map[string]string{"backend": backend.Name}, backend.StateClosed},
		{"onex_ready", map[string]string{}, 1},
	} {
		if got := metric(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// One observation per Handle call: the poison's batch and the intent's,
	// or one if the consumer had both buffered when it took the batch (the
	// poison is rejected there and the intent applied with it).
	if got := metric("onex_handler_duration_seconds", map[string]string{"topic": h.intents, "handler": HandlerName}); got < 1 || got > 2 {
		t.Errorf("onex_handler_duration_seconds observed %v calls, want 1 or 2", got)
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
