package ingress

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/operator"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/topics"
)

type partitions struct {
	parts []int32
	err   error
}

func (p partitions) Partitions(string) ([]int32, error) { return p.parts, p.err }

// keyedPartition is the partition the fleet's keyed producer (bus.NewConfig's
// partitioner) gives a record keyed by key on topic, of n partitions, as
// sarama's producer picks it.
func keyedPartition(t *testing.T, topic, key string, n int32) int32 {
	t.Helper()
	cfg, err := bus.NewConfig(bus.Options{Brokers: []string{"localhost:9092"}, Security: &config.KafkaSecurity{}})
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Producer.Partitioner(topic)
	if !p.RequiresConsistency() {
		t.Fatal("the keyed producer's partitioner does not require consistency: a key's partition could change")
	}
	choice, err := p.Partition(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key)}, n)
	if err != nil {
		t.Fatal(err)
	}
	return choice
}

func TestOperatorHandler(t *testing.T) {
	node := uuid.New()
	state, older := "active", int64(3600)
	deregister := &operator.Command{CommandID: uuid.New(), Command: operator.Deregister, NodeID: &node, RequestedBy: "ops",
		RequestedAt: pipeline.T(now)}
	evict := &operator.Command{CommandID: uuid.New(), Command: operator.Evict, State: &state, OlderThanSeconds: &older,
		Reason: "cleanup", RequestedBy: "ops", RequestedAt: pipeline.T(now)}
	encode := func(c *operator.Command) []byte {
		b, err := operator.Encode(c, uuid.New())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	down := infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: "kafka"}, "broker down", nil)
	four := partitions{parts: []int32{0, 1, 2, 3}}
	// recs are the records one message should yield: on these partitions,
	// with this key ("": none).
	type recs struct {
		parts []int32
		key   string
	}
	dereg := recs{[]int32{keyedPartition(t, "reducer-input", node.String(), 4)}, node.String()}
	evicted := recs{parts: []int32{0, 1, 2, 3}}
	notEnvelope, oversized := []byte(`{"command": "evict"}`), make([]byte, 4097)
	type counted struct{ label, outcome string }
	tests := []struct {
		name   string
		values [][]byte
		parts  partitions
		// outcomes: "" done, "reject" (a content error), "retry" (a
		// retriable error); nil: every message done.
		outcomes []string
		// records are the records returned, per message.
		records []recs
		counts  []counted
	}{
		{"deregister: keyed by the node, in its partition", [][]byte{encode(deregister)}, four, nil,
			[]recs{dereg}, []counted{{"deregister", "accepted"}}},
		{"evict: one copy per partition", [][]byte{encode(evict)}, four, nil,
			[]recs{evicted}, []counted{{"evict", "accepted"}}},
		{"not an envelope", [][]byte{notEnvelope}, four, []string{"reject"}, []recs{{}}, []counted{{"unknown", "invalid"}}},
		{"empty", [][]byte{nil}, four, []string{"reject"}, []recs{{}}, []counted{{"unknown", "invalid"}}},
		{"oversized", [][]byte{oversized}, four, []string{"reject"}, []recs{{}}, []counted{{"unknown", "invalid"}}},
		{"a batch: the invalid one rejected, the others forwarded in order",
			[][]byte{encode(deregister), notEnvelope, encode(evict)}, four, []string{"", "reject", ""},
			[]recs{dereg, {}, evicted}, []counted{{"deregister", "accepted"}, {"unknown", "invalid"}, {"evict", "accepted"}}},
		{"partitions unknown: retried, nothing forwarded", [][]byte{encode(evict)}, partitions{err: down}, []string{"retry"},
			[]recs{{}}, nil},
		{"no partitions: retried", [][]byte{encode(deregister)}, partitions{}, []string{"retry"}, []recs{{}}, nil},
		{"partitions unknown in a batch: the invalid one before rejected, the retry ends the batch",
			[][]byte{notEnvelope, encode(deregister), encode(evict)}, partitions{err: down}, []string{"reject", "retry", ""},
			[]recs{{}, {}, {}}, []counted{{"unknown", "invalid"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMetrics(nil)
			h := NewOperatorHandler(OperatorConfig{ReducerInput: "reducer-input", Source: "test", MaxBytes: 4096,
				Partitions: tt.parts, Metrics: m})
			h.now = func() time.Time { return now }
			var msgs []*bus.Message
			for i, v := range tt.values {
				msgs = append(msgs, &bus.Message{Topic: "admin-topic", Offset: int64(i), Value: v, CorrelationID: uuid.New()})
			}
			out, err := h.Handle(context.Background(), msgs)
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if tt.outcomes == nil && out.Outcomes != nil {
				t.Fatalf("outcomes %v, want all done", out.Outcomes)
			}
			for i, want := range tt.outcomes {
				o := out.Outcomes[i]
				switch want {
				case "":
					if o.Verdict != bus.Done {
						t.Errorf("message %d: %s (%v), want done", i, o.Verdict, o.Err)
					}
				case "reject":
					if o.Verdict != bus.DeadLetter || !infraerr.IsContent(o.Err) {
						t.Errorf("message %d: %s (%v), want a content rejection", i, o.Verdict, o.Err)
					}
				case "retry":
					if o.Verdict != bus.Retry || !infraerr.Retriable(o.Err) {
						t.Errorf("message %d: %s (%v), want a retriable retry", i, o.Verdict, o.Err)
					}
				}
			}
			got := out.Records
			for i, r := range tt.records {
				for _, p := range r.parts {
					if len(got) == 0 {
						t.Fatalf("message %d: records missing", i)
					}
					pm := got[0]
					got = got[1:]
					checkLine(t, pm, tt.values[i])
					var key string
					if pm.Key != nil {
						k, _ := pm.Key.Encode()
						key = string(k)
					}
					if pm.Topic != "reducer-input" || pm.Partition != p || key != r.key {
						t.Errorf("message %d: record on %s/%d keyed %q, want reducer-input/%d keyed %q", i, pm.Topic, pm.Partition, key, p, r.key)
					}
				}
			}
			if len(got) != 0 {
				t.Errorf("%d records more than expected", len(got))
			}
			if n := testutil.CollectAndCount(m.OperatorCommands); n != len(tt.counts) {
				t.Errorf("%d series counted, want %d", n, len(tt.counts))
			}
			for _, c := range tt.counts {
				if n := testutil.ToFloat64(m.OperatorCommands.WithLabelValues(c.label, c.outcome)); n != 1 {
					t.Errorf("onex_orchestrator_operator_commands_total{%s,%s} = %v, want 1", c.label, c.outcome, n)
				}
			}
		})
	}
}

