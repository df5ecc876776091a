package bus

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/dlq"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/testkit"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestMain(m *testing.M) {
	if os.Getenv("BUS_DRAIN_CHILD") == "1" {
		os.Exit(drainChild())
	}
	os.Exit(m.Run())
}

func produceKeyed(t *testing.T, brokers []string, topic string, keys, perKey int) {
	t.Helper()
	cfg, err := NewConfig(Options{Brokers: brokers, ClientID: "bus-test"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewProducer(brokers, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var batch []*sarama.ProducerMessage
	for seq := 0; seq < perKey; seq++ {
		for k := 0; k < keys; k++ {
			batch = append(batch, &sarama.ProducerMessage{
				Topic: topic,
				Key:   sarama.StringEncoder(fmt.Sprintf("node-%03d", k)),
				Value: sarama.StringEncoder(fmt.Sprintf("%d", seq)),
			})
		}
		if len(batch) >= 500 {
			if err := p.Send(context.Background(), batch...); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := p.Send(context.Background(), batch...); err != nil {
		t.Fatal(err)
	}
}

func newTestRunner(t *testing.T, brokers []string, group, topic string, h func(context.Context, *Message) error) *Runner {
	t.Helper()
	cfg, err := NewConfig(Options{Brokers: brokers, ClientID: "bus-test", FromOldest: true,
		SessionTimeout: 6 * time.Second, Heartbeat: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRunner(RunnerConfig{Brokers: brokers, Config: cfg, Group: group, Topics: []string{topic},
		Handle: perMessage(h), DeadLetter: &recordingDLQ{}, Retry: fastPolicy(), MaxBatch: 1,
		DrainTimeout: 10 * time.Second, Log: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Per-key order must survive a rebalance: a second member joins mid-stream
// and the first leaves, and every key's records are still handled exactly
// once, in order, across both members.
func TestOrderKeptAcrossRebalance(t *testing.T) {
	brokers := testkit.KafkaBrokers(t)
	topic := "onex.evt.bustest" + testkit.Unique() + ".order.v1"
	testkit.CreateTopic(t, brokers, topic, 6, nil)
	const keys, perKey = 30, 100
	produceKeyed(t, brokers, topic, keys, perKey)

	var mu sync.Mutex
	log := map[string][]string{} // key -> handled seqs in handling order
	handledBy := map[string]int{}
	total := 0
	handler := func(member string) func(context.Context, *Message) error {
		return func(_ context.Context, m *Message) error {
			time.Sleep(300 * time.Microsecond)
			mu.Lock()
			log[string(m.Key)] = append(log[string(m.Key)], string(m.Value))
			handledBy[member]++
			total++
			mu.Unlock()
			return nil
		}
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return total }
	waitFor := func(n int, d time.Duration) {
		t.Helper()
		deadline := time.Now().Add(d)
		for count() < n {
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d messages handled after %s", count(), n, d)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	group := "bustest-" + testkit.Unique()
	ctxA, stopA := context.WithCancel(context.Background())
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	a, b := newTestRunner(t, brokers, group, topic, handler("a")), newTestRunner(t, brokers, group, topic, handler("b"))
	doneA, doneB := make(chan error, 1), make(chan error, 1)
	go func() { doneA <- a.Run(ctxA) }()
	waitFor(500, 60*time.Second)
	go func() { doneB <- b.Run(ctxB) }()
	waitFor(1500, 60*time.Second)
	stopA()
	if err := <-doneA; err != nil {
		t.Fatalf("member a did not drain cleanly: %v", err)
	}
	waitFor(keys*perKey, 90*time.Second)
	time.Sleep(time.Second) // anything redelivered would show up now
	stopB()
	if err := <-doneB; err != nil {
		t.Fatalf("member b did not drain cleanly: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	if handledBy["a"] == 0 || handledBy["b"] == 0 {
		t.Fatalf("rebalance did not split the work: handled by %v", handledBy)
	}
	if total != keys*perKey {
		t.Errorf("handled %d records, want exactly %d (no loss, no duplicates on a clean rebalance)", total, keys*perKey)
	}
	for k, seqs := range log {
		for i, s := range seqs {
			if s != fmt.Sprint(i) {
				t.Fatalf("key %s: handled %v; order broken at position %d", k, seqs[:min(len(seqs), i+3)], i)
			}
		}
	}
	t.Logf("handled by member: %v", handledBy)
}

// drainChild is the consumer process of TestDrainOnSIGTERM: it appends
// "partition/offset" of every handled record to a file and stops on SIGTERM.
func drainChild() int {
	brokers := strings.Split(os.Getenv("KAFKA_BOOTSTRAP_SERVERS"), ",")
	f, err := os.OpenFile(os.Getenv("BUS_DRAIN_OUT"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer f.Close()
	cfg, err := NewConfig(Options{Brokers: brokers, ClientID: "drain-child", FromOldest: true,
		SessionTimeout: 6 * time.Second, Heartbeat: time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	h := func(_ context.Context, m *Message) error {
		time.Sleep(2 * time.Millisecond)
		_, err := fmt.Fprintf(f, "%d/%d\n", m.Partition, m.Offset)
		return err
	}
	r, err := NewRunner(RunnerConfig{Brokers: brokers, Config: cfg, Group: os.Getenv("BUS_DRAIN_GROUP"),
		Topics: []string{os.Getenv("BUS_DRAIN_TOPIC")}, DrainTimeout: 10 * time.Second,
		Handle: perMessage(h), DeadLetter: &recordingDLQ{}, Retry: fastPolicy(), MaxBatch: 1})
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

// SIGTERM during load loses no message and re-handles none that was
// committed: a consumer process is killed with SIGTERM mid-stream, a new one
// finishes the topic, and every record was handled exactly once.
func TestDrainOnSIGTERM(t *testing.T) {
	brokers := testkit.KafkaBrokers(t)
	topic := "onex.evt.bustest" + testkit.Unique() + ".drain.v1"
	testkit.CreateTopic(t, brokers, topic, 3, nil)
	const keys, perKey = 20, 150
	produceKeyed(t, brokers, topic, keys, perKey)
	out := t.TempDir() + "/handled.txt"
	group := "bustest-" + testkit.Unique()
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "BUS_DRAIN_CHILD=1", "BUS_DRAIN_OUT="+out,
			"BUS_DRAIN_GROUP="+group, "BUS_DRAIN_TOPIC="+topic)
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
	waitLines := func(n int, d time.Duration) {
		t.Helper()
		deadline := time.Now().Add(d)
		for len(lines()) < n {
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d records handled after %s", len(lines()), n, d)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	first := start()
	waitLines(800, 60*time.Second)
	if err := first.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := first.Wait(); err != nil {
		t.Fatalf("consumer did not drain cleanly on SIGTERM: %v", err)
	}
	handledBeforeStop := len(lines())
	if handledBeforeStop >= keys*perKey {
		t.Fatalf("first consumer finished the topic before SIGTERM; the test proves nothing")
	}
	second := start()
	waitLines(keys*perKey, 90*time.Second)
	time.Sleep(time.Second)
	_ = second.Process.Signal(syscall.SIGTERM)
	_ = second.Wait()

	seen := map[string]int{}
	for _, l := range lines() {
		seen[l]++
	}
	if len(seen) != keys*perKey {
		t.Errorf("%d distinct records handled, want %d (a record was lost)", len(seen), keys*perKey)
	}
	for rec, n := range seen {
		if n > 1 {
			t.Errorf("record %s handled %d times after a clean drain (committed work redone)", rec, n)
		}
	}
	t.Logf("first consumer handled %d records before SIGTERM; total %d", handledBeforeStop, len(lines()))
}

// A handler that keeps failing sends the message to the DLQ with the spec's
// payload and headers, and the group moves on to the next message.
func TestPoisonMessageGoesToDLQ(t *testing.T) {
	brokers := testkit.KafkaBrokers(t)
	u := testkit.Unique()
	topic := "onex.evt.bustest" + u + ".poison.v1"
	dlqTopic := "onex.dlq.bustest" + u + ".events.v1"
	testkit.CreateTopic(t, brokers, topic, 1, nil)
	testkit.CreateTopic(t, brokers, dlqTopic, 1, nil)
	cfg, err := NewConfig(Options{Brokers: brokers, ClientID: "bus-test", FromOldest: true})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	pub, err := dlq.NewPublisher(sp, nil, dlq.WithRouter(dlq.Router{Override: dlqTopic}))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{`{"correlation_id":"b7e3c1d2-4a5f-4e6b-8c9d-0e1f2a3b4c5d","n":1}`, "poison", `{"n":3}`} {
		if _, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder(v)}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var handled []string
	h := func(_ context.Context, m *Message) error {
		if string(m.Value) == "poison" {
			return infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: "db"}, "keeps failing", nil)
		}
		mu.Lock()
		handled = append(handled, string(m.Value))
		mu.Unlock()
		return nil
	}
	r, err := NewRunner(RunnerConfig{Brokers: brokers, Config: cfg, Group: "bustest-" + u, Topics: []string{topic},
		Handle: perMessage(h), DeadLetter: DLQ(pub), Retry: fastPolicy(), MaxBatch: 1, Log: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	recs := testkit.ReadAll(t, brokers, dlqTopic, 1, 30*time.Second, true)
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(handled)
		mu.Unlock()
		if n == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(handled) != 2 {
		t.Fatalf("handled %v; the group must move on past the poison message", handled)
	}
	if len(recs) != 1 {
		t.Fatalf("%d DLQ records, want 1", len(recs))
	}
	rec, err := dlq.Decode(recs[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	if rec.OriginalTopic != topic || rec.OriginalMessage.Value != "poison" || rec.FailureType != "infra_error" ||
		rec.ErrorType != "InfraConnectionError" || rec.OriginalMessage.Offset == nil || *rec.OriginalMessage.Offset != 1 {
		t.Fatalf("DLQ record %+v", rec)
	}
	hdr := map[string]string{}
	var order []string
	for _, h := range recs[0].Headers {
		hdr[string(h.Key)] = string(h.Value)
		order = append(order, string(h.Key))
	}
	want := []string{"content_type", "correlation_id", "message_id", "timestamp", "source", "event_type", "schema_version", "priority", "retry_count", "max_retries", "original_topic", "dlq_topic", "failure_type", "failure_reason", "failure_timestamp"}
	if strings.Join(order[:len(want)], ",") != strings.Join(want, ",") {
		t.Fatalf("header order %v, want %v", order, want)
	}
	if hdr["event_type"] != "dlq_raw_message" || hdr["original_topic"] != topic || hdr["dlq_topic"] != dlqTopic || string(recs[0].Key) != "k" {
		t.Fatalf("headers %v key %q", hdr, recs[0].Key)
	}
}

// The bus series move through a real Runner: a handled record and a
// dead-lettered one are counted under their outcome and timed under the
// handler's name, the DLQ counter names the original topic, and while one
// record is held in the handler the records behind it show as lag, which
// returns to 0 once they are handled.
func TestRunnerMetrics(t *testing.T) {
	brokers := testkit.KafkaBrokers(t)
	u := testkit.Unique()
	topic := "onex.evt.bustest" + u + ".metrics.v1"
	dlqTopic := "onex.dlq.bustest" + u + ".events.v1"
	group := "bustest-" + u
	testkit.CreateTopic(t, brokers, topic, 1, nil)
	testkit.CreateTopic(t, brokers, dlqTopic, 1, nil)
	cfg, err := NewConfig(Options{Brokers: brokers, ClientID: "bus-test", FromOldest: true})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	for _, v := range []string{"ok", "poison", "hold", "after-1", "after-2"} {
		if _, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder(v)}); err != nil {
			t.Fatal(err)
		}
	}
	registry := prometheus.NewRegistry()
	reg := observability.WithService(registry, "bustest")
	m := NewMetrics(reg)
	pub, err := dlq.NewPublisher(sp, reg, dlq.WithRouter(dlq.Router{Override: dlqTopic}))
	if err != nil {
		t.Fatal(err)
	}
	held, release := make(chan struct{}), make(chan struct{})
	h := func(_ context.Context, msg *Message) error {
		switch string(msg.Value) {
		case "poison":
			return infraerr.Content("value", "not an envelope")
		case "hold":
			close(held)
			<-release
		}
		return nil
	}
	r, err := NewRunner(RunnerConfig{Brokers: brokers, Config: cfg, Group: group, Topics: []string{topic},
		Handle: perMessage(h), DeadLetter: DLQ(pub), Retry: fastPolicy(), MaxBatch: 1, Log: discardLogger(), Metrics: m.Handler("metrics-test")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		close(release)
		t.Fatal("the held record never reached the handler")
	}
	lag := map[string]string{"service": "bustest", "group": group, "topic": topic, "partition": "0"}
	metric := func(name string, labels map[string]string) float64 { return testkit.Metric(t, registry, name, labels) }
	eventually := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	// The held record (offset 2) and the two behind it are still to do.
	eventually("lag 3 while a record is held", func() bool { return metric("onex_consumer_lag", lag) == 3 })
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"onex_messages_consumed_total", map[string]string{"service": "bustest", "topic": topic, "outcome": "handled"}, 1},
		{"onex_messages_consumed_total", map[string]string{"service": "bustest", "topic": topic, "outcome": "dead_lettered"}, 1},
		{"onex_dlq_messages_total", map[string]string{"service": "bustest", "original_topic": topic, "dlq_topic": dlqTopic, "failure_type": "content_error"}, 1},
		{"onex_handler_duration_seconds", map[string]string{"service": "bustest", "topic": topic, "handler": "metrics-test"}, 2},
	} {
		if got := metric(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v while held, want %v", c.name, c.labels, got, c.want)
		}
	}
	close(release)
	eventually("every record handled", func() bool {
		return metric("onex_messages_consumed_total", map[string]string{"topic": topic, "outcome": "handled"}) == 4
	})
	eventually("lag back to 0", func() bool { return metric("onex_consumer_lag", lag) == 0 })
	if n := metric("onex_handler_duration_seconds", map[string]string{"topic": topic, "handler": "metrics-test"}); n != 5 {
		t.Errorf("%v handler observations, want 5", n)
	}
}
