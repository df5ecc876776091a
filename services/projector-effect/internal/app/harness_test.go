package app

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/retry"
	"github.com/omninode/onex-fleet/pkg/service"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/effect"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/gen"
)

// harness runs one projector effect in-process against the real broker and
// a real PostgreSQL database, on topics of its own.
type harness struct {
	t                          *testing.T
	name                       string
	brokers                    []string
	dsn                        string
	intents, results, dlqTopic string
	// admin is the AdminService's topic, created by the tests that use it.
	admin   string
	logPath string

	app    *App
	svc    *service.Service
	cancel context.CancelFunc
	done   chan error

	mu  sync.Mutex
	res map[uuid.UUID][]pipeline.EffectResult
}

func newHarness(t *testing.T, name, dsn string) *harness {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test (real broker and PostgreSQL); skipped with -short")
	}
	brokers := testkit.KafkaBrokers(t)
	u := testkit.Unique()
	h := &harness{t: t, name: name, brokers: brokers, dsn: dsn,
		intents:  "onex.cmd.pe" + u + ".postgres-intents.v1",
		results:  "onex.evt.pe" + u + ".effect-results.v1",
		dlqTopic: "onex.dlq.pe" + u + ".commands.v1",
		admin:    "onex.cmd.pe" + u + ".registration-admin.v1",
		logPath:  filepath.Join(t.TempDir(), name+".log"),
		res:      map[uuid.UUID][]pipeline.EffectResult{},
	}
	testkit.CreateTopic(t, brokers, h.intents, 6, nil)
	testkit.CreateTopic(t, brokers, h.results, 3, nil)
	testkit.CreateTopic(t, brokers, h.dlqTopic, 1, nil)
	h.collectResults()
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("PROJECTOR_TEST_LOG") == "1" {
			b, _ := os.ReadFile(h.logPath)
			lines := strings.Split(string(b), "\n")
			t.Logf("%s log (last 40 lines):\n%s", name, strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})
	return h
}

func (h *harness) settings() Settings {
	return Settings{
		DatabaseURL: config.Secret(h.dsn), PoolMin: 1, PoolMax: 6, QueryTimeout: 5 * time.Second, ConnectTimeout: 2 * time.Second,
		Migrate: true, IntentsTopic: h.intents, ResultsTopic: h.results, DLQTopic: h.dlqTopic, AdminTopic: h.admin, Group: "pe-" + h.intents,
		MaxBatch: 500, Linger: 5 * time.Millisecond, BreakerThreshold: 5, BreakerReset: 60 * time.Second,
		Retry: retry.Policy{MaxAttempts: 10, Initial: 500 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: 0.25}, GRPCAddr: "127.0.0.1:0", WatchPoll: time.Second, Source: "test", DrainTimeout: 10 * time.Second,
	}
}

func (h *harness) start(s Settings) {
	h.t.Helper()
	h.launch(s)
	h.eventually(60*time.Second, "service ready", h.svc.Health.Ready)
	h.eventually(30*time.Second, "intents partitions assigned", h.app.Assigned)
}

// launch runs the effect without waiting for it.
func (h *harness) launch(s Settings) {
	t := h.t
	t.Helper()
	f, err := os.OpenFile(h.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	h.svc = &service.Service{
		Name:     "projector-effect",
		Config:   &config.Config{Service: "projector-effect", KafkaBootstrap: strings.Join(h.brokers, ","), Environment: "test", DrainTimeout: 10 * time.Second},
		Log:      observability.NewLogger(f, "projector-effect", "debug"),
		Registry: prometheus.NewRegistry(),
		Health:   observability.NewHealth(Conditions...),
	}
	h.app, err = New(h.svc, s)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.app.Run(ctx); f.Close() }()
	t.Cleanup(h.stop)
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		h.t.Error("projector effect did not stop within 30s")
	}
}

func (h *harness) eventually(timeout time.Duration, what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	h.t.Fatalf("%s: timed out after %v waiting for: %s", h.name, timeout, what)
}

// produce sends the intents to the intents topic keyed by node id, in order.
func (h *harness) produce(ins []gen.Intent) {
	h.t.Helper()
	h.produceMarked(ins, nil)
}

