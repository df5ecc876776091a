package api_test

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	registryv1 "github.com/omninode/onex-fleet/proto/onex/registry/v1"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/store"
)

// ListNodes over gRPC with the declared-field filters: all-of lists that
// combine with the other filters, nodes that show their tags and topics,
// page tokens that hold only for the filters they were issued for, and
// INVALID_ARGUMENT naming the field for a filter the API does not take.
func TestListNodesDeclaredFilters(t *testing.T) {
	e := serve(t, time.Second, false)
	ctx := context.Background()
	effect := "effect"
	tagged := map[string]bool{}
	var writes []store.Write
	for i := range 9 {
		id := uuid.New()
		w := store.Write{Kind: store.Upsert, NodeID: id, Sequence: 1, State: "active", UpdatedAt: t0, NodeType: "effect",
			RegisteredAt: t0, AttemptID: uuid.New(), NodeVersion: "1.0.0", Capabilities: []byte(`{}`),
			CapabilityTags: []string{"node-type:effect"}, Protocols: []string{"http"}}
		if i < 5 {
			w.CapabilityTags = append(w.CapabilityTags, "mcp-enabled", "mcp-tool:search")
			w.Protocols = append(w.Protocols, "grpc")
			w.IntentTypes = []string{"search.query"}
			w.ContractType = &effect
			w.SubscribeTopics = []string{"onex.cmd.platform.search.v1"}
			w.PublishTopics = []string{"onex.evt.platform.found.v1", "onex.evt.platform.missed.v1"}
			tagged[id.String()] = true
		}
		if i == 0 {
			w.State = "awaiting_ack"
		}
		writes = append(writes, w)
	}
	if _, err := e.store.Apply(ctx, writes); err != nil {
		t.Fatal(err)
	}

	list := func(req *registryv1.ListNodesRequest) ([]*registryv1.Node, error) {
		var out []*registryv1.Node
		for {
			resp, err := e.client.ListNodes(ctx, req)
			if err != nil {
				return out, err
			}
			out = append(out, resp.GetNodes()...)
			if resp.GetNextPageToken() == "" {
				return out, nil
			}
			req.PageToken = resp.GetNextPageToken()
		}
	}
	active := registryv1.RegistrationState_REGISTRATION_STATE_ACTIVE
	for _, tt := range []struct {
		name string
		req  *registryv1.ListNodesRequest
		want int
	}{
		{"one tag", &registryv1.ListNodesRequest{CapabilityTags: []string{"mcp-enabled"}}, 5},
		{"two tags", &registryv1.ListNodesRequest{CapabilityTags: []string{"mcp-tool:search", "mcp-enabled"}}, 5},
		{"tags no node has together", &registryv1.ListNodesRequest{CapabilityTags: []string{"mcp-enabled", "node-type:compute"}}, 0},
		{"tag and state", &registryv1.ListNodesRequest{CapabilityTags: []string{"mcp-enabled"}, State: active}, 4},
		{"protocols", &registryv1.ListNodesRequest{Protocols: []string{"grpc", "http"}}, 5},
		{"one protocol", &registryv1.ListNodesRequest{Protocols: []string{"http"}}, 9},
		{"intent type", &registryv1.ListNodesRequest{IntentTypes: []string{"search.query"}}, 5},
		{"contract type", &registryv1.ListNodesRequest{ContractType: "effect"}, 5},
		{"values trimmed", &registryv1.ListNodesRequest{CapabilityTags: []string{" mcp-enabled "}}, 5},
		{"paged", &registryv1.ListNodesRequest{CapabilityTags: []string{"node-type:effect"}, PageSize: 2}, 9},
	} {
		nodes, err := list(tt.req)
		if err != nil || len(nodes) != tt.want {
			t.Errorf("%s: %d nodes (%v), want %d", tt.name, len(nodes), err, tt.want)
		}
	}

	nodes, err := list(&registryv1.ListNodesRequest{IntentTypes: []string{"search.query"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if !tagged[n.GetNodeId()] || !slices.Equal(n.GetCapabilityTags(), []string{"node-type:effect", "mcp-enabled", "mcp-tool:search"}) ||
			!slices.Equal(n.GetSubscribeTopics(), []string{"onex.cmd.platform.search.v1"}) ||
			!slices.Equal(n.GetPublishTopics(), []string{"onex.evt.platform.found.v1", "onex.evt.platform.missed.v1"}) ||
			n.GetContractType() != "effect" || !slices.Equal(n.GetProtocols(), []string{"http", "grpc"}) {
			t.Errorf("node %v", n)
		}
	}

	// A token holds for the filters of its page, in any order of the list
	// values, and for no other.
	first, err := e.client.ListNodes(ctx, &registryv1.ListNodesRequest{CapabilityTags: []string{"mcp-enabled", "node-type:effect"}, PageSize: 2})
	if err != nil || first.GetNextPageToken() == "" {
		t.Fatalf("first page: %v %v", first, err)
	}
	tok := first.GetNextPageToken()
	if _, err := e.client.ListNodes(ctx, &registryv1.ListNodesRequest{CapabilityTags: []string{"node-type:effect", "mcp-enabled", "mcp-enabled"}, PageToken: tok}); err != nil {
		t.Errorf("token with the same filters reordered: %v", err)
	}
	for _, other := range []*registryv1.ListNodesRequest{
		{CapabilityTags: []string{"mcp-enabled"}, PageToken: tok},
		{CapabilityTags: []string{"mcp-enabled", "node-type:effect"}, State: active, PageToken: tok},
		{PageToken: tok},
	} {
		_, err := e.client.ListNodes(ctx, other)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "other filters") {
			t.Errorf("token with other filters %v: %v", other, err)
		}
	}
	// A token of the first form (before filters were bound) still pages.
	legacy := base64.RawURLEncoding.EncodeToString([]byte("p1:" + uuid.Nil.String()))
	if resp, err := e.client.ListNodes(ctx, &registryv1.ListNodesRequest{CapabilityTags: []string{"mcp-enabled"}, PageToken: legacy}); err != nil || len(resp.GetNodes()) != 5 {
		t.Errorf("legacy token: %v %v", resp, err)
	}

	many := make([]string, 33)
	for i := range many {
		many[i] = "tag"
	}
	for _, tt := range []struct {
		name string
		req  *registryv1.ListNodesRequest
		msg  string
	}{
		{"empty tag", &registryv1.ListNodesRequest{CapabilityTags: []string{"mcp-enabled", ""}}, "capability_tags[1]: empty value"},
		{"blank protocol", &registryv1.ListNodesRequest{Protocols: []string{"  "}}, "protocols[0]: empty value"},
		{"too many intent types", &registryv1.ListNodesRequest{IntentTypes: many}, "intent_types: at most 32 values, got 33"},
		{"long tag", &registryv1.ListNodesRequest{CapabilityTags: []string{strings.Repeat("x", 257)}}, "capability_tags[0]: longer than 256 characters"},
		{"unknown contract type", &registryv1.ListNodesRequest{ContractType: "gateway"}, `contract_type: "gateway" is not one of`},
		{"long capability", &registryv1.ListNodesRequest{Capability: strings.Repeat("x", 257)}, "capability: longer than 256"},
	} {
		_, err := e.client.ListNodes(ctx, tt.req)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tt.msg) {
			t.Errorf("%s: %v, want INVALID_ARGUMENT with %q", tt.name, err, tt.msg)
		}
	}
}
