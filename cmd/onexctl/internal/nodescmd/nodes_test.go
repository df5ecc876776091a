package nodescmd

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/pipeline"
	"github.com/omninode/onex-fleet/pkg/testkit"
	"github.com/omninode/onex-fleet/services/projector-effect/projectortest"
	"github.com/omninode/onex-fleet/services/reducer/snapshot"
)

func run(t *testing.T, ctx context.Context, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := NodesCommand()
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	err := cmd.ExecuteContext(ctx)
	return out.String(), errb.String(), err
}

// TestNodesListAndGet: `onexctl nodes list --state ACTIVE` over gRPC shows
// exactly the active rows; filters and `get` work against the real API.
func TestNodesListAndGet(t *testing.T) {
	srv := projectortest.Start(t)
	active := map[string]bool{}
	for i := range 5 {
		id := uuid.New()
		st, typ := "awaiting_ack", "compute"
		if i < 3 {
			st, typ = "active", "effect"
			active[id.String()] = true
		}
		srv.Put(t, projectortest.Node{ID: id, Sequence: 1, State: st, NodeType: typ, Name: "node-" + id.String()[:4], Capabilities: `{"postgres": true}`})
	}
	ctx := context.Background()

	out, stderr, err := run(t, ctx, "list", "--state", "ACTIVE", "--addr", srv.Addr)
	if err != nil {
		t.Fatalf("list: %v %s", err, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "NODE_ID") {
		t.Fatalf("list output:\n%s", out)
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if !active[f[0]] || f[1] != "ACTIVE" || f[2] != "effect" {
			t.Errorf("row %q", l)
		}
	}

	tests := []struct {
		args []string
		want int
	}{
		{[]string{"list", "-o", "json"}, 5},
		{[]string{"list", "-o", "json", "--type", "compute"}, 2},
		{[]string{"list", "-o", "json", "--state", "awaiting_ack"}, 2},
		{[]string{"list", "-o", "json", "--capability", "postgres"}, 5},
		{[]string{"list", "-o", "json", "--capability", "consul"}, 0},
		{[]string{"list", "-o", "json", "--limit", "2"}, 2},
	}
	for _, tt := range tests {
		out, stderr, err := run(t, ctx, append(tt.args, "--addr", srv.Addr)...)
		if err != nil {
			t.Fatalf("%v: %v %s", tt.args, err, stderr)
		}
		n := 0
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if l == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("%v: line %q: %v", tt.args, l, err)
			}
			n++
		}
		if n != tt.want {
			t.Errorf("%v: %d nodes, want %d", tt.args, n, tt.want)
		}
	}

	var one string
	for id := range active {
		one = id
		break
	}
	out, _, err = run(t, ctx, "get", one, "--addr", srv.Addr)
	if err != nil || !strings.Contains(out, one) || !strings.Contains(out, "REGISTRATION_STATE_ACTIVE") {
		t.Errorf("get: %v\n%s", err, out)
	}
	if _, stderr, err := run(t, ctx, "get", uuid.NewString(), "--addr", srv.Addr); err == nil || !strings.Contains(stderr, "NotFound") {
		t.Errorf("get of an unknown node: %v %q", err, stderr)
	}
	if _, _, err := run(t, ctx, "list", "--state", "sleeping", "--addr", srv.Addr); err == nil {
		t.Error("an unknown --state was accepted")
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNodesWatch: `onexctl nodes watch` prints a changed node within a second.
func TestNodesWatch(t *testing.T) {
	srv := projectortest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuf{}
	cmd := NodesCommand()
	cmd.SetArgs([]string{"watch", "--addr", srv.Addr, "--checkpoints"})
	cmd.SetOut(out)
	cmd.SetErr(out)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watch: %v", err)
		}
	}()
	wait := func(d time.Duration, cond func(string) bool) bool {
		deadline := time.Now().Add(d)
		for time.Now().Before(deadline) {
			if cond(out.String()) {
				return true
			}
			time.Sleep(10 * time.Millisecond)
		}
		return false
	}
	if !wait(10*time.Second, func(s string) bool { return strings.Contains(s, "resume_token") }) {
		t.Fatalf("watch did not start: %q", out.String())
	}
	time.Sleep(200 * time.Millisecond)

	id := uuid.New()
	start := time.Now()
	srv.Put(t, projectortest.Node{ID: id, Sequence: 1, State: "active"})
	if !wait(time.Second, func(s string) bool { return strings.Contains(s, id.String()) }) {
		t.Fatalf("change not printed within 1s: %q", out.String())
	}
	t.Logf("printed after %v", time.Since(start))
}

