package effect

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
)

func ptr[T any](v T) *T { return &v }

func payload(mut func(p *pipeline.ConsulRegisterPayload)) *pipeline.ConsulRegisterPayload {
	node := uuid.MustParse("6f1c1f43-8a0e-4c55-9d7f-0c4a3c2b1a10")
	p := &pipeline.ConsulRegisterPayload{
		IntentType: pipeline.ConsulRegister, NodeID: ptr(node.String()),
		ServiceID: "onex-effect-" + node.String(), ServiceName: "onex-effect",
		Tags: []string{"onex", "node-type:effect"}, Address: ptr("10.1.2.3"), Port: ptr(8080),
		HealthCheck: &pipeline.HealthCheck{HTTP: "http://10.1.2.3:8080/health", Interval: "10s", Timeout: "5s", DeregisterCriticalServiceAfter: "10m"},
	}
	if mut != nil {
		mut(p)
	}
	return p
}

var node = uuid.MustParse("6f1c1f43-8a0e-4c55-9d7f-0c4a3c2b1a10")

func TestBuild(t *testing.T) {
	tests := []struct {
		name      string
		p         *pipeline.ConsulRegisterPayload
		wantField string // content error naming this field; "" = ok
		check     func(t *testing.T, d *Desired)
	}{
		{name: "full payload", p: payload(nil), check: func(t *testing.T, d *Desired) {
			r := d.Reg
			if r.ID != "onex-effect-"+node.String() || r.Name != "onex-effect" || r.Address != "10.1.2.3" || r.Port != 8080 {
				t.Fatalf("identity: %+v", r)
			}
			want := map[string]string{MetaNodeID: node.String(), MetaNodeType: "effect", MetaSequence: "7", MetaEnv: "dev"}
			for k, v := range want {
				if r.Meta[k] != v {
					t.Errorf("meta %s = %q, want %q", k, r.Meta[k], v)
				}
			}
			if r.Meta[MetaCheck] == "" {
				t.Error("no check digest")
			}
			c := r.Check
			if c == nil || c.HTTP != "http://10.1.2.3:8080/health" || c.Interval != "10s" || c.Timeout != "5s" ||
				c.DeregisterCriticalServiceAfter != "10m0s" || c.CheckID != "service:"+r.ID {
				t.Fatalf("check: %+v", c)
			}
		}},
		{name: "check defaults", p: payload(func(p *pipeline.ConsulRegisterPayload) {
			p.HealthCheck = &pipeline.HealthCheck{HTTP: "http://h/health"}
		}), check: func(t *testing.T, d *Desired) {
			c := d.Reg.Check
			if c.Interval != "10s" || c.Timeout != "5s" || c.DeregisterCriticalServiceAfter != "10m0s" {
				t.Fatalf("defaults: %+v", c)
			}
		}},
		{name: "no health endpoint, no address", p: payload(func(p *pipeline.ConsulRegisterPayload) {
			p.HealthCheck, p.Address, p.Port = nil, nil, nil
		}), check: func(t *testing.T, d *Desired) {
			if d.Reg.Check != nil || d.Reg.Address != "" || d.Reg.Port != 0 || d.Reg.Meta[MetaCheck] != "" {
				t.Fatalf("unexpected: %+v", d.Reg)
			}
		}},
		{name: "node type from name without tag", p: payload(func(p *pipeline.ConsulRegisterPayload) {
			p.Tags = []string{"onex"}
			p.ServiceName = "onex-compute"
		}), check: func(t *testing.T, d *Desired) {
			if d.Reg.Meta[MetaNodeType] != "compute" {
				t.Fatalf("node type %q", d.Reg.Meta[MetaNodeType])
			}
		}},
		{name: "missing service id", p: payload(func(p *pipeline.ConsulRegisterPayload) { p.ServiceID = " " }), wantField: "payload.service_id"},
		{name: "missing service name", p: payload(func(p *pipeline.ConsulRegisterPayload) { p.ServiceName = "" }), wantField: "payload.service_name"},
		{name: "port out of range", p: payload(func(p *pipeline.ConsulRegisterPayload) { p.Port = ptr(70000) }), wantField: "payload.port"},
		{name: "bad interval", p: payload(func(p *pipeline.ConsulRegisterPayload) { p.HealthCheck.Interval = "often" }), wantField: "payload.health_check.interval"},
		{name: "negative timeout", p: payload(func(p *pipeline.ConsulRegisterPayload) { p.HealthCheck.Timeout = "-1s" }), wantField: "payload.health_check.timeout"},
		{name: "nil payload", p: nil, wantField: "payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Build(node, 7, "dev", tt.p)
			if tt.wantField != "" {
				if err == nil || !infraerr.IsContent(err) || !strings.Contains(err.Error(), tt.wantField) {
					t.Fatalf("err = %v, want content error about %s", err, tt.wantField)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, d)
		})
	}
}

