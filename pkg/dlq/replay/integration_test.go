package replay

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/pkg/topicns"
)

// memTracker is a Tracker in memory, keyed like the PostgreSQL one.
type memTracker struct {
	mu   sync.Mutex
	rows []HistoryRow
}

func (m *memTracker) Handled(_ context.Context, e *Entry) (Status, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.rows {
		if r.OriginalMessageID == e.ID() && r.DLQPartition == e.Partition && r.DLQOffset == e.Offset &&
			(r.Status == StatusCompleted || r.Status == StatusQuarantined) {
			return r.Status, true, nil
		}
	}
	return "", false, nil
}

func (m *memTracker) Record(_ context.Context, r HistoryRow) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rows = append(m.rows, r)
	return nil
}

// seeded is a DLQ topic with the four records of the replay scenario.
type seeded struct {
	dlqTopic, origTopic, quarantine string
	client                          sarama.Client
	producer                        sarama.SyncProducer
	retriable, invalid, overMax     *sarama.ProducerMessage // as written
	old                             *sarama.ProducerMessage
	corr                            map[string]uuid.UUID
	now                             time.Time
}

// seed creates fresh topics and writes, with pkg/dlq, one DLQ record each
// of: a retriable infra error, a ValidationError, an infra error over the
// max replay count, and an infra error three days before the others.
func seed(t *testing.T) *seeded {
	t.Helper()
	brokers := testkit.KafkaBrokers(t)
	u := testkit.Unique()
	s := &seeded{
		dlqTopic:   "onex.dlq.test" + u + ".events.v1",
		origTopic:  "onex.evt.test" + u + ".thing-happened.v1",
		quarantine: "onex.dlq.test" + u + ".quarantine.v1",
		corr:       map[string]uuid.UUID{},
		now:        time.Now().UTC().Truncate(time.Microsecond),
	}
	testkit.CreateTopic(t, brokers, s.dlqTopic, 2, nil)
	testkit.CreateTopic(t, brokers, s.origTopic, 3, nil)
	testkit.CreateTopic(t, brokers, s.quarantine, 1, nil)
	cfg, err := NewClientConfig(brokers, "onex-dlq-replay-test")
	if err != nil {
		t.Fatal(err)
	}
	s.client, err = sarama.NewClient(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.client.Close() })
	s.producer, err = sarama.NewSyncProducerFromClient(s.client)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.producer.Close() })

	write := func(name string, f dlq.Failure, key string, part int32, when time.Time) *sarama.ProducerMessage {
		s.corr[name] = uuid.New()
		f.CorrelationID = s.corr[name]
		f.DLQTopic = s.dlqTopic
		orig := &sarama.ConsumerMessage{Topic: s.origTopic, Partition: part, Offset: 100, Key: []byte(key),
			Value: []byte(`{"envelope_id": "` + uuid.NewString() + `", "payload": {"name": "` + name + `"}}`)}
		pm, err := dlq.Build(orig, f, "test", when)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.producer.SendMessage(pm); err != nil {
			t.Fatalf("seed %s: %v", name, err)
		}
		return pm
	}
	s.retriable = write("retriable", dlq.Failure{Err: connErr, Class: dlq.ClassConsumerError}, "node-a", 2, s.now.Add(-time.Hour))
	s.invalid = write("invalid", dlq.Failure{Err: contentErr, Class: dlq.ClassPublisherMalformed}, "node-b", 1, s.now.Add(-50*time.Minute))
	s.overMax = write("over-max", dlq.Failure{Err: connErr, RetryCount: 5}, "node-c", 0, s.now.Add(-40*time.Minute))
	s.old = write("old", dlq.Failure{Err: connErr}, "node-d", 0, s.now.Add(-72*time.Hour))
	return s
}

func (s *seeded) window() Filter {
	return Filter{Start: s.now.Add(-24 * time.Hour), End: s.now}
}

