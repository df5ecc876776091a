package effect

import (
	"maps"
	"slices"
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
		{name: "health from the payload", p: payload(func(p *pipeline.ConsulRegisterPayload) { p.Health = pipeline.HealthWarning }),
			check: func(t *testing.T, d *Desired) {
				if d.Health != api.HealthWarning {
					t.Fatalf("health %q", d.Health)
				}
			}},
		{name: "no health from an older reducer is passing", p: payload(nil), check: func(t *testing.T, d *Desired) {
			if d.Health != api.HealthPassing {
				t.Fatalf("health %q", d.Health)
			}
		}},
		{name: "unknown health", p: payload(func(p *pipeline.ConsulRegisterPayload) { p.Health = "maintenance" }), wantField: "payload.health"},
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
func agentView(d *Desired) *Current {
	r := d.Reg
	svc := &api.AgentService{ID: r.ID, Service: r.Name, Tags: append([]string(nil), r.Tags...), Address: r.Address, Port: r.Port, Meta: map[string]string{}}
	for k, v := range r.Meta {
		svc.Meta[k] = v
	}
	c := &Current{Service: svc}
	if r.Check != nil {
		c.Checks = append(c.Checks, Check{ID: r.Check.CheckID, Type: "http", Status: api.HealthCritical})
	}
	return c
}

// catalogView turns a registration into what the catalog reports back of
// the catalog mode's write.
func catalogView(d *Desired) *Current {
	reg := registration(d)
	n := &api.Node{Node: reg.Node, Address: reg.Address, Meta: maps.Clone(reg.NodeMeta)}
	svc := *reg.Service
	svc.Tags, svc.Meta = slices.Clone(svc.Tags), maps.Clone(svc.Meta)
	checks := api.HealthChecks{}
	for _, ch := range reg.Checks {
		c := *ch
		checks = append(checks, &c)
	}
	return catalogCurrent(n, &svc, checks)
}

// TestSame: what each mode takes for "already registered as asked".
func TestSame(t *testing.T) {
	want, err := Build(node, 7, "dev", payload(nil))
	if err != nil {
		t.Fatal(err)
	}
	warning, err := Build(node, 7, "dev", payload(func(p *pipeline.ConsulRegisterPayload) { p.Health = pipeline.HealthWarning }))
	if err != nil {
		t.Fatal(err)
	}
	stores := map[Mode]struct {
		store Store
		view  func(*Desired) *Current
	}{
		ModeAgent:   {NewAgentStore(nil), agentView},
		ModeCatalog: {NewCatalogStore(nil, "dev", nil), catalogView},
	}
	tests := []struct {
		name string
		mut  func(c *Current)
		d    *Desired // default want
		same map[Mode]bool
	}{
		{name: "identical", same: map[Mode]bool{ModeAgent: true, ModeCatalog: true}},
		{name: "only the sequence differs", mut: func(c *Current) { c.Service.Meta[MetaSequence] = "3" }, same: map[Mode]bool{ModeAgent: true, ModeCatalog: true}},
		{name: "port differs", mut: func(c *Current) { c.Service.Port = 9090 }},
		{name: "address differs", mut: func(c *Current) { c.Service.Address = "10.9.9.9" }},
		{name: "tag missing", mut: func(c *Current) { c.Service.Tags = c.Service.Tags[:1] }},
		{name: "tag order differs", mut: func(c *Current) { c.Service.Tags[0], c.Service.Tags[1] = c.Service.Tags[1], c.Service.Tags[0] }},
		{name: "name differs", mut: func(c *Current) { c.Service.Service = "onex-compute" }},
		{name: "other environment", mut: func(c *Current) { c.Service.Meta[MetaEnv] = "prod" }},
		{name: "check definition changed", mut: func(c *Current) { c.Service.Meta[MetaCheck] = "0000" }},
		{name: "extra meta", mut: func(c *Current) { c.Service.Meta["x"] = "y" }},
		{name: "check deleted by hand", mut: func(c *Current) { c.Checks = nil }},
		{name: "extra check", mut: func(c *Current) { c.Checks = append(c.Checks, Check{ID: "other", Type: "ttl"}) }},
		// The agent runs its check: the status is its finding. In catalog
		// mode the status is the fleet's word.
		{name: "check status differs", mut: func(c *Current) { c.Checks[0].Status = api.HealthWarning }, same: map[Mode]bool{ModeAgent: true}},
		{name: "health asked differs", d: warning, same: map[Mode]bool{ModeAgent: true}},
		{name: "check output differs", mut: func(c *Current) { c.Checks[0].Output = "by hand" }, same: map[Mode]bool{ModeAgent: true}},
		{name: "node address differs", mut: func(c *Current) { c.NodeAddress = "10.9.9.9" }, same: map[Mode]bool{ModeAgent: true}},
		{name: "node meta differs", mut: func(c *Current) { c.NodeMeta = map[string]string{"external-node": "true"} }, same: map[Mode]bool{ModeAgent: true}},
		{name: "not an external node", mut: func(c *Current) { c.External = false }, same: map[Mode]bool{ModeAgent: true}},
		{name: "on another catalog node", mut: func(c *Current) { c.Node = "onex-node-other" }, same: map[Mode]bool{ModeAgent: true}},
	}
	for _, tt := range tests {
		for mode, st := range stores {
			t.Run(string(mode)+"/"+tt.name, func(t *testing.T) {
				cur := st.view(want)
				if tt.mut != nil {
					tt.mut(cur)
				}
				d := want
				if tt.d != nil {
					d = tt.d
				}
				if got := st.store.Same(cur, d); got != tt.same[mode] {
					t.Fatalf("Same = %v, want %v", got, tt.same[mode])
				}
			})
		}
	}
	for mode, st := range stores {
		if st.store.Same(nil, want) {
			t.Fatalf("%s: a missing service is not the same", mode)
		}
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

// A service's sequence is the newer of its own meta's and, in catalog
// mode, its catalog node's (a write that leaves the service as it is
// carries the sequence on the node).
func TestCurrentSequence(t *testing.T) {
	tests := []struct {
		name      string
		svc, node map[string]string
		want      int64
		ok        bool
	}{
		{name: "service only (agent mode)", svc: map[string]string{MetaSequence: "7"}, want: 7, ok: true},
		{name: "node newer", svc: map[string]string{MetaSequence: "7"}, node: map[string]string{MetaSequence: "9"}, want: 9, ok: true},
		{name: "service newer", svc: map[string]string{MetaSequence: "12"}, node: map[string]string{MetaSequence: "9"}, want: 12, ok: true},
		{name: "node only", svc: map[string]string{}, node: map[string]string{MetaSequence: "3"}, want: 3, ok: true},
		{name: "neither", svc: map[string]string{}, node: map[string]string{MetaSequence: "x"}},
	}
	for _, tt := range tests {
		c := &Current{Service: &api.AgentService{Meta: tt.svc}, NodeMeta: tt.node}
		if got, ok := c.Sequence(); got != tt.want || ok != tt.ok {
			t.Errorf("%s: %d, %v; want %d, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}
