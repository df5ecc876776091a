package app

import (
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/config"
	"github.com/omninode/onex-fleet/pkg/observability"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/service"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/pkg/topics"
	"github.com/omninode/onex-fleet/services/reducer/decide"
	"github.com/omninode/onex-fleet/services/reducer/internal/liveness"
	"github.com/omninode/onex-fleet/services/reducer/internal/processor"
	"github.com/omninode/onex-fleet/services/reducer/internal/state"
	"github.com/omninode/onex-fleet/services/reducer/internal/wire"
)

// Heartbeats of an ACTIVE node write no snapshot: the first batch of them
// writes a liveness checkpoint (head and bucket), a batch within the
// checkpoint interval writes nothing but its intents. A restore from what
// the batches committed (snapshots, checkpoint) plus a replay of the inputs
// after the checkpoint rebuilds exactly the state the live run had.
func TestHeartbeatsCheckpointInsteadOfSnapshot(t *testing.T) {
	set := testkit.WireSets(t)[0]
	svc := &service.Service{
		Name:     "reducer",
		Config:   &config.Config{Service: "reducer", KafkaBootstrap: "127.0.0.1:1", Environment: "test"},
		Log:      observability.NewLogger(io.Discard, "reducer", "info"),
		Registry: prometheus.NewRegistry(),
		Health:   observability.NewHealth(condTopics, condFSM, condAssigned),
	}
	r, err := New(svc, Settings{Params: decide.DefaultParams(), BatchSize: 500, Group: "test",
		SnapshotsTopic: topics.RegistrationSnapshots, LivenessTopic: topics.RegistrationLiveness, CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	h := &handler{r: r, partitions: 6}
	ps := &partitionState{part: state.NewPartition(0), live: liveness.NewTracker(0, 0)}
	proc := processor.New(r.settings.Params, ps.part)

	t0 := time.Date(2026, 3, 2, 14, 5, 7, 500000000, time.UTC)
	var offset int64
	in := func(topic string, at time.Time, value []byte) *sarama.ConsumerMessage {
		b, _ := json.Marshal(pipeline.ReducerInput{Topic: topic, ReceivedAt: pipeline.T(at), Value: json.RawMessage(value)})
		offset++
		return &sarama.ConsumerMessage{Topic: topics.ReducerInput, Key: []byte(fixtureNode), Value: b, Offset: offset - 1}
	}
	hb := func(at time.Time) *sarama.ConsumerMessage {
		return in(topics.NodeHeartbeat, at, []byte(heartbeatAt(t, set, at)))
	}
	register := []*sarama.ConsumerMessage{
		in(topics.NodeIntrospection, t0, set.Read(t, "introspection-effect.json")),
		in(topics.NodeRegistrationAcked, t0.Add(time.Second), set.Read(t, "ack.json")),
	}
	first := []*sarama.ConsumerMessage{hb(t0.Add(2 * time.Second)), hb(t0.Add(3 * time.Second))}
	// The checkpoint interval (an hour) has not passed: these are covered
	// by no record and must come back from the replay.
	second := []*sarama.ConsumerMessage{hb(t0.Add(4 * time.Second)), hb(t0.Add(5 * time.Second))}

	var committed []*sarama.ProducerMessage
	for i, batch := range [][]*sarama.ConsumerMessage{register, first, second} {
		out, err := h.decideBatch(proc, ps, busMessages(batch))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{"snapshot": 1, "liveness": 0}
		switch i {
		case 1:
			want = map[string]int{"snapshot": 0, "liveness": 2} // head and the node's bucket
		case 2:
			want = map[string]int{"snapshot": 0, "liveness": 0}
		}
		for k, n := range want {
			if out.counts[k] != n {
				t.Errorf("batch %d: %d %s records, want %d (counts %v)", i, out.counts[k], k, n, out.counts)
			}
		}
		if i > 0 && out.counts["intent"] != len(batch) {
			t.Errorf("batch %d: %d intents for %d heartbeats", i, out.counts["intent"], len(batch))
		}
		committed = append(committed, out.msgs...)
	}
	live := proc.Partition.Get(uuid.MustParse(fixtureNode))
	if live == nil || live.State != decide.Active {
		t.Fatalf("node after the batches: %+v", live)
	}

	// Restore: snapshots, then the checkpoint, then the replay from its head.
	part := state.NewPartition(0)
	var lv [][]byte
	for _, m := range committed {
		v, _ := m.Value.Encode()
		switch m.Topic {
		case topics.RegistrationSnapshots:
			st, err := wire.RestoreState(v, pipeline.SnapshotState(headerPtrs(m.Headers)))
			if err != nil {
				t.Fatal(err)
			}
			part.Put(st)
		case topics.RegistrationLiveness:
			k, _ := m.Key.Encode()
			if p, err := (sarama.NewHashPartitioner(m.Topic)).Partition(&sarama.ProducerMessage{Topic: m.Topic, Key: sarama.ByteEncoder(k)}, 6); err != nil || p != 0 {
				t.Errorf("checkpoint key %q lands on partition %d", k, p)
			}
			if ct := pipeline.ContentType(headerPtrs(m.Headers)); ct != "application/x-protobuf; messageType=onex.fleet.v1.LivenessCheckpoint" {
				t.Errorf("checkpoint record content type %q", ct)
			}
			lv = append(lv, v)
		}
	}
	tr, from, err := liveness.Load(0, 0, lv)
	if err != nil {
		t.Fatal(err)
	}
	if from != second[0].Offset {
		t.Fatalf("replay from %d, want %d (the first input after the checkpoint)", from, second[0].Offset)
	}
	if n := tr.Apply(part); n != 1 {
		t.Fatalf("%d entries applied, want 1", n)
	}
	moved := 0
	// The replay reads every input from the head on; the heartbeats of the
	// checkpointed batch are stale against the restored state.
	for _, m := range append(append([]*sarama.ConsumerMessage{}, first...), second...) {
		if replayHeartbeat(m, part, tr, r.settings.Params) {
			moved++
		}
	}
	if moved != len(second) {
		t.Errorf("replay moved %d heartbeats, want %d", moved, len(second))
	}
	got := part.Get(live.NodeID)
	if got.Sequence != live.Sequence || !got.LastHeartbeatAt.Equal(*live.LastHeartbeatAt) ||
		!got.LivenessDeadline.Equal(*live.LivenessDeadline) || got.State != live.State {
		t.Errorf("restored seq %d hb %s deadline %s %s, live run had seq %d hb %s deadline %s %s",
			got.Sequence, got.LastHeartbeatAt, got.LivenessDeadline, got.State,
			live.Sequence, live.LastHeartbeatAt, live.LivenessDeadline, live.State)
	}
	if !tr.Dirty() {
		t.Error("replayed moves are not in the next checkpoint")
	}
}

func headerPtrs(hs []sarama.RecordHeader) []*sarama.RecordHeader {
	out := make([]*sarama.RecordHeader, len(hs))
	for i := range hs {
		out[i] = &hs[i]
	}
	return out
}

// busMessages is a batch as the runner hands it to the reducer.
func busMessages(batch []*sarama.ConsumerMessage) []*bus.Message {
	msgs := make([]*bus.Message, len(batch))
	for i, m := range batch {
		msgs[i] = bus.FromConsumerMessage(m)
	}
	return msgs
}
