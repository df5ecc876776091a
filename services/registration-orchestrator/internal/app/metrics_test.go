package app

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/expect"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/fixtures"
	"github.com/omninode/onex-fleet/services/registration-orchestrator/internal/workflow"
)

// TestReadyOnlyAfterRestore: with every topic present and the node-topics
// view restored but the workflow group's aggregation restore held, /readyz
// is 503 naming aggregations_restored (and the readiness series say which
// condition is missing); it turns 200 once the restore completes.
func TestReadyOnlyAfterRestore(t *testing.T) {
	h := newHarness(t)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	in := h.launchWith(h.settings(), func(a *App) {
		assign := a.assign
		a.assign = func(wf *workflow.Workflow, ctx context.Context, client sarama.Client, claims map[string][]int32, timeout time.Duration) error {
			select {
			case entered <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
			return assign(wf, ctx, client, claims, timeout)
		}
	})
	srv := httptest.NewServer(observability.Handler(in.svc.Health, in.svc.Registry))
	defer srv.Close()
	select {
	case <-entered:
	case <-time.After(60 * time.Second):
		t.Fatal("the workflow group never started its restore")
	}
	// The node-topics view restores on its own (an empty table here): only
	// the aggregations are held.
	h.eventually(30*time.Second, "node topics view restored", func() bool {
		return testkit.Metric(t, in.svc.Registry, "onex_readiness_condition",
			map[string]string{"service": "registration-orchestrator", "condition": CondNodeTopics}) == 1
	})
	if code, body := httpGet(t, srv.URL+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, `"not_ready":["`+CondRestored+`"]`) {
		t.Fatalf("/readyz with the restore held: %d %s, want 503 with only %s not ready", code, body, CondRestored)
	}
	cond := func(c string) float64 {
		return testkit.Metric(t, in.svc.Registry, "onex_readiness_condition", map[string]string{"service": "registration-orchestrator", "condition": c})
	}
	if cond(CondTopics) != 1 || cond(CondRestored) != 0 {
		t.Fatalf("onex_readiness_condition topics=%v aggregations_restored=%v, want 1 and 0", cond(CondTopics), cond(CondRestored))
	}
	released = true
	close(release)
	h.eventually(60*time.Second, "/readyz 200 after the restore", func() bool { code, _ := httpGet(t, srv.URL+"/readyz"); return code == http.StatusOK })
}

// TestMetricsMove: a heartbeat is consumed, forwarded and timed; a record
// that is not JSON is dead-lettered and counted by error type; while the DLQ
// topic is gone the dead letter cannot be written, its partition stalls and
// the records behind it show as lag, which drains once the topic is back.
func TestMetricsMove(t *testing.T) {
	h := newHarness(t)
	in := h.start(h.settings())
	hb := h.topic(topics.NodeHeartbeat)
	svc := map[string]string{"service": "registration-orchestrator"}
	metric := func(name string, labels map[string]string) float64 {
		for k, v := range svc {
			labels[k] = v
		}
		return testkit.Metric(t, in.svc.Registry, name, labels)
	}
	raw, err := fixtures.Load("heartbeat.json")
	if err != nil {
		t.Fatal(err)
	}

	testkit.DeleteTopic(t, h.brokers, h.dlqTopic)
	const key = "metrics-test-partition-key" // every record below in one partition, in order
	p, _ := h.produce(hb, key, []byte("not json"))
	h.produce(hb, key, raw)
	h.produce(hb, key, raw)
	group, err := in.app.pythonGroup(hb)
	if err != nil {
		t.Fatal(err)
	}
	lag := map[string]string{"group": group, "topic": hb, "partition": strconv.Itoa(int(p))}
	h.eventually(60*time.Second, "failed dead-letter writes counted", func() bool {
		return metric("onex_dlq_publish_failures_total", map[string]string{"dlq_topic": h.dlqTopic}) >= 1
	})
	if n := metric("onex_dlq_messages_total", map[string]string{"original_topic": hb}); n != 0 {
		t.Fatalf("onex_dlq_messages_total = %v with the DLQ topic gone", n)
	}
	// The dead letter keeps failing until the topic is back: the records
	// behind it wait, and the fetcher's high-water mark catches up with them.
	h.eventually(30*time.Second, "lag 3 while the dead letter is stuck", func() bool { return metric("onex_consumer_lag", lag) == 3 })

	testkit.CreateTopic(t, h.brokers, h.dlqTopic, 1, nil)
	h.eventually(60*time.Second, "lag drained", func() bool { return metric("onex_consumer_lag", lag) == 0 })
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"onex_dlq_messages_total", map[string]string{"original_topic": hb, "dlq_topic": h.dlqTopic, "failure_type": "content_error"}, 1},
		{"onex_messages_consumed_total", map[string]string{"topic": hb, "outcome": "dead_lettered"}, 1},
		{"onex_messages_consumed_total", map[string]string{"topic": hb, "outcome": "handled"}, 2},
		{"onex_messages_produced_total", map[string]string{"topic": h.topic(topics.ReducerInput)}, 2},
	} {
		if got := metric(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Ingress handles batches: one observation per Handle call, which
	// rejects the bad record and returns the others in the same call, so
	// the three records take one to three calls, as they happened to
	// arrive; none is handled twice (the rejection is no failure that hands
	// a batch again).
	if got := metric("onex_handler_duration_seconds", map[string]string{"topic": hb, "handler": expect.HandlerIngress}); got < 1 || got > 3 {
		t.Errorf("onex_handler_duration_seconds{handler=ingress} has %v observations, want 1 to 3", got)
	}
	// Everything is registered by now: the catalogue the dashboard and the
	// docs are checked against.
	testkit.CheckMetricCatalogue(t, in.svc.Registry, "../../metrics.txt")
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