func (s *seeded) count(t *testing.T, topic string) int64 {
	t.Helper()
	if err := s.client.RefreshMetadata(topic); err != nil {
		t.Fatal(err)
	}
	parts, err := s.client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, p := range parts {
		hwm, err := s.client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		n += hwm
	}
	return n
}

func outcomeOf(t *testing.T, rep *Report, corr uuid.UUID) Outcome {
	t.Helper()
	for _, o := range rep.Outcomes {
		if o.CorrelationID == corr.String() {
			return o
		}
	}
	t.Fatalf("no outcome for %s in %+v", corr, rep.Outcomes)
	return Outcome{}
}

// TestEngineRealBroker runs the replay scenario on the real broker with an
// in-memory tracker: dry run, real run, second run.
func TestEngineRealBroker(t *testing.T) {
	s := seed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sc := Scanner{Client: s.client, Idle: 2 * time.Second}

	// The scan sees the four records, commits nothing, and DLQTopics lists
	// the topic but not a quarantine topic.
	var seen []string
	if err := sc.Scan(ctx, []string{s.dlqTopic}, func(e *Entry) error {
		if e.Record == nil {
			t.Errorf("%s did not decode: %v", e.Position(), e.DecodeErr)
		}
		seen = append(seen, e.CorrelationID())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 4 {
		t.Fatalf("scan saw %d records, want 4", len(seen))
	}
	names, err := DLQTopics(s.client, topicns.None, s.quarantine)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(names, s.dlqTopic) || slices.Contains(names, s.quarantine) {
		t.Errorf("DLQTopics has dlq topic %v, quarantine %v", slices.Contains(names, s.dlqTopic), slices.Contains(names, s.quarantine))
	}
	first, err := sc.Read(ctx, s.dlqTopic, 0, 0)
	if err != nil || first.Position() != s.dlqTopic+"/0/0" || first.Record == nil {
		t.Errorf("Read %s/0/0: %v", s.dlqTopic, err)
	}
	if _, err := sc.Read(ctx, s.dlqTopic, 0, 99); !errors.Is(err, ErrNotFound) {
		t.Errorf("Read past the end: %v, want ErrNotFound", err)
	}
	stopped := 0
	if err := sc.Scan(ctx, []string{s.dlqTopic}, func(*Entry) error { stopped++; return ErrStop }); err != nil || stopped != 1 {
		t.Errorf("ErrStop: %d records, err %v", stopped, err)
	}
	if err := sc.Scan(ctx, []string{"onex.dlq.test" + testkit.Unique() + ".missing.v1"}, func(*Entry) error { return nil }); err == nil {
		t.Error("scan of a missing topic succeeded")
	}

	tracker := &memTracker{}
	en := NewEngine(sc, s.producer, tracker)
	ids := uuid.MustParse("00000000-0000-4000-8000-000000000000")
	n := 0
	cfg := Config{Filter: s.window(), MaxReplayCount: 5, RateLimit: 50, QuarantineTopic: s.quarantine,
		Now: func() time.Time { return s.now }, NewID: func() uuid.UUID { n++; id := ids; id[15] = byte(n); return id }}

	// Dry run: decisions, nothing written anywhere.
	dry := cfg
	dry.DryRun = true
	rep, err := en.Run(ctx, []string{s.dlqTopic}, dry)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Scanned != 4 || rep.NotSelected != 1 || len(rep.Outcomes) != 3 || rep.Count(StatusPending) != 3 {
		t.Fatalf("dry run report %+v", rep)
	}
	if o := outcomeOf(t, rep, s.corr["retriable"]); o.Action != ActionReplay || o.TargetTopic != s.origTopic {
		t.Errorf("dry run retriable: %+v", o)
	}
	if o := outcomeOf(t, rep, s.corr["invalid"]); o.Action != ActionQuarantine || o.Reason != "Non-retryable error type: ValidationError" {
		t.Errorf("dry run invalid: %+v", o)
	}
	if o := outcomeOf(t, rep, s.corr["over-max"]); o.Action != ActionQuarantine || o.Reason != "Exceeded max replay count: 5 >= 5" {
		t.Errorf("dry run over-max: %+v", o)
	}
	if got := s.count(t, s.origTopic) + s.count(t, s.quarantine); got != 0 {
		t.Fatalf("dry run wrote %d records", got)
	}
	if len(tracker.rows) != 0 {
		t.Fatalf("dry run recorded %d history rows", len(tracker.rows))
	}

	// Real run.
	n = 0
	rep, err = en.Run(ctx, []string{s.dlqTopic}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Count(StatusCompleted) != 1 || rep.Count(StatusQuarantined) != 2 || rep.NotSelected != 1 {
		t.Fatalf("run report %+v", rep)
	}
	got := testkit.ReadAll(t, testkit.KafkaBrokers(t), s.origTopic, 1, 30*time.Second, true)
	if len(got) != 1 {
		t.Fatalf("%d records on the original topic, want 1", len(got))
	}
	m := got[0]
	wantValue, _ := s.retriable.Value.Encode()
	rec, _ := dlq.Decode(wantValue)
	if string(m.Key) != "node-a" || string(m.Value) != rec.OriginalMessage.Value || m.Partition != 2 {
		t.Errorf("replayed record key %q partition %d value %s", m.Key, m.Partition, m.Value)
	}
	var hs [][2]string
	for _, h := range m.Headers {
		hs = append(hs, [2]string{string(h.Key), string(h.Value)})
	}
	wantHeaders := [][2]string{
		{"x-replay-count", "1"},
		{"x-replayed-at", dlq.FormatTimestamp(s.now)},
		{"x-replayed-by", "node_dlq_replay_effect"},
		{"x-original-dlq-offset", "0"},
		{"x-replay-correlation-id", rep.RunID.String()},
		{"correlation_id", s.corr["retriable"].String()},
	}
	if !equalHeaders(hs, wantHeaders) {
		t.Errorf("replay headers\n got %v\nwant %v", hs, wantHeaders)
	}
	qs := testkit.ReadAll(t, testkit.KafkaBrokers(t), s.quarantine, 2, 30*time.Second, true)
	if len(qs) != 2 {
		t.Fatalf("%d quarantine records, want 2", len(qs))
	}
	reasons := map[string]string{}
	for _, q := range qs {
		body, err := DecodeQuarantined(q.Value)
		if err != nil {
			t.Fatal(err)
		}
		reasons[body.OriginalCorrelationID] = body.Reason
		if body.SourceDLQTopic != s.dlqTopic || body.QuarantinedBy != "node_dlq_replay_effect" || string(q.Key) != body.OriginalCorrelationID {
			t.Errorf("quarantine body %+v key %s", body, q.Key)
		}
	}
	if reasons[s.corr["invalid"].String()] != "Non-retryable error type: ValidationError" || reasons[s.corr["over-max"].String()] != "Exceeded max replay count: 5 >= 5" {
		t.Errorf("quarantine reasons %v", reasons)
	}
	if len(tracker.rows) != 3 {
		t.Fatalf("history rows %+v", tracker.rows)
	}
	for _, r := range tracker.rows {
		if r.ReplayCorrelationID != rep.RunID || !r.Timestamp.Equal(s.now) {
			t.Errorf("row %+v", r)
		}
		switch r.Status {
		case StatusCompleted:
			if !r.Success || r.TargetTopic != s.origTopic || r.OriginalTopic != s.origTopic {
				t.Errorf("completed row %+v", r)
			}
		case StatusQuarantined:
			if r.Success || r.TargetTopic != s.quarantine || r.ErrorMessage == "" {
				t.Errorf("quarantined row %+v", r)
			}
		default:
			t.Errorf("row status %s", r.Status)
		}
	}

	// Second run: everything is already handled; nothing is written.
	rep, err = en.Run(ctx, []string{s.dlqTopic}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Count(StatusSkipped) != 3 || len(rep.Outcomes) != 3 {
		t.Fatalf("second run report %+v", rep)
	}
	if got := s.count(t, s.origTopic); got != 1 {
		t.Errorf("second run: %d records on the original topic, want 1", got)
	}
	if got := s.count(t, s.quarantine); got != 2 {
		t.Errorf("second run: %d quarantine records, want 2", got)
	}

	// The quarantine topic itself is refused.
	if _, err := en.Run(ctx, []string{s.quarantine}, cfg); err == nil {
		t.Error("replay from the quarantine topic accepted")
	}
}

// TestEngineLimitAndFailure checks --limit, and that a write to a topic that
// does not exist is a FAILED decision that does not stop the run.
func TestEngineLimitAndFailure(t *testing.T) {
	s := seed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tracker := &memTracker{}
	en := NewEngine(Scanner{Client: s.client}, s.producer, tracker)
	rep, err := en.Run(ctx, []string{s.dlqTopic}, Config{Filter: s.window(), MaxReplayCount: 5, RateLimit: 100, QuarantineTopic: s.quarantine, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Outcomes) != 1 || len(tracker.rows) != 1 {
		t.Fatalf("limit 1: %d outcomes, %d rows", len(rep.Outcomes), len(tracker.rows))
	}

	missing := "onex.dlq.test" + testkit.Unique() + ".absent.v1"
	tracker = &memTracker{}
	en = NewEngine(Scanner{Client: s.client}, s.producer, tracker)
	rep, err = en.Run(ctx, []string{s.dlqTopic}, Config{Filter: Filter{ErrorTypes: []string{"ValidationError"}}, MaxReplayCount: 5, RateLimit: 100, QuarantineTopic: missing})
	if err != nil {
		t.Fatalf("a missing quarantine topic stopped the run: %v", err)
	}
	if rep.Count(StatusFailed) != 1 {
		t.Fatalf("report %+v", rep)
	}
	last := tracker.rows[len(tracker.rows)-1]
	if last.Status != StatusFailed || last.Success || last.TargetTopic != missing {
		t.Errorf("failed row %+v", last)
	}
}

// TestScanTransactional checks that a scan ends on a partition whose last
// offsets are transaction markers (the reducer writes its dead letters in
// transactions), and that it never sees a dead letter whose transaction
// aborted.
func TestScanTransactional(t *testing.T) {
	brokers := testkit.KafkaBrokers(t)
	topic := "onex.dlq.test" + testkit.Unique() + ".intents.v1"
	testkit.CreateTopic(t, brokers, topic, 1, nil)
	cfg, err := NewClientConfig(brokers, "onex-dlq-replay-txn-test")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Producer.Transaction.ID = "onex-dlq-replay-test-" + testkit.Unique()
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	write := func(name string, commit bool) {
		orig := &sarama.ConsumerMessage{Topic: "onex.intent.platform.x.v1", Value: []byte(`{"n": "` + name + `"}`)}
		pm, err := dlq.Build(orig, dlq.Failure{Err: contentErr, DLQTopic: topic}, "test", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := p.BeginTxn(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := p.SendMessage(pm); err != nil {
			t.Fatal(err)
		}
		if commit {
			err = p.CommitTxn()
		} else {
			err = p.AbortTxn()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	write("committed", true)
	write("aborted", false)

	rcfg, err := NewClientConfig(brokers, "onex-dlq-replay-test")
	if err != nil {
		t.Fatal(err)
	}
	client, err := sarama.NewClient(brokers, rcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var values []string
	err = Scanner{Client: client, Idle: time.Second}.Scan(ctx, []string{topic}, func(e *Entry) error {
		if e.Record == nil {
			t.Fatalf("%s: %v", e.Position(), e.DecodeErr)
		}
		values = append(values, e.Record.OriginalMessage.Value)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(values) != 1 || values[0] != `{"n": "committed"}` {
		t.Errorf("scan saw %q, want only the committed dead letter", values)
	}
}
