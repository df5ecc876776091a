package effect

import (
	"context"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"

	"github.com/omninode/onex-fleet/services/consul-effect/internal/backend"
)

// AgentAPI is the part of the Consul client the agent mode uses.
type AgentAPI interface {
	Service(ctx context.Context, id string) (*api.AgentService, []*api.AgentCheck, error)
	Services(ctx context.Context, tag string) (map[string]*api.AgentService, map[string][]*api.AgentCheck, error)
	Register(ctx context.Context, reg *api.AgentServiceRegistration) error
	Deregister(ctx context.Context, id string) error
}

var _ AgentAPI = (*backend.Client)(nil)

// AgentStore keeps the fleet's services as services of the one agent the
// effect talks to (ModeAgent), each with the HTTP check on the node's
// health URL that the agent runs. The agent owns every registered service
// and re-syncs them to the catalog itself; its cost per registration grows
// with the services it holds (docs/consul-effect.md, "Why catalog").
type AgentStore struct {
	api AgentAPI
}

var _ Store = (*AgentStore)(nil)

// NewAgentStore returns the agent mode's store.
func NewAgentStore(a AgentAPI) *AgentStore { return &AgentStore{api: a} }

// Mode is ModeAgent.
func (s *AgentStore) Mode() Mode { return ModeAgent }

// Get reads the agent's service and its checks; node is not needed (the
// agent holds each service id once).
func (s *AgentStore) Get(ctx context.Context, _ uuid.UUID, serviceID string) (*Current, error) {
	svc, checks, err := s.api.Service(ctx, serviceID)
	if err != nil || svc == nil {
		return nil, err
	}
	return agentCurrent(svc, checks), nil
}

// Put registers d.Reg with replace-existing-checks: checks of the service
// that d does not name are removed with the write.
func (s *AgentStore) Put(ctx context.Context, _ *Current, d *Desired) error {
	return s.api.Register(ctx, d.Reg)
}

// Delete deregisters the service from the agent.
func (s *AgentStore) Delete(ctx context.Context, cur *Current) error {
	return s.api.Deregister(ctx, cur.Service.ID)
}

// List returns the agent's onex-tagged services with their checks.
func (s *AgentStore) List(ctx context.Context) ([]*Current, error) {
	svcs, checks, err := s.api.Services(ctx, Tag)
	if err != nil {
		return nil, err
	}
	out := make([]*Current, 0, len(svcs))
	for id, svc := range svcs {
		out = append(out, agentCurrent(svc, checks[id]))
	}
	return out, nil
}

// Same: the service as asked and exactly the desired check, none when d
// has none. The agent does not report a check's URL or durations back, so
// the check's definition is compared through the onex-check meta digest;
// its status is the agent's own finding and never a difference.
func (s *AgentStore) Same(cur *Current, d *Desired) bool {
	if cur == nil || !sameService(cur.Service, d) {
		return false
	}
	if d.Reg.Check == nil {
		return len(cur.Checks) == 0
	}
	return len(cur.Checks) == 1 && cur.Checks[0].ID == d.Reg.Check.CheckID && cur.Checks[0].Type == "http"
}

// Holds is always true: the agent holds each service id once.
func (s *AgentStore) Holds(*Current, uuid.UUID) bool { return true }

func agentCurrent(svc *api.AgentService, checks []*api.AgentCheck) *Current {
	c := &Current{Service: svc}
	for _, ch := range checks {
		c.Checks = append(c.Checks, Check{ID: ch.CheckID, Name: ch.Name, Type: ch.Type, Status: ch.Status, Output: ch.Output})
	}
	return c
}
