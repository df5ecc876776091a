package snapshot

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"google.golang.org/protobuf/proto"

	"github.com/omninode/onex-fleet/pkg/testkit"
	fleetv1 "github.com/omninode/onex-fleet/proto/onex/fleet/v1"
)

// The latest committed checkpoint of each key is printed as protojson; a key
// whose latest record is a tombstone (a deleted bucket) is not, nor is a
// checkpoint of an aborted transaction, whose abort marker ends the topic.
func TestPrintLiveness(t *testing.T) {
	brokers := testkit.KafkaBrokers(t)
	topic := "onex.snapshot.onexctltest" + testkit.Unique() + ".registration-liveness.v1"
	compact := "compact"
	testkit.CreateTopic(t, brokers, topic, 1, map[string]*string{"cleanup.policy": &compact})
	enc := func(cp *fleetv1.LivenessCheckpoint) sarama.Encoder {
		b, err := proto.Marshal(cp)
		if err != nil {
			t.Fatal(err)
		}
		return sarama.ByteEncoder(b)
	}
	node := bytes.Repeat([]byte{7}, 16)
	prod, err := sarama.NewSyncProducer(brokers, testkit.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	err = prod.SendMessages([]*sarama.ProducerMessage{
		{Topic: topic, Key: sarama.StringEncoder("0/head.0"), Value: enc(&fleetv1.LivenessCheckpoint{Head: true, Buckets: 1, InputOffset: 10})},
		{Topic: topic, Key: sarama.StringEncoder("0/1/0.0"), Value: enc(&fleetv1.LivenessCheckpoint{Buckets: 1, InputOffset: 10,
			Nodes: []*fleetv1.NodeLiveness{{NodeId: node, Sequence: 5}}})},
		{Topic: topic, Key: sarama.StringEncoder("0/head.0"), Value: enc(&fleetv1.LivenessCheckpoint{Head: true, Buckets: 2, InputOffset: 20})},
		{Topic: topic, Key: sarama.StringEncoder("0/1/0.0")}, // the bucket deleted by a split
	})
	if err != nil {
		t.Fatal(err)
	}
	testkit.WriteTxn(t, testkit.TransactionalProducer(t, brokers, topic+"-aborted"), false,
		&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("0/head.0"),
			Value: enc(&fleetv1.LivenessCheckpoint{Head: true, Buckets: 9, InputOffset: 30})})
	var out bytes.Buffer
	n, err := PrintLiveness(context.Background(), brokers, topic, 2*time.Second, &out)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d lines, want the head only:\n%s", n, out.String())
	}
	var line struct {
		Key        string `json:"key"`
		Checkpoint struct {
			Head        bool   `json:"head"`
			Buckets     int    `json:"buckets"`
			InputOffset string `json:"input_offset"` // protojson writes int64 as a string
		} `json:"checkpoint"`
	}
	if err := json.Unmarshal(out.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if line.Key != "0/head.0" || !line.Checkpoint.Head || line.Checkpoint.Buckets != 2 || line.Checkpoint.InputOffset != "20" {
		t.Errorf("printed %s", out.String())
	}
}