// agentView turns a registration into what the agent reports back.
func agentView(r *api.AgentServiceRegistration) (*api.AgentService, []*api.AgentCheck) {
	svc := &api.AgentService{ID: r.ID, Service: r.Name, Tags: append([]string(nil), r.Tags...), Address: r.Address, Port: r.Port, Meta: map[string]string{}}
	for k, v := range r.Meta {
		svc.Meta[k] = v
	}
	var checks []*api.AgentCheck
	if r.Check != nil {
		checks = append(checks, &api.AgentCheck{CheckID: r.Check.CheckID, ServiceID: r.ID, Type: "http"})
	}
	return svc, checks
}

func TestSame(t *testing.T) {
	want, err := Build(node, 7, "dev", payload(nil))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		mut  func(s *api.AgentService, c *[]*api.AgentCheck)
		same bool
	}{
		{name: "identical", same: true},
		{name: "only the sequence differs", mut: func(s *api.AgentService, _ *[]*api.AgentCheck) { s.Meta[MetaSequence] = "3" }, same: true},
		{name: "port differs", mut: func(s *api.AgentService, _ *[]*api.AgentCheck) { s.Port = 9090 }},
		{name: "address differs", mut: func(s *api.AgentService, _ *[]*api.AgentCheck) { s.Address = "10.9.9.9" }},
		{name: "tag missing", mut: func(s *api.AgentService, _ *[]*api.AgentCheck) { s.Tags = s.Tags[:1] }},
		{name: "tag order differs", mut: func(s *api.AgentService, _ *[]*api.AgentCheck) { s.Tags[0], s.Tags[1] = s.Tags[1], s.Tags[0] }},
		{name: "name differs", mut: func(s *api.AgentService, _ *[]*api.AgentCheck) { s.Service = "onex-compute" }},
		{name: "other environment", mut: func(s *api.AgentService, _ *[]*api.AgentCheck) { s.Meta[MetaEnv] = "prod" }},
		{name: "check definition changed", mut: func(s *api.AgentService, _ *[]*api.AgentCheck) { s.Meta[MetaCheck] = "0000" }},
		{name: "extra meta", mut: func(s *api.AgentService, _ *[]*api.AgentCheck) { s.Meta["x"] = "y" }},
		{name: "check deleted by hand", mut: func(_ *api.AgentService, c *[]*api.AgentCheck) { *c = nil }},
		{name: "extra check", mut: func(_ *api.AgentService, c *[]*api.AgentCheck) {
			*c = append(*c, &api.AgentCheck{CheckID: "other", Type: "ttl"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, checks := agentView(want.Reg)
			if tt.mut != nil {
				tt.mut(svc, &checks)
			}
			if got := Same(svc, checks, want); got != tt.same {
				t.Fatalf("Same = %v, want %v", got, tt.same)
			}
		})
	}
	if Same(nil, nil, want) {
		t.Fatal("a missing service is not the same")
	}
}

func TestSequenceAndNode(t *testing.T) {
	tests := []struct {
		meta   map[string]string
		seq    int64
		seqOK  bool
		node   uuid.UUID
		nodeOK bool
	}{
		{meta: map[string]string{MetaSequence: "42", MetaNodeID: node.String()}, seq: 42, seqOK: true, node: node, nodeOK: true},
		{meta: map[string]string{}, seq: 0},
		{meta: map[string]string{MetaSequence: "x", MetaNodeID: "nope"}},
	}
	for _, tt := range tests {
		svc := &api.AgentService{Meta: tt.meta}
		seq, ok := Sequence(svc)
		if seq != tt.seq || ok != tt.seqOK {
			t.Errorf("Sequence(%v) = %d,%v", tt.meta, seq, ok)
		}
		n, ok := NodeOf(svc)
		if n != tt.node || ok != tt.nodeOK {
			t.Errorf("NodeOf(%v) = %v,%v", tt.meta, n, ok)
		}
	}
}
