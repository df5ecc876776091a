package workflow

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/testkit"
)

// ReadState restores from the real topic what a replica starting now would
// find: the latest committed record of each node, in either form, over
// tombstones, an aborted transaction and the commit marker that ends the
// partitions; and it fails, rather than hang, while a transaction still open
// holds records it must wait for.
func TestReadState(t *testing.T) {
	brokers := testkit.KafkaBrokers(t)
	topic := "onex.snapshot.workflowtest" + testkit.Unique() + ".registration-aggregations.v1"
	compact := "compact"
	testkit.CreateTopic(t, brokers, topic, 3, map[string]*string{"cleanup.policy": &compact})

	prod := testkit.TransactionalProducer(t, brokers, topic+"-writer")
	txn := func(commit bool, msgs ...*sarama.ProducerMessage) {
		t.Helper()
		testkit.WriteTxn(t, prod, commit, msgs...)
	}
	msg := func(key uuid.UUID, a *Aggregation, asJSON bool) *sarama.ProducerMessage {
		m := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key.String())}
		switch {
		case a == nil: // tombstone
		case asJSON:
			b, err := json.Marshal(a)
			if err != nil {
				t.Fatal(err)
			}
			m.Value = sarama.ByteEncoder(b)
		default:
			b, err := MarshalAggregation(a)
			if err != nil {
				t.Fatal(err)
			}
			m.Value = sarama.ByteEncoder(b)
			m.Headers = []sarama.RecordHeader{{Key: []byte(pipeline.HeaderContentType), Value: []byte(AggregationContentType)}}
		}
		return m
	}
	a, b, c, d := stateAggregation(t), stateAggregation(t), stateAggregation(t), uuid.New()
	a2 := stateAggregation(t)
	a2.NodeID = a.NodeID
	txn(true, msg(a.NodeID, a, true), msg(b.NodeID, b, false))
	txn(false, msg(c.NodeID, c, false))
	bad := msg(d, nil, false)
	bad.Value = sarama.StringEncoder("not an aggregation")
	txn(true, msg(a.NodeID, a2, false), msg(b.NodeID, nil, false), bad)

	cfg, err := bus.NewConfig(bus.Options{Brokers: brokers, ClientID: "workflow-restore-test"})
	if err != nil {
		t.Fatal(err)
	}
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	conf := attemptConfig(&sender{}, noDLQ{})
	conf.StateTopic = topic
	w := New(conf)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := w.ReadState(ctx, client, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[a.NodeID] == nil || got[a.NodeID].AttemptID != a2.AttemptID {
		t.Fatalf("restored %v, want a's latest state only", got)
	}

	if err := prod.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = prod.AbortTxn() }()
	if _, _, err := prod.SendMessage(msg(c.NodeID, c, false)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = w.ReadState(ctx, client, time.Second)
	if k, _ := infraerr.KindOf(err); k != infraerr.KindTimeout || ctx.Err() != nil {
		t.Fatalf("read past an open transaction: %v after %s, want a timeout after 1 s", err, time.Since(start))
	}
}