// produceMarked is produce with the header the orchestrator sets on an
// intent it routes untracked (pipeline.HeaderResults) on the intents
// untracked reports (nil: none).
func (h *harness) produceMarked(ins []gen.Intent, untracked func(gen.Intent) bool) {
	h.t.Helper()
	cfg := testkit.AdminConfig()
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	prod, err := sarama.NewSyncProducer(h.brokers, cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	defer prod.Close()
	for len(ins) > 0 {
		n := min(len(ins), 1000)
		msgs := make([]*sarama.ProducerMessage, n)
		for i, in := range ins[:n] {
			msgs[i] = &sarama.ProducerMessage{Topic: h.intents, Key: sarama.StringEncoder(in.NodeID.String()), Value: sarama.ByteEncoder(in.Value),
				Headers: in.Headers()}
			if untracked != nil && untracked(in) {
				msgs[i].Headers = append(msgs[i].Headers, pipeline.FailuresOnlyHeader())
			}
		}
		if err := prod.SendMessages(msgs); err != nil {
			h.t.Fatalf("produce: %v", err)
		}
		ins = ins[n:]
	}
}

// collectResults consumes the results topic for the whole test.
func (h *harness) collectResults() {
	t := h.t
	consumer, err := sarama.NewConsumer(h.brokers, testkit.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	parts, err := consumer.Partitions(h.results)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var pcs []sarama.PartitionConsumer
	for _, p := range parts {
		pc, err := consumer.ConsumePartition(h.results, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		pcs = append(pcs, pc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range pc.Messages() {
				if ct := pipeline.ContentType(m.Headers); ct != pipeline.EffectResultContentType {
					t.Errorf("result content type %q, want %q", ct, pipeline.EffectResultContentType)
				}
				rec, err := pipeline.DecodeEffectResultRecord(m.Headers, m.Value)
				if err != nil {
					t.Errorf("result record: %v", err)
					continue
				}
				r := *rec.Result
				hd := envelope.HeadersFromRecords(m.Headers)
				if string(m.Key) != r.NodeID.String() || hd.CorrelationID != r.CorrelationID || hd.MessageID != rec.EnvelopeID ||
					rec.EnvelopeID != effect.ResultEnvelopeID(&r) {
					t.Errorf("result of %s: key %q, header correlation %s, result correlation %s, message_id %s, envelope id %s",
						r.IntentID, m.Key, hd.CorrelationID, r.CorrelationID, hd.MessageID, rec.EnvelopeID)
				}
				h.mu.Lock()
				h.res[r.IntentID] = append(h.res[r.IntentID], r)
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

// resultStats counts, over the intents given, those with a success result,
// those with a failed one, and success results flagged stale.
func (h *harness) resultStats(ids map[uuid.UUID]bool) (succeeded, failed, stale int, codes map[string]int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	codes = map[string]int{}
	for id := range ids {
		ok, bad := false, false
		for _, r := range h.res[id] {
			switch {
			case r.Success:
				ok = true
				if r.Stale {
					stale++
				}
			default:
				bad = true
				if r.ErrorCode != nil {
					codes[*r.ErrorCode]++
				}
			}
		}
		if ok {
			succeeded++
		}
		if bad {
			failed++
		}
	}
	return
}

// gather returns the value of a gauge or counter sample on the harness's
// registry (first series matching labels), or -1.
func (h *harness) gather(name string, labels map[string]string) float64 {
	mfs, err := h.svc.Registry.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return -1
}

// dumpRows returns every projection row as JSON, keyed by node id, without
// the change feed's transaction id (the one column that depends on when,
// not what, was written).
func dumpRows(t *testing.T, dsn string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT entity_id::text, (to_jsonb(t) - 'change_xid')::text FROM registration_projections t`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, js string
		if err := rows.Scan(&id, &js); err != nil {
			t.Fatal(err)
		}
		out[id] = js
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func compareRows(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d rows, want %d", what, len(got), len(want))
	}
	diffs := 0
	for id, w := range want {
		if g, ok := got[id]; !ok {
			diffs++
			if diffs <= 3 {
				t.Errorf("%s: row %s missing", what, id)
			}
		} else if g != w {
			diffs++
			if diffs <= 3 {
				t.Errorf("%s: row %s differs:\n got  %s\n want %s", what, id, g, w)
			}
		}
	}
	if diffs > 0 {
		t.Errorf("%s: %d of %d rows differ", what, diffs, len(want))
	}
}

func intentIDs(t *testing.T, ins []gen.Intent) map[uuid.UUID]bool {
	t.Helper()
	ids := map[uuid.UUID]bool{}
	for _, in := range ins {
		r, err := pipeline.DecodeIntentRecord(headerPointers(in.Headers()), in.Value)
		if err != nil {
			t.Fatal(err)
		}
		ids[r.Intent.IntentID] = true
	}
	return ids
}

// consumedMessage is an intent as the runner hands it to the effect.
func consumedMessage(in gen.Intent) *bus.Message {
	return bus.FromConsumerMessage(&sarama.ConsumerMessage{Topic: "onex.cmd.platform.postgres-intents.v1", Key: []byte(in.NodeID.String()),
		Value: in.Value, Headers: headerPointers(in.Headers())})
}

// headerPointers are produced headers as a consumer sees them.
func headerPointers(hs []sarama.RecordHeader) []*sarama.RecordHeader {
	out := make([]*sarama.RecordHeader, len(hs))
	for i := range hs {
		out[i] = &hs[i]
	}
	return out
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// readDLQ reads up to n records of the harness's DLQ topic.
func readDLQ(t *testing.T, h *harness, n int) []*sarama.ConsumerMessage {
	t.Helper()
	return testkit.ReadAll(t, h.brokers, h.dlqTopic, n, 30*time.Second, false)
}