// TestSnapshotsRebuild: `onexctl snapshots rebuild` publishes one snapshot
// per registry node and reports it; a dry run publishes nothing.
func TestSnapshotsRebuild(t *testing.T) {
	brokers := testkit.KafkaBrokers(t)
	srv := projectortest.Start(t)
	topic := "onex.snapshot.oc" + testkit.Unique() + ".registration-snapshots.v1"
	compact := "compact"
	testkit.CreateTopic(t, brokers, topic, 3, map[string]*string{"cleanup.policy": &compact})
	for range 4 {
		srv.Put(t, projectortest.Node{ID: uuid.New(), Sequence: 2, State: "active"})
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--dry-run"}, `"published": 4`},
		{nil, `"published": 4`},
		{nil, `"skipped_newer": 4`},
	} {
		var out, errb bytes.Buffer
		cmd := SnapshotsCommand()
		cmd.SetArgs(append([]string{"rebuild", "--addr", srv.Addr, "--brokers", strings.Join(brokers, ","), "--topic", topic}, tt.args...))
		cmd.SetOut(&out)
		cmd.SetErr(&errb)
		if err := cmd.ExecuteContext(context.Background()); err != nil || !strings.Contains(out.String(), tt.want) {
			t.Fatalf("rebuild %v: %v %q %q, want %s", tt.args, err, out.String(), errb.String(), tt.want)
		}
	}
	got := testkit.ReadAll(t, brokers, topic, 5, 2*time.Second, true)
	if len(got) != 4 {
		t.Errorf("%d snapshots on the topic, want 4", len(got))
	}
	// As the reducer writes them: the bare model, the state in the header.
	for _, m := range got {
		if _, err := snapshot.Decode(m.Value, pipeline.SnapshotState(m.Headers)); err != nil || len(m.Headers) != 1 ||
			bytes.Contains(m.Value, []byte(`"reducer_state"`)) {
			t.Errorf("snapshot %s (%d headers): %v", m.Value, len(m.Headers), err)
		}
	}
}

// TestNodesListDeclaredFilters: `nodes list --tag/--protocol/--intent-type`
// (each repeatable) keep the nodes that carry every value, and the table
// shows each node's tags.
func TestNodesListDeclaredFilters(t *testing.T) {
	srv := projectortest.Start(t)
	search, plain := uuid.New(), uuid.New()
	srv.Put(t, projectortest.Node{ID: search, Sequence: 1, State: "active",
		CapabilityTags: []string{"mcp-enabled", "mcp-tool:search", "node-type:effect"}, Protocols: []string{"grpc", "http"},
		IntentTypes: []string{"search.query"}, ContractType: "effect"})
	srv.Put(t, projectortest.Node{ID: plain, Sequence: 1, State: "active",
		CapabilityTags: []string{"node-type:effect"}, Protocols: []string{"http"}})
	ctx := context.Background()
	for _, tt := range []struct {
		args []string
		want []uuid.UUID
	}{
		{[]string{"--tag", "node-type:effect"}, []uuid.UUID{search, plain}},
		{[]string{"--tag", "mcp-enabled", "--tag", "mcp-tool:search"}, []uuid.UUID{search}},
		{[]string{"--tag", "mcp-enabled", "--tag", "mcp-tool:other"}, nil},
		{[]string{"--protocol", "http"}, []uuid.UUID{search, plain}},
		{[]string{"--protocol", "http", "--protocol", "grpc"}, []uuid.UUID{search}},
		{[]string{"--intent-type", "search.query"}, []uuid.UUID{search}},
		{[]string{"--contract-type", "effect", "--tag", "node-type:effect"}, []uuid.UUID{search}},
	} {
		out, stderr, err := run(t, ctx, append([]string{"list", "--addr", srv.Addr}, tt.args...)...)
		if err != nil {
			t.Fatalf("%v: %v %s", tt.args, err, stderr)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if !strings.HasSuffix(lines[0], "TAGS") || len(lines)-1 != len(tt.want) {
			t.Errorf("%v:\n%s", tt.args, out)
			continue
		}
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			switch f[0] {
			case search.String():
				if f[len(f)-1] != "mcp-enabled,mcp-tool:search,node-type:effect" {
					t.Errorf("%v: tags of %s: %q", tt.args, f[0], f[len(f)-1])
				}
			case plain.String():
				if len(tt.want) != 2 || f[len(f)-1] != "node-type:effect" {
					t.Errorf("%v: row %q", tt.args, l)
				}
			default:
				t.Errorf("%v: row %q", tt.args, l)
			}
		}
	}
	if _, stderr, err := run(t, ctx, "list", "--addr", srv.Addr, "--tag", ""); err == nil || !strings.Contains(stderr, "capability_tags[0]: empty value") {
		t.Errorf("an empty --tag: %v %q", err, stderr)
	}
}
