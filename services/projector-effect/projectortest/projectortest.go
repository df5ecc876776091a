// Package projectortest runs the projector's registry API in-process for
// other modules' tests (onexctl): a fresh database on the real PostgreSQL
// server (OMNIBASE_INFRA_DB_URL), migrated, served over gRPC on a loopback
// port, with a way to put rows in it the way intents would.
package projectortest

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"

	"github.com/omninode/onex-fleet/services/projector-effect/internal/api"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/pgtest"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/schema"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/store"
)

// Server is a running registry API; it stops when the test ends.
type Server struct {
	// Addr is host:port of the gRPC server.
	Addr string
	// DSN is the server's database.
	DSN   string
	store *store.Store
}

// Start runs a registry API over a fresh database. The test is skipped
// without a PostgreSQL server (failed when ONEX_REQUIRE_INFRA=1).
func Start(t testing.TB) *Server {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	ctx, cancel := context.WithCancel(context.Background())
	if err := schema.Up(ctx, dsn); err != nil {
		cancel()
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	st := store.New(pool)
	n := store.NewNotifier(dsn, slog.Default())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx) }()
	srv := api.New(st, n, slog.Default())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	g := grpc.NewServer()
	srv.Register(g)
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(func() {
		g.Stop()
		cancel()
		<-done
		pool.Close()
	})
	return &Server{Addr: ln.Addr().String(), DSN: dsn, store: st}
}

// Node describes a row to put. Zero fields get defaults: node type
// "effect", version "1.0.0", capabilities {}, a fresh attempt id.
type Node struct {
	ID           uuid.UUID
	Sequence     int64
	State        string
	NodeType     string
	Name         string
	Version      string
	Capabilities string
	Endpoints    map[string]string
	UpdatedAt    time.Time
	// LivenessDeadline and LastHeartbeatAt are optional.
	LivenessDeadline, LastHeartbeatAt *time.Time
	// What the node declares (optional): tags, protocols, intent types,
	// contract type ("" is none) and event_bus topics.
	CapabilityTags, Protocols, IntentTypes []string
	ContractType                           string
	SubscribeTopics, PublishTopics         []string
}

// Put writes n as an upsert intent at n.Sequence would (guards included:
// an older sequence than the row's changes nothing).
func (s *Server) Put(t testing.TB, n Node) {
	t.Helper()
	if n.NodeType == "" {
		n.NodeType = "effect"
	}
	if n.Version == "" {
		n.Version = "1.0.0"
	}
	if n.Capabilities == "" {
		n.Capabilities = "{}"
	}
	if n.UpdatedAt.IsZero() {
		n.UpdatedAt = time.Now().UTC().Truncate(time.Microsecond)
	}
	var name *string
	if n.Name != "" {
		name = &n.Name
	}
	corr := uuid.New()
	w := store.Write{Kind: store.Upsert, NodeID: n.ID, Sequence: n.Sequence, State: n.State, UpdatedAt: n.UpdatedAt,
		LivenessDeadline: n.LivenessDeadline, LastHeartbeatAt: n.LastHeartbeatAt,
		NodeType: n.NodeType, RegisteredAt: n.UpdatedAt, AttemptID: uuid.New(), NodeVersion: n.Version,
		Capabilities: []byte(n.Capabilities), Endpoints: n.Endpoints, NodeName: name, CorrelationID: &corr,
		CapabilityTags: n.CapabilityTags, Protocols: n.Protocols, IntentTypes: n.IntentTypes,
		SubscribeTopics: n.SubscribeTopics, PublishTopics: n.PublishTopics}
	if n.ContractType != "" {
		w.ContractType = &n.ContractType
	}
	if _, err := s.store.Apply(context.Background(), []store.Write{w}); err != nil {
		t.Fatal(err)
	}
}
