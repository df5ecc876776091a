package api_test

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	registryv1 "github.com/omninode/onex-fleet/proto/onex/registry/v1"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/api"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/pgtest"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/schema"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/store"
)

type env struct {
	store  *store.Store
	client registryv1.RegistryServiceClient
}

// serve runs the registry API over a fresh migrated database on a loopback
// port. poll is the fallback poll interval of watches.
func serve(t *testing.T, poll time.Duration, notify bool) *env {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := schema.Up(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	st := store.New(pool)
	var n *store.Notifier
	if notify {
		n = store.NewNotifier(dsn, slog.Default())
		done := make(chan struct{})
		go func() { defer close(done); _ = n.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	srv := api.New(st, n, slog.Default())
	srv.Poll = poll
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	srv.Register(g)
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &env{store: st, client: registryv1.NewRegistryServiceClient(conn)}
}

var t0 = time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)

func register(t *testing.T, s *store.Store, node uuid.UUID, seq int64, state, nodeType string) {
	t.Helper()
	name := "n-" + node.String()[:8]
	corr := uuid.New()
	w := store.Write{Kind: store.Upsert, NodeID: node, Sequence: seq, State: state, UpdatedAt: t0.Add(time.Duration(seq) * time.Second),
		NodeType: nodeType, RegisteredAt: t0, AttemptID: uuid.New(), NodeVersion: "1.2.0",
		Capabilities: []byte(`{"postgres": true}`), Endpoints: map[string]string{"health": "http://h:8080/health"}, NodeName: &name, CorrelationID: &corr}
	if _, err := s.Apply(context.Background(), []store.Write{w}); err != nil {
		t.Fatal(err)
	}
}

func TestGetAndList(t *testing.T) {
	e := serve(t, time.Second, false)
	ctx := context.Background()
	var active []uuid.UUID
	for i := range 7 {
		id := uuid.New()
		st := "awaiting_ack"
		if i%2 == 0 {
			st = "active"
			active = append(active, id)
		}
		register(t, e.store, id, 1, st, []string{"effect", "compute"}[i%2])
	}

	got, err := e.client.GetNode(ctx, &registryv1.GetNodeRequest{NodeId: active[0].String()})
	if err != nil {
		t.Fatal(err)
	}
	n := got.GetNode()
	if n.GetState() != registryv1.RegistrationState_REGISTRATION_STATE_ACTIVE || n.GetNodeType() != "effect" ||
		n.GetNodeVersion() != "1.2.0" || n.GetEndpoints()["health"] == "" || n.GetSequence() != 1 || !n.GetRegisteredAt().AsTime().Equal(t0) {
		t.Errorf("GetNode = %v", n)
	}
	if n.GetIntrospectionExtrasJson() != "{}" {
		t.Errorf("introspection_extras_json of a node without extras: %q, want {}", n.GetIntrospectionExtrasJson())
	}
	withExtras := uuid.New()
	x := store.Write{Kind: store.Upsert, NodeID: withExtras, Sequence: 1, State: "active", UpdatedAt: t0, NodeType: "effect",
		RegisteredAt: t0, AttemptID: uuid.New(), NodeVersion: "1.0.0", Capabilities: []byte(`{}`),
		IntrospectionExtras: []byte(`{"flow_x": 1}`)}
	if _, err := e.store.Apply(ctx, []store.Write{x}); err != nil {
		t.Fatal(err)
	}
	if got, err := e.client.GetNode(ctx, &registryv1.GetNodeRequest{NodeId: withExtras.String()}); err != nil ||
		got.GetNode().GetIntrospectionExtrasJson() != `{"flow_x": 1}` {
		t.Errorf("introspection_extras_json %q (%v)", got.GetNode().GetIntrospectionExtrasJson(), err)
	}
	active = append(active, withExtras)

	tests := []struct {
		name string
		req  *registryv1.ListNodesRequest
		want int
		code codes.Code
	}{
		{"all", &registryv1.ListNodesRequest{}, 8, codes.OK},
		{"active", &registryv1.ListNodesRequest{State: registryv1.RegistrationState_REGISTRATION_STATE_ACTIVE}, 5, codes.OK},
		{"compute", &registryv1.ListNodesRequest{NodeType: "compute"}, 3, codes.OK},
		{"capability", &registryv1.ListNodesRequest{Capability: "postgres"}, 7, codes.OK},
		{"paged", &registryv1.ListNodesRequest{PageSize: 2}, 8, codes.OK},
		{"bad token", &registryv1.ListNodesRequest{PageToken: "nope"}, 0, codes.InvalidArgument},
		{"bad state", &registryv1.ListNodesRequest{State: 99}, 0, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, seen := tt.req, map[string]bool{}
			for pages := 0; pages < 10; pages++ {
				resp, err := e.client.ListNodes(ctx, req)
				if status.Code(err) != tt.code {
					t.Fatalf("code %v (%v), want %v", status.Code(err), err, tt.code)
				}
				if err != nil {
					return
				}
				for _, n := range resp.GetNodes() {
					if seen[n.GetNodeId()] {
						t.Errorf("node %s listed twice", n.GetNodeId())
					}
					seen[n.GetNodeId()] = true
				}
				if resp.GetNextPageToken() == "" {
					break
				}
				req = &registryv1.ListNodesRequest{State: tt.req.State, NodeType: tt.req.NodeType, Capability: tt.req.Capability,
					PageSize: tt.req.PageSize, PageToken: resp.GetNextPageToken()}
			}
			if len(seen) != tt.want {
				t.Errorf("%d nodes, want %d", len(seen), tt.want)
			}
		})
	}

	for _, tt := range []struct {
		id   string
		code codes.Code
	}{{uuid.NewString(), codes.NotFound}, {"not-a-uuid", codes.InvalidArgument}} {
		if _, err := e.client.GetNode(ctx, &registryv1.GetNodeRequest{NodeId: tt.id}); status.Code(err) != tt.code {
			t.Errorf("GetNode(%s): %v, want %v", tt.id, err, tt.code)
		}
	}
}

// recv returns the next node message of a watch, skipping checkpoints, and
// the token of the last message seen.
func recv(t *testing.T, w grpc.ServerStreamingClient[registryv1.WatchNodesResponse], within time.Duration) (*registryv1.Node, string) {
	t.Helper()
	type res struct {
		m   *registryv1.WatchNodesResponse
		err error
	}
	deadline := time.After(within)
	for {
		ch := make(chan res, 1)
		go func() { m, err := w.Recv(); ch <- res{m, err} }()
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatalf("watch: %v", r.err)
			}
			if r.m.GetNode() != nil {
				return r.m.GetNode(), r.m.GetResumeToken()
			}
		case <-deadline:
			t.Fatalf("no change delivered within %v", within)
		}
	}
}

