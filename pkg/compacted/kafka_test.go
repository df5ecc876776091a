package compacted

import (
	"fmt"
	"testing"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/testkit"
)

// The tests run against the real broker: what they check (control records,
// aborted batches, the last stable offset, compaction) is the broker's and
// sarama's behaviour, which a fake would only restate.

// topic creates a topic of its own for a test.
func topic(t *testing.T, brokers []string, partitions int32, configs map[string]*string) string {
	t.Helper()
	name := "onex.snapshot.compactedtest" + testkit.Unique() + ".state.v1"
	testkit.CreateTopic(t, brokers, name, partitions, configs)
	return name
}

// committedClient is a client as the fleet's readers have one: read_committed.
func committedClient(t *testing.T, brokers []string) sarama.Client {
	t.Helper()
	cfg := testkit.AdminConfig()
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	cfg.Consumer.Return.Errors = true
	c, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// writer writes records to partitions of a topic, plainly or in
// transactions.
type writer struct {
	t     *testing.T
	topic string
	plain sarama.SyncProducer
	txn   sarama.SyncProducer
}

func newWriter(t *testing.T, brokers []string, topic string) *writer {
	t.Helper()
	pc := testkit.AdminConfig()
	pc.Producer.Partitioner = sarama.NewManualPartitioner
	plain, err := sarama.NewSyncProducer(brokers, pc)
	if err != nil {
		t.Fatal(err)
	}
	tc := testkit.TransactionalConfig(topic + "-writer")
	tc.Producer.Partitioner = sarama.NewManualPartitioner
	txn, err := sarama.NewSyncProducer(brokers, tc)
	if err != nil {
		plain.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { plain.Close(); txn.Close() })
	return &writer{t: t, topic: topic, plain: plain, txn: txn}
}

func (w *writer) msgs(p int32, keys ...string) []*sarama.ProducerMessage {
	out := make([]*sarama.ProducerMessage, len(keys))
	for i, k := range keys {
		out[i] = &sarama.ProducerMessage{Topic: w.topic, Partition: p, Key: sarama.StringEncoder(k), Value: sarama.StringEncoder("v-" + k)}
	}
	return out
}

// send writes keys to partition p without a transaction.
func (w *writer) send(p int32, keys ...string) {
	w.t.Helper()
	if err := w.plain.SendMessages(w.msgs(p, keys...)); err != nil {
		w.t.Fatal(err)
	}
}

// begin opens a transaction and writes keys to partition p in it.
func (w *writer) begin(p int32, keys ...string) {
	w.t.Helper()
	if err := w.txn.BeginTxn(); err != nil {
		w.t.Fatal(err)
	}
	for _, m := range w.msgs(p, keys...) {
		if _, _, err := w.txn.SendMessage(m); err != nil {
			w.t.Fatal(err)
		}
	}
}

// end commits or aborts the open transaction.
func (w *writer) end(commit bool) {
	w.t.Helper()
	var err error
	if commit {
		err = w.txn.CommitTxn()
	} else {
		err = w.txn.AbortTxn()
	}
	if err != nil {
		w.t.Fatal(err)
	}
}

// commit writes keys to partition p in one committed transaction.
func (w *writer) commit(p int32, keys ...string) { w.begin(p, keys...); w.end(true) }

// abort writes keys to partition p in one aborted transaction.
func (w *writer) abort(p int32, keys ...string) { w.begin(p, keys...); w.end(false) }

// collect returns a callback that records what it is handed, as
// "key@offset".
func collect(got *[]string) func(*sarama.ConsumerMessage) error {
	return func(m *sarama.ConsumerMessage) error {
		*got = append(*got, fmt.Sprintf("%s@%d", m.Key, m.Offset))
		return nil
	}
}
