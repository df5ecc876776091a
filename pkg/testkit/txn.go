package testkit

import (
	"testing"

	"github.com/IBM/sarama"
)

// TransactionalConfig is AdminConfig for a transactional producer with
// transactional id id (idempotent, acks=all, one request in flight), for
// tests that write a topic the way the reducer does.
func TransactionalConfig(id string) *sarama.Config {
	c := AdminConfig()
	c.Producer.Idempotent = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Net.MaxOpenRequests = 1
	c.Producer.Transaction.ID = id
	return c
}

// TransactionalProducer connects a producer with TransactionalConfig(id),
// closed when the test ends.
func TransactionalProducer(t testing.TB, brokers []string, id string) sarama.SyncProducer {
	t.Helper()
	p, err := sarama.NewSyncProducer(brokers, TransactionalConfig(id))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// WriteTxn sends msgs in one transaction of prod and commits it, or aborts
// it when commit is false (its records stay in the log, never delivered
// under read_committed, followed by an abort marker).
func WriteTxn(t testing.TB, prod sarama.SyncProducer, commit bool, msgs ...*sarama.ProducerMessage) {
	t.Helper()
	if err := prod.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	if err := prod.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
	end := prod.CommitTxn
	if !commit {
		end = prod.AbortTxn
	}
	if err := end(); err != nil {
		t.Fatal(err)
	}
}