// TestWatchDeliversWithinASecond: a row change reaches a watcher within a
// second, woken by the NOTIFY trigger. The fallback poll is set to a minute
// so the test fails if delivery depended on it.
func TestWatchDeliversWithinASecond(t *testing.T) {
	e := serve(t, time.Minute, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := e.client.WatchNodes(ctx, &registryv1.WatchNodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := w.Recv() // the initial checkpoint: the watch is established
	if err != nil || first.GetResumeToken() == "" {
		t.Fatalf("first message %v, %v", first, err)
	}
	time.Sleep(200 * time.Millisecond) // the listener is up

	for i := range 3 {
		id := uuid.New()
		start := time.Now()
		register(t, e.store, id, int64(i+1), "active", "effect")
		n, _ := recv(t, w, time.Second)
		if n.GetNodeId() != id.String() || n.GetState() != registryv1.RegistrationState_REGISTRATION_STATE_ACTIVE {
			t.Fatalf("got %v, want node %s", n, id)
		}
		t.Logf("change %d delivered after %v", i, time.Since(start))
	}
}

// TestWatchResume: a watch resumed from a token gets every change made
// while it was away; send_initial lists the existing rows first.
func TestWatchResume(t *testing.T) {
	e := serve(t, 200*time.Millisecond, false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := uuid.New()
	register(t, e.store, a, 1, "awaiting_ack", "reducer")

	w, err := e.client.WatchNodes(ctx, &registryv1.WatchNodesRequest{SendInitial: true})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := recv(t, w, 2*time.Second)
	if n.GetNodeId() != a.String() {
		t.Fatalf("initial: got %s", n.GetNodeId())
	}
	// Wait for the checkpoint after the initial poll.
	var token string
	for token == "" {
		m, err := w.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if m.GetNode() == nil {
			token = m.GetResumeToken()
		}
	}
	cancel()

	b, c := uuid.New(), uuid.New()
	register(t, e.store, b, 1, "active", "effect")
	register(t, e.store, c, 1, "active", "effect")
	register(t, e.store, a, 2, "active", "reducer")

	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	w2, err := e.client.WatchNodes(ctx2, &registryv1.WatchNodesRequest{ResumeToken: token})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]registryv1.RegistrationState{}
	for len(seen) < 3 {
		n, _ := recv(t, w2, 3*time.Second)
		seen[n.GetNodeId()] = n.GetState()
	}
	for _, id := range []uuid.UUID{a, b, c} {
		if seen[id.String()] != registryv1.RegistrationState_REGISTRATION_STATE_ACTIVE {
			t.Errorf("node %s: %v after resume", id, seen[id.String()])
		}
	}

	w3, err := e.client.WatchNodes(ctx2, &registryv1.WatchNodesRequest{ResumeToken: "garbage"})
	if err == nil {
		_, err = w3.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("bad token: %v, want InvalidArgument", err)
	}
}

func TestStateNames(t *testing.T) {
	for _, s := range []string{"pending_registration", "accepted", "awaiting_ack", "rejected", "ack_timed_out", "ack_received", "active", "liveness_expired"} {
		v, ok := api.StateValue(s)
		if !ok || api.StateName(v) != s {
			t.Errorf("%s: %v %v %q", s, v, ok, api.StateName(v))
		}
	}
	for _, s := range []string{"ACTIVE", "REGISTRATION_STATE_ACTIVE", " active "} {
		if v, ok := api.StateValue(s); !ok || v != registryv1.RegistrationState_REGISTRATION_STATE_ACTIVE {
			t.Errorf("%q: %v %v", s, v, ok)
		}
	}
	if _, ok := api.StateValue("unspecified"); ok {
		t.Error("unspecified accepted")
	}
}
