package snapshot_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/omninode/onex-fleet/cmd/onexctl/internal/snapshot"
	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/testkit"
	registryv1 "github.com/omninode/onex-fleet/proto/onex/registry/v1"
	"github.com/omninode/onex-fleet/services/projector-effect/projectortest"
	"github.com/omninode/onex-fleet/services/reducer/decide"
	reducersnapshot "github.com/omninode/onex-fleet/services/reducer/snapshot"
)

func TestFromNode(t *testing.T) {
	id, attempt, corr := uuid.New(), uuid.New(), uuid.New()
	now := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	name, cs := "orch-1", corr.String()
	n := &registryv1.Node{
		NodeId: id.String(), Domain: "registration", State: registryv1.RegistrationState_REGISTRATION_STATE_ACTIVE,
		NodeType: "orchestrator", NodeName: &name, NodeVersion: "1.2.0",
		CapabilitiesJson:      `{"mcp": {"expose": true, "tool_name": "Do Things"}}`,
		Endpoints:             map[string]string{"health": "http://10.1.2.3:8080/health"},
		RegistrationAttemptId: attempt.String(), CorrelationId: &cs,
		RegisteredAt: timestamppb.New(now), UpdatedAt: timestamppb.New(now.Add(time.Minute)),
		LivenessDeadline: timestamppb.New(now.Add(2 * time.Minute)), Sequence: 7,
		ContractType: ptrTo("orchestrator"), ContractVersion: ptrTo("1.2.0"), Protocols: []string{"ProtocolX"},
		CapabilityTags:  []string{"mcp-enabled", "mcp-tool:do-things", "node-type:orchestrator", "node.orchestrator"},
		SubscribeTopics: []string{"onex.cmd.x.do.v1"}, PublishTopics: []string{"onex.evt.x.done.v1"},
		IntrospectionExtrasJson: `{"flow_x":1}`,
	}
	rec, err := snapshot.Record(n, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	s, err := snapshot.FromNode(n, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(s); string(b) != string(rec.Value) {
		t.Errorf("record value %s, FromNode %s", rec.Value, b)
	}
	// The value is the bare ModelRegistrationSnapshot.
	if _, err := registration.DecodeRegistrationSnapshot(rec.Value); err != nil {
		t.Errorf("not a ModelRegistrationSnapshot: %v\n%s", err, rec.Value)
	}
	back, err := pipeline.DecodeSnapshot(rec.Value)
	if err != nil {
		t.Fatal(err)
	}
	if h := rec.Headers(); len(h) != 1 || string(h[0].Key) != pipeline.HeaderReducerState {
		t.Fatalf("headers %q", h)
	}
	var st decide.NodeState
	if err := json.Unmarshal(rec.State, &st); err != nil {
		t.Fatal(err)
	}
	// What the reducer restores, and what the consul effect derives.
	restored, err := reducersnapshot.Decode(rec.Value, rec.State)
	if err != nil || restored.NodeID != id || string(restored.Capabilities) != `{"mcp":{"expose":true,"tool_name":"Do Things"}}` {
		t.Fatalf("the reducer restores %+v (%v)", restored, err)
	}
	consul, err := reducersnapshot.ConsulOf(rec.Value, rec.State)
	if err != nil {
		t.Fatal(err)
	}
	// What the reducer's restore checks, and what it needs to go on.
	switch {
	case st.NodeID != back.EntityID || !st.State.Valid() || st.State != decide.Active:
		t.Errorf("reducer state %+v", st)
	case st.Sequence != 8 || *back.SourceProjectionSequence != 7 || back.SnapshotVersion != 8:
		t.Errorf("sequences: state %d, source %d, version %d", st.Sequence, *back.SourceProjectionSequence, back.SnapshotVersion)
	case st.AttemptID != attempt || st.CorrelationID != corr || !st.RegisteredAt.Equal(now) || !st.LastStateChangeAt.Equal(now.Add(time.Minute)):
		t.Errorf("identity %+v", st)
	case st.LivenessDeadline == nil || !st.LivenessDeadline.Equal(now.Add(2*time.Minute)) || st.AckDeadline != nil:
		t.Errorf("deadlines %+v", st)
	case consul == nil || consul.ServiceID != "onex-orchestrator-"+id.String() || consul.HealthCheck == nil ||
		*consul.Address != "10.1.2.3" || *consul.Port != 8080:
		t.Errorf("consul %+v", consul)
	}
	tags := map[string]bool{}
	for _, tg := range consul.Tags {
		tags[tg] = true
	}
	if !tags["mcp-enabled"] || !tags["mcp-tool:do-things"] || !tags["node-type:orchestrator"] {
		t.Errorf("tags %v", consul.Tags)
	}
	// What the node declared, without the tags the reducer derives: the
	// rebuilt state projects the same row again.
	wantDeclared := decide.NewDeclared(decide.DeclaredInput{HasContract: true, ContractType: "orchestrator", ContractVersion: "1.2.0",
		Protocols: []string{"ProtocolX"}, CapabilityTags: []string{"node.orchestrator"},
		SubscribeTopics: []string{"onex.cmd.x.do.v1"}, PublishTopics: []string{"onex.evt.x.done.v1"}})
	if string(restored.Extras) != `{"flow_x":1}` {
		t.Errorf("introspection extras %s, want the row's", restored.Extras)
	}
	if !restored.Declared.Equal(wantDeclared) {
		t.Errorf("declared %+v, want %+v", restored.Declared, wantDeclared)
	}
	if got := restored.CapabilityTags(); strings.Join(got, ",") != strings.Join(n.CapabilityTags, ",") {
		t.Errorf("capability tags derived again %v, want the row's %v", got, n.CapabilityTags)
	}
	if seq, ok := snapshot.Sequence(rec.Value, rec.State); !ok || seq != 8 {
		t.Errorf("Sequence %d %v, want the reducer state's 8", seq, ok)
	}

	for _, bad := range []*registryv1.Node{
		{NodeId: "x", RegistrationAttemptId: attempt.String(), State: registryv1.RegistrationState_REGISTRATION_STATE_ACTIVE},
		{NodeId: id.String(), RegistrationAttemptId: attempt.String()},
		{NodeId: id.String(), State: registryv1.RegistrationState_REGISTRATION_STATE_ACTIVE},
	} {
		if _, err := snapshot.FromNode(bad, now); err == nil {
			t.Errorf("FromNode(%v) accepted", bad)
		}
	}
}

// TestRebuild: the topic gets a snapshot for every node whose snapshot on
// the topic is older (or missing); a newer one is left alone unless forced.
func TestRebuild(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test; skipped with -short")
	}
	brokers := testkit.KafkaBrokers(t)
	srv := projectortest.Start(t)
	topic := "onex.snapshot.oc" + testkit.Unique() + ".registration-snapshots.v1"
	compact := "compact"
	testkit.CreateTopic(t, brokers, topic, 3, map[string]*string{"cleanup.policy": &compact})

	a, b, c := uuid.New(), uuid.New(), uuid.New()
	for _, n := range []projectortest.Node{
		{ID: a, Sequence: 5, State: "active"},
		{ID: b, Sequence: 3, State: "awaiting_ack", NodeType: "compute"},
		{ID: c, Sequence: 9, State: "liveness_expired"},
	} {
		srv.Put(t, n)
	}
	// The reducer already wrote a newer state of a than the projection has
	// (its state in the header, as the reducer writes it now), and an older
	// one of b (its state in the value, as the reducer wrote it before).
	prod, err := sarama.NewSyncProducer(brokers, testkit.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for id, seq := range map[uuid.UUID]int64{a: 12, b: 1} {
		model := fmt.Sprintf(`{"entity_id": %q, "domain": "registration", "current_state": "active", "last_state_change_at": "2026-03-02T14:00:00Z", "snapshot_version": %d, "snapshot_created_at": "2026-03-02T14:00:00Z"`, id, seq)
		state := fmt.Sprintf(`{"sequence": %d}`, seq)
		m := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(id.String())}
		if id == a {
			m.Value = sarama.StringEncoder(model + "}")
			m.Headers = []sarama.RecordHeader{{Key: []byte(pipeline.HeaderReducerState), Value: []byte(state)}}
		} else {
			m.Value = sarama.StringEncoder(model + `, "reducer_state": ` + state + "}")
		}
		if _, _, err := prod.SendMessage(m); err != nil {
			t.Fatal(err)
		}
	}

	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := &snapshot.Rebuilder{Registry: registryv1.NewRegistryServiceClient(conn), Brokers: brokers, Topic: topic, Idle: 500 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	r.DryRun = true
	rep, err := r.Run(ctx)
	if err != nil || rep.Nodes != 3 || rep.Published != 2 || rep.SkippedNewer != 1 {
		t.Fatalf("dry run: %+v, %v", rep, err)
	}
	if got := testkit.ReadAll(t, brokers, topic, 3, 2*time.Second, true); len(got) != 2 {
		t.Fatalf("dry run wrote: %d records on the topic, want the 2 seeded", len(got))
	}

	r.DryRun = false
	rep, err = r.Run(ctx)
	if err != nil || rep.Published != 2 || rep.SkippedNewer != 1 || len(rep.Invalid) != 0 {
		t.Fatalf("rebuild: %+v, %v", rep, err)
	}
	latest := map[string]*sarama.ConsumerMessage{}
	for _, m := range testkit.ReadAll(t, brokers, topic, 4, 10*time.Second, true) {
		latest[string(m.Key)] = m
	}
	for id, want := range map[uuid.UUID]string{b: "awaiting_ack", c: "liveness_expired"} {
		m := latest[id.String()]
		if m == nil {
			t.Fatalf("node %s: no snapshot", id)
		}
		s, err := pipeline.DecodeSnapshot(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		// The value is the bare model, the state is in the header, and
		// the reducer restores from the two.
		if _, err := registration.DecodeRegistrationSnapshot(m.Value); err != nil {
			t.Errorf("node %s: value is not a ModelRegistrationSnapshot: %v", id, err)
		}
		st, err := reducersnapshot.Decode(m.Value, pipeline.SnapshotState(m.Headers))
		if s.CurrentState != want || err != nil || string(st.State) != want || len(m.Headers) != 1 {
			t.Errorf("node %s: snapshot %+v, restored %+v (%v), headers %d", id, s, st, err, len(m.Headers))
		}
	}
	if m := latest[a.String()]; m == nil {
		t.Error("node a: no snapshot")
	} else if seq, _ := snapshot.Sequence(m.Value, pipeline.SnapshotState(m.Headers)); seq != 12 {
		t.Errorf("node a: the newer reducer snapshot was replaced (sequence %d)", seq)
	}

	// A second rebuild finds everything up to date.
	rep, err = r.Run(ctx)
	if err != nil || rep.Published != 0 || rep.SkippedNewer != 3 {
		t.Fatalf("second rebuild: %+v, %v", rep, err)
	}
	r.Force = true
	if rep, err = r.Run(ctx); err != nil || rep.Published != 3 {
		t.Fatalf("forced rebuild: %+v, %v", rep, err)
	}
}

func ptrTo[T any](v T) *T { return &v }
