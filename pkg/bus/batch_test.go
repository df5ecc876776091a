package bus

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/testkit"
)

// init turns the test binary into the consumer process of
// TestBatchCrashLosesNothing when BUS_BATCH_CHILD=1 (before TestMain, so
// this file needs nothing from the others).
func init() {
	if os.Getenv("BUS_BATCH_CHILD") == "1" {
		os.Exit(batchChild())
	}
}

func newBatchRunner(t *testing.T, brokers []string, group, topic string, h Handle, send Sender, dl DeadLetterer, m *Metrics) *Runner {
	t.Helper()
	cfg, err := NewConfig(Options{Brokers: brokers, ClientID: "bus-batch-test", FromOldest: true,
		SessionTimeout: 6 * time.Second, Heartbeat: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRunner(RunnerConfig{Brokers: brokers, Config: cfg, Group: group, Topics: []string{topic},
		Handle: h, Send: send, DeadLetter: dl, Retry: fastPolicy(), MaxBatch: 100,
		DrainTimeout: 10 * time.Second, Log: discardLogger(), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Batches keep each key's order and cover every record exactly once on a
// clean run, they really are batches, and the records they return are
// sent: one output record per input record.
func TestBatchOrderPerKey(t *testing.T) {
	brokers := testkit.KafkaBrokers(t)
	u := testkit.Unique()
	topic := "onex.evt.bustest" + u + ".batchorder.v1"
	outTopic := "onex.evt.bustest" + u + ".batchout.v1"
	testkit.CreateTopic(t, brokers, topic, 6, nil)
	testkit.CreateTopic(t, brokers, outTopic, 1, nil)
	const keys, perKey = 40, 150
	produceKeyed(t, brokers, topic, keys, perKey)

	var mu sync.Mutex
	log := map[string][]string{}
	total, largest := 0, 0
	h := func(_ context.Context, msgs []*Message) (Output, error) {
		mu.Lock()
		defer mu.Unlock()
		var out Output
		for i, m := range msgs {
			if m.Partition != msgs[0].Partition || (i > 0 && m.Offset != msgs[i-1].Offset+1) {
				return Output{}, infraerr.Content("batch", fmt.Sprintf("batch mixes partitions or skips offsets at %d/%d", m.Partition, m.Offset))
			}
			log[string(m.Key)] = append(log[string(m.Key)], string(m.Value))
			out.Records = append(out.Records, &sarama.ProducerMessage{Topic: outTopic, Value: sarama.ByteEncoder(fmt.Appendf(nil, "%d/%d", m.Partition, m.Offset))})
		}
		total += len(msgs)
		largest = max(largest, len(msgs))
		return out, nil
	}
	pcfg, err := NewConfig(Options{Brokers: brokers, ClientID: "bus-batch-test"})
	if err != nil {
		t.Fatal(err)
	}
	prod, err := NewProducer(brokers, pcfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	dl := &recordingDLQ{}
	r := newBatchRunner(t, brokers, "bustest-"+u, topic, h, prod, dl, NewMetrics(nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := total
		mu.Unlock()
		if n >= keys*perKey || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // anything redelivered would show up now
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if total != keys*perKey {
		t.Fatalf("handled %d records, want exactly %d", total, keys*perKey)
	}
	if len(dl.causes) != 0 {
		t.Fatalf("dead-lettered: %v", dl.causes[0])
	}
	out := testkit.ReadAll(t, brokers, outTopic, keys*perKey, 30*time.Second, false)
	seen := map[string]bool{}
	for _, rec := range out {
		seen[string(rec.Value)] = true
	}
	if len(out) != keys*perKey || len(seen) != keys*perKey {
		t.Fatalf("%d records sent (%d distinct), want one per input record (%d)", len(out), len(seen), keys*perKey)
	}
	if largest < 2 {
		t.Fatalf("largest batch %d: records of a backlog were handed over one by one", largest)
	}
	for k, seqs := range log {
		for i, s := range seqs {
			if s != fmt.Sprint(i) {
				t.Fatalf("key %s: order broken at position %d: %v", k, i, seqs[:min(len(seqs), i+3)])
			}
		}
	}
	t.Logf("largest batch %d", largest)
}

// A poison record inside a batch goes to the DLQ alone and every other
// record of the batch is handled once, in order — whether the handler
// rejects the culprit, fails the batch without naming it, or panics.
func TestBatchPoisonGoesToDLQ(t *testing.T) {
	tests := []struct {
		name string
		// fail is what the batch handler does when its batch holds the
		// poison record at index i; handled records the messages it
		// finished.
		fail func(msgs []*Message, i int, handled func(*Message)) (Output, error)
	}{
		{"rejects the culprit", func(msgs []*Message, i int, handled func(*Message)) (Output, error) {
			out := Output{Outcomes: Outcomes(len(msgs))}
			for j, m := range msgs {
				if j == i {
					out.Outcomes[j] = Reject(infraerr.Content("value", "poison"))
					continue
				}
				handled(m)
			}
			return out, nil
		}},
		{"fails the batch", func([]*Message, int, func(*Message)) (Output, error) {
			return Output{}, infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: "kafka"}, "send failed", nil)
		}},
		{"panic", func([]*Message, int, func(*Message)) (Output, error) { panic("poison in batch") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			brokers := testkit.KafkaBrokers(t)
			u := testkit.Unique()
			topic := "onex.evt.bustest" + u + ".batchpoison.v1"
			dlqTopic := "onex.dlq.bustest" + u + ".events.v1"
			testkit.CreateTopic(t, brokers, topic, 1, nil)
			testkit.CreateTopic(t, brokers, dlqTopic, 1, nil)
			cfg, err := NewConfig(Options{Brokers: brokers, ClientID: "bus-batch-test"})
			if err != nil {
				t.Fatal(err)
			}
			sp, err := sarama.NewSyncProducer(brokers, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer sp.Close()
			const records, poisonAt = 60, 23
			var msgs []*sarama.ProducerMessage
			for i := 0; i < records; i++ {
				v := fmt.Sprint(i)
				if i == poisonAt {
					v = "poison"
				}
				msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder(v)})
			}
			if err := sp.SendMessages(msgs); err != nil {
				t.Fatal(err)
			}
			pub, err := dlq.NewPublisher(sp, nil, dlq.WithRouter(dlq.Router{Override: dlqTopic}))
			if err != nil {
				t.Fatal(err)
			}

			var mu sync.Mutex
			var handled []string
			sawPoisonInBatch := false
			record := func(m *Message) { handled = append(handled, string(m.Value)) }
			h := func(_ context.Context, ms []*Message) (Output, error) {
				mu.Lock()
				defer mu.Unlock()
				for i, m := range ms {
					if string(m.Value) == "poison" {
						sawPoisonInBatch = sawPoisonInBatch || len(ms) > 1
						return tt.fail(ms, i, record)
					}
				}
				for _, m := range ms {
					record(m)
				}
				return Output{}, nil
			}
			metrics := NewMetrics(nil)
			r := newBatchRunner(t, brokers, "bustest-"+u, topic, h, nil, DLQ(pub), metrics)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			recs := testkit.ReadAll(t, brokers, dlqTopic, 1, 30*time.Second, true)
			deadline := time.Now().Add(20 * time.Second)
			for {
				mu.Lock()
				n := len(handled)
				mu.Unlock()
				if n >= records-1 || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(300 * time.Millisecond)
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if !sawPoisonInBatch {
				t.Fatal("the poison record was never part of a larger batch; the test proves nothing")
			}
			var want []string
			for i := 0; i < records; i++ {
				if i != poisonAt {
					want = append(want, fmt.Sprint(i))
				}
			}
			if strings.Join(handled, ",") != strings.Join(want, ",") {
				t.Fatalf("handled %v\nwant    %v", handled, want)
			}
			if len(recs) != 1 {
				t.Fatalf("%d DLQ records, want 1", len(recs))
			}
			rec, err := dlq.Decode(recs[0].Value)
			if err != nil {
				t.Fatal(err)
			}
			if rec.OriginalMessage.Value != "poison" || rec.OriginalMessage.Offset == nil || *rec.OriginalMessage.Offset != poisonAt {
				t.Fatalf("DLQ record %+v", rec.OriginalMessage)
			}
			if got := testutil.ToFloat64(metrics.Consumed.WithLabelValues(topic, "handled")); got != records-1 {
				t.Errorf("handled counter %v, want %d", got, records-1)
			}
			if got := testutil.ToFloat64(metrics.Consumed.WithLabelValues(topic, "dead_lettered")); got != 1 {
				t.Errorf("dead_lettered counter %v, want 1", got)
			}
			// Everything, the poison included, is committed.
			client, err := sarama.NewClient(brokers, testkit.AdminConfig())
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			om, err := sarama.NewOffsetManagerFromClient("bustest-"+u, client)
			if err != nil {
				t.Fatal(err)
			}
			defer om.Close()
			pom, err := om.ManagePartition(topic, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer pom.Close()
			if off, _ := pom.NextOffset(); off != records {
				t.Errorf("committed offset %d, want %d", off, records)
			}
		})
	}
}

// batchChild is the consumer process of TestBatchCrashLosesNothing: a slow
// batch handler that appends "partition/offset" of every record of a batch
// to a file, then returns.
func batchChild() int {
	brokers := strings.Split(os.Getenv("KAFKA_BOOTSTRAP_SERVERS"), ",")
	f, err := os.OpenFile(os.Getenv("BUS_BATCH_OUT"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer f.Close()
	cfg, err := NewConfig(Options{Brokers: brokers, ClientID: "batch-child", FromOldest: true,
		SessionTimeout: 6 * time.Second, Heartbeat: time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	// Commits far more often than a batch takes: if offsets were marked
	// before the handler returned, the batch in flight would be committed
	// during its wait below, and a kill in that wait would lose it.
	cfg.Consumer.Offsets.AutoCommit.Interval = 25 * time.Millisecond
	var mu sync.Mutex
	h := func(_ context.Context, msgs []*Message) (Output, error) {
		time.Sleep(100 * time.Millisecond)
		var b bytes.Buffer
		for _, m := range msgs {
			fmt.Fprintf(&b, "%d/%d\n", m.Partition, m.Offset)
		}
		mu.Lock()
		defer mu.Unlock()
		_, err := f.Write(b.Bytes())
		return Output{}, err
	}
	r, err := NewRunner(RunnerConfig{Brokers: brokers, Config: cfg, Group: os.Getenv("BUS_BATCH_GROUP"),
		Topics: []string{os.Getenv("BUS_BATCH_TOPIC")}, DrainTimeout: 10 * time.Second, MaxBatch: 20,
		Handle: h, Log: discardLogger()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := r.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// A consumer killed (SIGKILL, no drain) mid-stream loses nothing: a second
// one resumes from the committed offsets and, together, every record was
// handled at least once. Records handled after the last commit are handled
// again (at-least-once), and a partition never resumes beyond what was
// handled.
func TestBatchCrashLosesNothing(t *testing.T) {
	brokers := testkit.KafkaBrokers(t)
	topic := "onex.evt.bustest" + testkit.Unique() + ".batchcrash.v1"
	testkit.CreateTopic(t, brokers, topic, 3, nil)
	const keys, perKey = 20, 90
	produceKeyed(t, brokers, topic, keys, perKey)
	out := t.TempDir() + "/handled.txt"
	group := "bustest-" + testkit.Unique()
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "BUS_BATCH_CHILD=1", "BUS_BATCH_OUT="+out, "BUS_BATCH_GROUP="+group, "BUS_BATCH_TOPIC="+topic)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	lines := func() []string {
		f, err := os.Open(out)
		if err != nil {
			return nil
		}
		defer f.Close()
		var ls []string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			ls = append(ls, sc.Text())
		}
		return ls
	}
	distinct := func() int {
		seen := map[string]bool{}
		for _, l := range lines() {
			seen[l] = true
		}
		return len(seen)
	}
	waitDistinct := func(n int, d time.Duration) {
		t.Helper()
		deadline := time.Now().Add(d)
		for distinct() < n {
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d records handled after %s", distinct(), n, d)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	first := start()
	// Past the first auto-commits, so the second consumer resumes from
	// committed offsets rather than from the start.
	waitDistinct(700, 60*time.Second)
	// Somewhere inside the partitions' next batches.
	time.Sleep(time.Duration(rand.IntN(100)) * time.Millisecond)
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	before := len(lines())
	if before >= keys*perKey {
		t.Fatal("first consumer finished the topic before the kill; the test proves nothing")
	}
	second := start()
	waitDistinct(keys*perKey, 90*time.Second)
	_ = second.Process.Signal(syscall.SIGTERM)
	_ = second.Wait()

	all := lines()
	if n := distinct(); n != keys*perKey {
		t.Fatalf("%d distinct records handled, want %d (a record was lost)", n, keys*perKey)
	}
	// The second consumer must have resumed from a commit, not from the
	// start: it re-handles at most what the first did after its last commit.
	if redone := len(all) - keys*perKey; redone >= before {
		t.Errorf("%d records handled twice of %d handled before the kill: offsets were never committed", redone, before)
	}
	t.Logf("handled before the kill: %d; handled again after it: %d", before, len(all)-keys*perKey)
}

// A runner whose batch handler serves several topics labels each topic's
// batch latency with that topic's handler.
func TestTopicHandlersLabel(t *testing.T) {
	m := NewMetrics(nil).Handler("fallback").TopicHandlers(map[string]string{"intents": "intent_router", "results": "result_aggregator"})
	m.ObserveHandler("intents", time.Millisecond)
	m.ObserveHandler("results", time.Millisecond)
	m.ObserveHandler("other", time.Millisecond)
	for _, tc := range []struct{ topic, handler string }{{"intents", "intent_router"}, {"results", "result_aggregator"}, {"other", "fallback"}} {
		if n := histogramCount(t, m.Duration.WithLabelValues(tc.topic, tc.handler)); n != 1 {
			t.Errorf("%s: %d observations under handler=%s, want 1", tc.topic, n, tc.handler)
		}
	}
	if n := testutil.CollectAndCount(m.Duration); n != 3 {
		t.Errorf("%d series, want 3", n)
	}
}
