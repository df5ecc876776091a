package snapshot_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/testkit"
	registryv1 "github.com/omninode/onex-fleet/proto/onex/registry/v1"
	"github.com/omninode/onex-fleet/services/projector-effect/projectortest"
	"github.com/omninode/onex-fleet/services/projector-effect/snapshot"
	"github.com/omninode/onex-fleet/services/reducer/decide"
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
	}
	s, err := snapshot.FromNode(n, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(s)
	back, err := pipeline.DecodeSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	var st decide.NodeState
	if err := json.Unmarshal(back.ReducerState, &st); err != nil {
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
	case back.Consul == nil || back.Consul.ServiceID != "onex-orchestrator-"+id.String() || back.Consul.HealthCheck == nil ||
		*back.Consul.Address != "10.1.2.3" || *back.Consul.Port != 8080:
		t.Errorf("consul %+v", back.Consul)
	}
	tags := map[string]bool{}
	for _, tg := range back.Consul.Tags {
		tags[tg] = true
	}
	if !tags["mcp-enabled"] || !tags["mcp-tool:do-things"] || !tags["node-type:orchestrator"] {
		t.Errorf("tags %v", back.Consul.Tags)
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
	topic := "onex.snapshot.pe" + testkit.Unique() + ".registration-snapshots.v1"
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
	// The reducer already wrote a newer state of a than the projection has,
	// and an older one of b.
	prod, err := sarama.NewSyncProducer(brokers, testkit.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for id, seq := range map[uuid.UUID]int64{a: 12, b: 1} {
		v := fmt.Sprintf(`{"entity_id": %q, "domain": "registration", "current_state": "active", "last_state_change_at": "2026-03-02T14:00:00Z", "snapshot_version": %d, "snapshot_created_at": "2026-03-02T14:00:00Z", "reducer_state": {"sequence": %d}}`, id, seq, seq)
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(id.String()), Value: sarama.StringEncoder(v)}); err != nil {
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
	latest := map[string]*pipeline.Snapshot{}
	for _, m := range testkit.ReadAll(t, brokers, topic, 4, 10*time.Second, true) {
		s, err := pipeline.DecodeSnapshot(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		latest[string(m.Key)] = s
	}
	for id, want := range map[uuid.UUID]string{b: "awaiting_ack", c: "liveness_expired"} {
		s := latest[id.String()]
		if s == nil || s.CurrentState != want || len(s.ReducerState) == 0 {
			t.Errorf("node %s: snapshot %+v", id, s)
		}
	}
	if seq, _ := snapshot.Sequence(mustJSON(t, latest[a.String()])); seq != 12 {
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

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
