package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/pkg/bus"
	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/node"
	"github.com/omninode/onex-fleet/pkg/registration"
	"github.com/omninode/onex-fleet/pkg/retry"
)

// Self describes a fleet service as an ONEX node: the fleet's own services
// register themselves through the same flow as every other node (spec 10.5
// suite 8), so the registry lists the registry.
type Self struct {
	Type registration.NodeKind
	// Name is the node (contract) name, e.g. node_registration_orchestrator.
	Name         string
	Version      envelope.SemVer
	Role         string
	Capabilities registration.NodeCapabilities
	// Listeners are endpoints beyond health, readiness, metrics and api
	// (derived from the health server's address): name → scheme and listen
	// address, e.g. "grpc" → {"grpc", ":8086"}. A listen address without a
	// host, or on 0.0.0.0/::, is advertised on the advertise host.
	Listeners map[string]Listener
}

// Listener is a scheme and a listen address.
type Listener struct{ Scheme, Addr string }

// selfNamespace scopes the ids of the fleet's own nodes.
var selfNamespace = uuid.MustParse("0b5e7a3c-9d2f-5c41-8e6a-7f3b2d1c0e9a")

// Environment variables of self-registration.
const (
	// EnvSelfRegistration set to false turns self-registration off.
	EnvSelfRegistration = "ONEX_SELF_REGISTRATION"
	// EnvAdvertiseHost is the host other parties reach this instance at
	// (default: POD_IP, then 127.0.0.1).
	EnvAdvertiseHost = "ONEX_ADVERTISE_HOST"
	// EnvNodeInstance names this instance (default: POD_NAME, then the
	// hostname); with the environment and the service it makes the node id,
	// so a restarted instance is the same node.
	EnvNodeInstance = "ONEX_NODE_INSTANCE"
	// EnvNodeHeartbeat is the self-registered node's heartbeat interval
	// (Go duration, default 30s).
	EnvNodeHeartbeat = "ONEX_NODE_HEARTBEAT_INTERVAL"
)

// SelfIdentity builds the node identity of this instance from self and
// the environment (see the Env* constants). lookup is os.LookupEnv in
// production.
func (s *Service) SelfIdentity(self Self, lookup func(string) (string, bool)) (node.Identity, error) {
	get := func(k string) string {
		v, _ := lookup(k)
		return strings.TrimSpace(v)
	}
	host := get(EnvAdvertiseHost)
	if host == "" {
		host = get("POD_IP")
	}
	if host == "" {
		host = "127.0.0.1"
	}
	_, port, err := net.SplitHostPort(s.Config.HTTPAddr)
	if err != nil {
		return node.Identity{}, fmt.Errorf("self-registration: health address %q: %w", s.Config.HTTPAddr, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 {
		return node.Identity{}, fmt.Errorf("self-registration: health address %q has no fixed port", s.Config.HTTPAddr)
	}
	instance := get(EnvNodeInstance)
	if instance == "" {
		instance = get("POD_NAME")
	}
	if instance == "" {
		h, _ := os.Hostname()
		// Two local processes of one service share a hostname; the port
		// tells them apart.
		instance = h + ":" + port
	}
	base := "http://" + net.JoinHostPort(host, port)
	endpoints := map[string]string{
		"health":    base + "/healthz",
		"liveness":  base + "/healthz",
		"readiness": base + "/readyz",
		"metrics":   base + "/metrics",
		"api":       base + "/",
	}
	for name, l := range self.Listeners {
		lh, lp, err := net.SplitHostPort(l.Addr)
		if err != nil {
			return node.Identity{}, fmt.Errorf("self-registration: %s address %q: %w", name, l.Addr, err)
		}
		if ip := net.ParseIP(lh); lh == "" || (ip != nil && ip.IsUnspecified()) {
			lh = host
		}
		endpoints[name] = l.Scheme + "://" + net.JoinHostPort(lh, lp)
	}
	env := s.Config.Environment
	id := node.Identity{
		NodeID:       uuid.NewSHA1(selfNamespace, []byte(env+"/"+s.Name+"/"+instance)),
		Name:         self.Name,
		Type:         self.Type,
		Version:      self.Version,
		Endpoints:    endpoints,
		Capabilities: self.Capabilities,
		Role:         self.Role,
		Metadata: registration.NodeMetadata{
			Environment: &env,
			Description: ptr("ONEX fleet service " + s.Name + " (instance " + instance + ")"),
		},
	}
	if err := id.Validate(); err != nil {
		return node.Identity{}, fmt.Errorf("self-registration: %w", err)
	}
	return id, nil
}

func ptr[T any](v T) *T { return &v }

// SelfRegistration is a Component that, once the service is ready,
// registers this instance as an ONEX node and keeps it registered
// (heartbeats, acks, answers to re-introspection) until ctx is done. It
// never fails the service: a registry that is down delays registration,
// it does not stop the service's work.
func (s *Service) SelfRegistration(self Self) Component {
	return func(ctx context.Context) error {
		if v, ok := os.LookupEnv(EnvSelfRegistration); ok && strings.EqualFold(strings.TrimSpace(v), "false") {
			s.Log.Info("self-registration off", "env", EnvSelfRegistration)
			return nil
		}
		id, err := s.SelfIdentity(self, os.LookupEnv)
		if err != nil {
			s.Log.Error("self-registration disabled: bad identity", "error", infraerr.SanitizeError(err))
			return nil
		}
		interval := node.DefaultHeartbeatInterval
		if v := strings.TrimSpace(os.Getenv(EnvNodeHeartbeat)); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				s.Log.Warn("ignoring invalid heartbeat interval", "env", EnvNodeHeartbeat, "value", v)
			} else {
				interval = d
			}
		}
		// Register only once ready: a node in the registry should be able to
		// do its work.
		for !s.Health.Ready() {
			if !retry.Sleep(ctx, 200*time.Millisecond) {
				return nil
			}
		}
		log := s.Log.With("node_id", id.NodeID)
		log.Info("registering this instance as an ONEX node", "node_type", id.Type, "health", id.Endpoints["health"])
		cfg := node.Config{
			Brokers:           bus.ParseBrokers(s.Config.KafkaBootstrap),
			Environment:       s.Config.Environment,
			Namespace:         s.Config.TopicNamespace,
			HeartbeatInterval: interval,
			ClientID:          s.Name + "-node",
			Logger:            log,
			OnTransition: func(_ uuid.UUID, from, to node.Status) {
				log.Info("self-registration", "from", from, "to", to)
			},
		}
		opts := node.Options{Load: processLoad}
		for attempt := 0; ; attempt++ {
			err := node.Run(ctx, cfg, id, opts)
			if ctx.Err() != nil {
				return nil
			}
			if err == nil {
				err = errors.New("node client stopped")
			}
			log.Warn("self-registration: node client stopped; restarting", "error", infraerr.SanitizeError(err))
			if !retry.Sleep(ctx, min(time.Duration(attempt+1)*time.Second, 30*time.Second)) {
				return nil
			}
		}
	}
}

// processLoad reports the process's memory in heartbeats.
func processLoad() node.Load {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mb := float64(ms.Sys) / (1 << 20)
	return node.Load{MemoryUsageMB: &mb}
}
