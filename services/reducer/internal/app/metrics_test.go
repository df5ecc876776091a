package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/service"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/reducer/decide"
	"github.com/omninode/onex-fleet/services/reducer/internal/state"
)

// TestReadinessAndMetrics runs the reducer in-process with every partition's
// restore held: /readyz is 503 naming state_restored and records produced
// meanwhile show as consumer lag. Once the restores complete, /readyz is 200,
// the introspection is consumed and its outputs produced, the undecodable
// record is dead-lettered and counted, the batch is timed, and the lag
// drains.
func TestReadinessAndMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test (real broker); skipped with -short")
	}
	brokers := testkit.KafkaBrokers(t)
	env := "reducermetrics" + testkit.Unique()
	testkit.StartGroupAtEnd(t, brokers, env, topics.ReducerInput)
	svc := &service.Service{
		Name: "reducer",
		Config: &config.Config{Service: "reducer", KafkaBootstrap: strings.Join(brokers, ","), Environment: env,
			DrainTimeout: 10 * time.Second, ConsumeFromOldest: true},
		Log:      observability.NewLogger(io.Discard, "reducer", "info"),
		Registry: prometheus.NewRegistry(),
		Health:   observability.NewHealth(condTopics, condFSM, condAssigned),
	}
	svc.Health.Set(condFSM, true)
	r, err := New(svc, Settings{Params: decide.DefaultParams(), BatchSize: 500, BatchLinger: 5 * time.Millisecond, Group: env})
	if err != nil {
		t.Fatal(err)
	}
	held, release := make(chan int32, 64), make(chan struct{})
	r.restore = func(ctx context.Context, client sarama.Client, topic string, p int32, upTo int64) (*state.Partition, int, error) {
		held <- p
		select {
		case <-release:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
		return restore(ctx, client, topic, p, upTo)
	}
	srv := httptest.NewServer(observability.Handler(svc.Health, svc.Registry))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	released := false
	defer func() {
		if !released {
			close(release)
		}
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	select {
	case <-held:
	case <-time.After(60 * time.Second):
		t.Fatal("no partition restore started within 60s")
	}
	code, body := get(t, srv.URL+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, condAssigned) {
		t.Fatalf("/readyz while the restore is held: %d %s, want 503 naming %s", code, body, condAssigned)
	}

	// One introspection and one record that is not a reducer input, each
	// keyed by its own node, produced while no partition can be consumed.
	f := newFeeder(t, brokers)
	good, bad := uuid.New(), uuid.New()
	intro := f.introspections([]uuid.UUID{good})[0]
	junk := &sarama.ProducerMessage{Topic: topics.ReducerInput, Key: sarama.StringEncoder(bad.String()), Value: sarama.StringEncoder("not a reducer input")}
	f.send([]*sarama.ProducerMessage{intro, junk})
	spec, _ := topics.Lookup(topics.ReducerInput)
	partOf := func(node uuid.UUID) string {
		n, err := sarama.NewHashPartitioner(topics.ReducerInput).Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(node.String())}, spec.Partitions)
		if err != nil {
			t.Fatal(err)
		}
		return strconv.Itoa(int(n))
	}
	metric := func(name string, labels map[string]string) float64 {
		labels["service"] = "reducer"
		return testkit.Metric(t, svc.Registry, name, labels)
	}
	lagOf := func(node uuid.UUID) map[string]string {
		return map[string]string{"group": env, "topic": topics.ReducerInput, "partition": partOf(node)}
	}
	eventually(t, "lag behind the held restore", func() bool {
		return metric("onex_consumer_lag", lagOf(good)) >= 1 && metric("onex_consumer_lag", lagOf(bad)) >= 1
	})
	if v := metric("onex_ready", map[string]string{}); v != 0 {
		t.Fatalf("onex_ready = %v while restoring", v)
	}

	released = true
	close(release)
	eventually(t, "/readyz 200", func() bool { code, _ := get(t, srv.URL+"/readyz"); return code == http.StatusOK })
	in := map[string]string{"topic": topics.ReducerInput}
	eventually(t, "both records consumed", func() bool {
		in["outcome"] = "dead_lettered"
		dead := metric("onex_messages_consumed_total", in)
		in["outcome"] = "handled"
		return dead >= 1 && metric("onex_messages_consumed_total", in) >= 1
	})
	for _, c := range []struct {
		name   string
		labels map[string]string
	}{
		{"onex_dlq_messages_total", map[string]string{"original_topic": topics.ReducerInput, "failure_type": "content_error"}},
		{"onex_messages_produced_total", map[string]string{"topic": topics.NodeRegistrationInitiated}},
		{"onex_messages_produced_total", map[string]string{"topic": topics.RegistrationIntents}},
		{"onex_messages_produced_total", map[string]string{"topic": topics.RegistrationSnapshots}},
		{"onex_handler_duration_seconds", map[string]string{"topic": topics.ReducerInput, "handler": HandlerName}},
		{"onex_reducer_nodes", map[string]string{}},
		{"onex_ready", map[string]string{}},
	} {
		if v := metric(c.name, c.labels); v < 1 {
			t.Errorf("%s%v = %v, want >= 1", c.name, c.labels, v)
		}
	}
	if v := metric("onex_messages_produced_total", map[string]string{"topic": dlq.Router{}.TopicFor(topics.ReducerInput)}); v != 0 {
		t.Errorf("DLQ records counted as produced (%v): they belong to onex_dlq_messages_total", v)
	}
	eventually(t, "lag drained", func() bool {
		return metric("onex_consumer_lag", lagOf(good)) == 0 && metric("onex_consumer_lag", lagOf(bad)) == 0
	})
	var ready struct {
		Pending *int64 `json:"pending_message_count"`
	}
	_, body = get(t, srv.URL+"/readyz")
	if err := json.Unmarshal([]byte(body), &ready); err != nil || ready.Pending == nil {
		t.Fatalf("/readyz body %s has no pending_message_count", body)
	}
	// Everything is registered by now: the catalogue the dashboard and the
	// docs are checked against.
	testkit.CheckMetricCatalogue(t, svc.Registry, "../../metrics.txt")
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 60s waiting for %s", what)
		}
	}
}