// TestDeregisterPartition: the partition a deregister names is the one the
// keyed producer node messages go through would choose for the node, for
// any node and partition count, so the command lands behind the node's own
// messages although the runner sends it through a manual-partition
// producer.
func TestDeregisterPartition(t *testing.T) {
	for _, n := range []int32{1, 2, 3, 6, 12, 64} {
		parts := make([]int32, n)
		for i := range parts {
			parts[i] = int32(i)
		}
		h := NewOperatorHandler(OperatorConfig{ReducerInput: "onex.cmd.platform.reducer-input.v1", Source: "test",
			Partitions: partitions{parts: parts}, Metrics: NewMetrics(nil)})
		seen := map[int32]bool{}
		for range 500 {
			node := uuid.New()
			cmd := &operator.Command{CommandID: uuid.New(), Command: operator.Deregister, NodeID: &node, RequestedBy: "ops",
				RequestedAt: pipeline.T(now)}
			v, err := operator.Encode(cmd, uuid.New())
			if err != nil {
				t.Fatal(err)
			}
			out, err := h.Handle(context.Background(), []*bus.Message{{Topic: "admin", Value: v}})
			if err != nil || out.Outcomes != nil || len(out.Records) != 1 {
				t.Fatalf("Handle: %v, outcomes %v, %d records", err, out.Outcomes, len(out.Records))
			}
			want := keyedPartition(t, "onex.cmd.platform.reducer-input.v1", node.String(), n)
			if got := out.Records[0].Partition; got != want {
				t.Fatalf("%d partitions: node %s deregistered on partition %d, the keyed producer picks %d", n, node, got, want)
			}
			seen[want] = true
		}
		if n > 1 && len(seen) < 2 {
			t.Fatalf("%d partitions: every node on %v; the comparison proves nothing", n, seen)
		}
	}
}

// TestKeyPartitionMapsThroughTheList: keyPartition maps the partitioner's
// choice through the client's partition list, as sarama's producer does.
func TestKeyPartitionMapsThroughTheList(t *testing.T) {
	rec := &sarama.ProducerMessage{Topic: "t", Key: sarama.StringEncoder("node")}
	choice, err := sarama.NewHashPartitioner("t").Partition(rec, 3)
	if err != nil {
		t.Fatal(err)
	}
	parts := []int32{10, 20, 30}
	if got, err := keyPartition(rec, parts); err != nil || got != parts[choice] {
		t.Fatalf("keyPartition = %d, %v; want %d", got, err, parts[choice])
	}
	if _, err := keyPartition(rec, nil); err == nil {
		t.Fatal("no error without partitions")
	}
}

// checkLine checks a reducer input record: the admin topic, the receive
// time, the command byte for byte.
func checkLine(t *testing.T, pm *sarama.ProducerMessage, value []byte) {
	t.Helper()
	ri := sentInput(t, pm)
	if ri.Topic != topics.RegistrationAdmin || !ri.ReceivedAt.Equal(now) || string(ri.Value) != string(value) {
		t.Errorf("reducer input %+v", ri)
	}
}
