package effect

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/pipeline"
)

// Service meta keys the effect writes on every service it registers.
const (
	MetaNodeID   = "onex-node-id"
	MetaNodeType = "onex-node-type"
	// MetaSequence is the reducer sequence of the intent (or snapshot) that
	// last wrote the service: the sequence guard.
	MetaSequence = "onex-sequence"
	// MetaEnv scopes anti-entropy: a fleet removes orphans of its own
	// environment (and unowned strays) only, never another environment's.
	MetaEnv = "onex-env"
	// MetaCheck is a digest of the health check definition, because the
	// agent does not report a check's HTTP URL and durations back.
	MetaCheck = "onex-check"
)

// Tag is the tag every ONEX service carries (spec 4.8); anti-entropy looks
// only at services that have it.
const Tag = "onex"

// Health check defaults, used when the intent's health_check leaves a field
// empty (docs/consul-effect.md explains the choice).
const (
	DefaultCheckInterval   = 10 * time.Second
	DefaultCheckTimeout    = 5 * time.Second
	DefaultDeregisterAfter = 10 * time.Minute
)

// Desired is the service a consul.register payload asks for, in the form the
// agent API takes (the catalog mode derives its registration from it), plus
// the fields the comparison needs.
type Desired struct {
	NodeID   uuid.UUID
	Sequence int64
	// Reg is the service; its Check, the HTTP check on the node's health
	// URL, is registered in agent mode only.
	Reg *api.AgentServiceRegistration
	// Health is the status of the liveness check the catalog mode writes
	// (api.HealthPassing, HealthWarning or HealthCritical): the payload's,
	// passing when it has none.
	Health string
}

// Build derives the registration for node nodeID at sequence seq from a
// consul.register payload: the payload's service id, name, tags, address
// and port; meta onex-node-id, onex-node-type, onex-sequence, onex-env and
// onex-check; an HTTP check on the node's health URL when it gave one; and
// the payload's health. A payload that cannot be registered is a content
// error.
func Build(nodeID uuid.UUID, seq int64, env string, p *pipeline.ConsulRegisterPayload) (*Desired, error) {
	if p == nil {
		return nil, infraerr.Content("payload", "missing")
	}
	if strings.TrimSpace(p.ServiceID) == "" {
		return nil, infraerr.Content("payload.service_id", "missing")
	}
	if strings.TrimSpace(p.ServiceName) == "" {
		return nil, infraerr.Content("payload.service_name", "missing")
	}
	if p.Port != nil && (*p.Port < 0 || *p.Port > 65535) {
		return nil, infraerr.Content("payload.port", "out of range")
	}
	health := p.Health
	switch health {
	case "":
		// A reducer that predates the field registers only nodes it wants
		// discovered.
		health = pipeline.HealthPassing
	case pipeline.HealthPassing, pipeline.HealthWarning, pipeline.HealthCritical:
	default:
		return nil, infraerr.Content("payload.health", fmt.Sprintf("%q is not a Consul check status", p.Health))
	}
	reg := &api.AgentServiceRegistration{
		ID: p.ServiceID, Name: p.ServiceName, Tags: append([]string{}, p.Tags...),
		Meta: map[string]string{
			MetaNodeID:   nodeID.String(),
			MetaNodeType: nodeType(p),
			MetaSequence: strconv.FormatInt(seq, 10),
		},
	}
	if env != "" {
		reg.Meta[MetaEnv] = env
	}
	if p.Address != nil {
		reg.Address = *p.Address
	}
	if p.Port != nil {
		reg.Port = *p.Port
	}
	if hc := p.HealthCheck; hc != nil && hc.HTTP != "" {
		interval, err := duration(hc.Interval, DefaultCheckInterval, "interval")
		if err != nil {
			return nil, err
		}
		timeout, err := duration(hc.Timeout, DefaultCheckTimeout, "timeout")
		if err != nil {
			return nil, err
		}
		dereg, err := duration(hc.DeregisterCriticalServiceAfter, DefaultDeregisterAfter, "deregister_critical_service_after")
		if err != nil {
			return nil, err
		}
		reg.Check = &api.AgentServiceCheck{
			CheckID: CheckID(p.ServiceID), Name: "ONEX node health", HTTP: hc.HTTP, Method: "GET",
			Interval: interval.String(), Timeout: timeout.String(), DeregisterCriticalServiceAfter: dereg.String(),
		}
		sum := sha256.Sum256([]byte(strings.Join([]string{"http", hc.HTTP, reg.Check.Interval, reg.Check.Timeout, reg.Check.DeregisterCriticalServiceAfter}, "\x00")))
		reg.Meta[MetaCheck] = hex.EncodeToString(sum[:8])
	}
	return &Desired{NodeID: nodeID, Sequence: seq, Reg: reg, Health: health}, nil
}

// CheckID is the id of a service's health check (Consul's own default for
// a check registered with the service).
func CheckID(serviceID string) string { return "service:" + serviceID }

func duration(s string, def time.Duration, field string) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, infraerr.Content("payload.health_check."+field, fmt.Sprintf("not a positive duration: %q", s))
	}
	return d, nil
}

// nodeType reads the node type from the "node-type:" tag, else from the
// service name "onex-{node_type}" (spec 4.8).
func nodeType(p *pipeline.ConsulRegisterPayload) string {
	for _, t := range p.Tags {
		if v, ok := strings.CutPrefix(t, "node-type:"); ok {
			return v
		}
	}
	return strings.TrimPrefix(p.ServiceName, "onex-")
}

// Sequence reads a service's onex-sequence meta; ok is false when it has
// none (a service this effect did not write).
func Sequence(svc *api.AgentService) (seq int64, ok bool) {
	if svc == nil {
		return 0, false
	}
	v, err := strconv.ParseInt(svc.Meta[MetaSequence], 10, 64)
	return v, err == nil
}

// NodeOf reads a service's onex-node-id meta.
func NodeOf(svc *api.AgentService) (uuid.UUID, bool) {
	id, err := uuid.Parse(svc.Meta[MetaNodeID])
	return id, err == nil
}

// sameService reports whether cur is the service d asks for, the sequence
// meta aside: same id, name, tags (in order), address, port and meta. The
// checks are each mode's to compare.
func sameService(cur *api.AgentService, d *Desired) bool {
	if cur == nil {
		return false
	}
	r := d.Reg
	if cur.ID != r.ID || cur.Service != r.Name || cur.Address != r.Address || cur.Port != r.Port ||
		!slices.Equal(nonNil(cur.Tags), nonNil(r.Tags)) {
		return false
	}
	return maps.Equal(withoutSequence(cur.Meta), withoutSequence(r.Meta))
}

// withoutSequence is meta without onex-sequence, never nil.
func withoutSequence(m map[string]string) map[string]string {
	c := maps.Clone(m)
	delete(c, MetaSequence)
	if c == nil {
		c = map[string]string{}
	}
	return c
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
