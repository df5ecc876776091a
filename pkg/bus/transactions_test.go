package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/testkit"
)

// countingTxn is a TxnHandler that echoes every record to out, rejects
// the records whose value is "poison", fails the first attempt at every
// batch holding a "flaky" record, and records what the runner told it.
type countingTxn struct {
	out string
	mu  *sync.Mutex
	// handed counts Handle calls; aborted, Aborted calls; committed, the
	// records of committed batches.
	handed, aborted, committed *int
	failedOnce                 map[int64]bool
}

func (c *countingTxn) Handle(_ context.Context, msgs []*Message) (Output, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	*c.handed++
	out := Output{Outcomes: Outcomes(len(msgs))}
	for i, m := range msgs {
		switch string(m.Value) {
		case "flaky":
			if !c.failedOnce[m.Offset] {
				c.failedOnce[m.Offset] = true
				return Output{}, errors.New("flaky: first attempt fails")
			}
		case "poison":
			out.Outcomes[i] = Reject(infraerr.Content("value", "poison"))
			continue
		}
		out.Records = append(out.Records, &sarama.ProducerMessage{Topic: c.out, Value: sarama.ByteEncoder(fmt.Appendf(nil, "%d", m.Offset))})
	}
	return out, nil
}

func (c *countingTxn) Committed(msgs []*Message, _ Output) {
	c.mu.Lock()
	defer c.mu.Unlock()
	*c.committed += len(msgs)
}

func (c *countingTxn) Aborted(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	*c.aborted++
	return nil
}

func (c *countingTxn) Close() {}

// In transactional mode every batch's outputs, dead letters and offsets
// commit together: a batch whose first attempt fails is aborted, the
// handler told, and the batch handed again, so a read_committed reader
// sees exactly one output per good input, one DLQ record for the poison,
// and the group's offset at the end.
func TestTransactionsExactlyOnce(t *testing.T) {
	brokers := testkit.KafkaBrokers(t)
	u := testkit.Unique()
	in := "onex.evt.bustest" + u + ".txnin.v1"
	out := "onex.evt.bustest" + u + ".txnout.v1"
	dlqTopic := "onex.dlq.bustest" + u + ".events.v1"
	for _, tp := range []string{in, out, dlqTopic} {
		testkit.CreateTopic(t, brokers, tp, 1, nil)
	}
	pcfg, err := NewConfig(Options{Brokers: brokers, ClientID: "bus-txn-test"})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := sarama.NewSyncProducer(brokers, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	const records = 200
	values := map[int]string{17: "poison", 60: "flaky", 140: "flaky"}
	var msgs []*sarama.ProducerMessage
	for i := range records {
		v, ok := values[i]
		if !ok {
			v = "ok"
		}
		msgs = append(msgs, &sarama.ProducerMessage{Topic: in, Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder(v)})
	}
	if err := sp.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}

	cfg, err := NewConfig(Options{Brokers: brokers, ClientID: "bus-txn-test", FromOldest: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	var mu sync.Mutex
	var handed, aborted, committed int
	group := "bustest-" + u
	r, err := NewRunner(RunnerConfig{Brokers: brokers, Config: cfg, Group: group, Topics: []string{in},
		Transactions: &Transactions{
			Producer: func(_ string, p int32) (*sarama.Config, error) {
				c, err := NewConfig(Options{Brokers: brokers, ClientID: "bus-txn-test"})
				if err != nil {
					return nil, err
				}
				c.Producer.Idempotent, c.Net.MaxOpenRequests, c.Producer.RequiredAcks = true, 1, sarama.WaitForAll
				c.Producer.Transaction.ID = fmt.Sprintf("%s-p%d", group, p)
				return c, c.Validate()
			},
			Claim: func(context.Context, PartitionClaim, sarama.SyncProducer) (TxnHandler, error) {
				return &countingTxn{out: out, mu: &mu, handed: &handed, aborted: &aborted, committed: &committed, failedOnce: map[int64]bool{}}, nil
			},
			DeadLetter: func(m *Message, cause error) (*sarama.ProducerMessage, error) {
				return &sarama.ProducerMessage{Topic: dlqTopic, Value: sarama.ByteEncoder(fmt.Appendf(nil, "%d:%v", m.Offset, cause))}, nil
			},
		},
		Retry: fastPolicy(), MaxBatch: 50, Log: discardLogger(), Metrics: NewMetrics(nil)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	outs := testkit.ReadAll(t, brokers, out, records-1, 60*time.Second, true)
	dead := testkit.ReadAll(t, brokers, dlqTopic, 1, 10*time.Second, true)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		n := committed
		mu.Unlock()
		if n == records || time.Now().After(deadline) {
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, m := range outs {
		seen[string(m.Value)]++
	}
	if len(outs) != records-1 || len(seen) != records-1 {
		t.Fatalf("%d committed outputs (%d distinct), want exactly one per good input (%d)", len(outs), len(seen), records-1)
	}
	if len(dead) != 1 || string(dead[0].Value)[:3] != "17:" {
		t.Fatalf("%d DLQ records, want the poison's alone", len(dead))
	}
	mu.Lock()
	defer mu.Unlock()
	if aborted != 2 || committed != records {
		t.Fatalf("aborted %d, committed %d; want the two flaky batches aborted once each and every record committed", aborted, committed)
	}
	client, err := sarama.NewClient(brokers, testkit.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	om, err := sarama.NewOffsetManagerFromClient(group, client)
	if err != nil {
		t.Fatal(err)
	}
	defer om.Close()
	pom, err := om.ManagePartition(in, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pom.Close()
	if off, _ := pom.NextOffset(); off != records {
		t.Errorf("committed offset %d, want %d", off, records)
	}
}

// A transactional runner refuses a group that commits offsets itself.
func TestTransactionsNeedNoAutoCommit(t *testing.T) {
	tx := &Transactions{
		Producer:   func(string, int32) (*sarama.Config, error) { return nil, nil },
		Claim:      func(context.Context, PartitionClaim, sarama.SyncProducer) (TxnHandler, error) { return nil, nil },
		DeadLetter: func(*Message, error) (*sarama.ProducerMessage, error) { return nil, nil },
	}
	if _, err := NewRunner(RunnerConfig{Brokers: []string{"x"}, Config: sarama.NewConfig(), Group: "g", Topics: []string{"t"}, Transactions: tx}); err == nil {
		t.Fatal("a transactional runner with auto-commit on was accepted")
	}
}
