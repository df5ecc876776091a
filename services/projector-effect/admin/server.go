package admin

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/omninode/onex-fleet/pkg/envelope"
	"github.com/omninode/onex-fleet/pkg/infraerr"
	"github.com/omninode/onex-fleet/pkg/operator"
	registryv1 "github.com/omninode/onex-fleet/proto/onex/registry/v1"
)

// Sender publishes records and returns once the broker acknowledged them
// (bus.Producer).
type Sender interface {
	Send(ctx context.Context, msgs ...*sarama.ProducerMessage) error
}

// Outcomes of a command (label outcome of onex_projector_admin_commands_total).
const (
	OutcomePublished   = "published"
	OutcomeInvalid     = "invalid"
	OutcomeUnavailable = "unavailable"
)

// Metrics counts the commands.
type Metrics struct {
	Commands *prometheus.CounterVec
}

// NewMetrics registers the admin series on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{Commands: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "onex_projector_admin_commands_total",
		Help: "Operator commands received over gRPC, by command (deregister, evict) and outcome (published, invalid, unavailable)."},
		[]string{"command", "outcome"})}
	if reg != nil {
		reg.MustRegister(m.Commands)
	}
	return m
}

// Server implements registryv1.AdminServiceServer. It has no producer until
// Attach (the projector connects to Kafka after its gRPC server is up), and
// none after Detach: calls then fail with UNAVAILABLE.
type Server struct {
	registryv1.UnimplementedAdminServiceServer
	topic, source string
	log           *slog.Logger
	metrics       *Metrics
	now           func() time.Time

	// mu is held for reading across a send, so that Detach waits for the
	// sends in flight before the producer is closed under them.
	mu     sync.RWMutex
	sender Sender
}

// New returns a server publishing on topic with the bus environment source.
func New(topic, source string, m *Metrics, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	return &Server{topic: topic, source: source, log: log, metrics: m, now: time.Now}
}

// Register adds the service to g.
func (s *Server) Register(g *grpc.Server) { registryv1.RegisterAdminServiceServer(g, s) }

// Attach gives the server its producer.
func (s *Server) Attach(p Sender) {
	s.mu.Lock()
	s.sender = p
	s.mu.Unlock()
}

// Detach takes the producer away, once the sends in flight have returned.
func (s *Server) Detach() { s.Attach(nil) }

func invalid(field, msg string) error {
	return status.Errorf(codes.InvalidArgument, "%s: %s", field, msg)
}

// requestedBy is who asked: the request's requested_by, else the caller's
// address.
func requestedBy(ctx context.Context, given string) string {
	if by := strings.TrimSpace(given); by != "" {
		return by
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return "grpc:" + p.Addr.String()
	}
	return "grpc:unknown"
}

// DeregisterNode implements AdminService.DeregisterNode.
func (s *Server) DeregisterNode(ctx context.Context, req *registryv1.DeregisterNodeRequest) (*registryv1.OperatorCommandResponse, error) {
	id, err := uuid.Parse(strings.TrimSpace(req.GetNodeId()))
	if err != nil || id == uuid.Nil {
		s.metrics.Commands.WithLabelValues(string(operator.Deregister), OutcomeInvalid).Inc()
		return nil, invalid("node_id", "not a node UUID")
	}
	return s.publish(ctx, &operator.Command{CommandID: uuid.New(), Command: operator.Deregister, NodeID: &id,
		Reason: strings.TrimSpace(req.GetReason()), RequestedBy: requestedBy(ctx, req.GetRequestedBy()),
		RequestedAt: envelope.Time{Time: s.now().UTC().Truncate(time.Microsecond)}})
}

// EvictableStates are the enum values EvictNodes takes
// (operator.EvictableStates).
func EvictableStates() []registryv1.RegistrationState {
	var out []registryv1.RegistrationState
	for _, st := range operator.EvictableStates {
		out = append(out, registryv1.RegistrationState(registryv1.RegistrationState_value["REGISTRATION_STATE_"+strings.ToUpper(st)]))
	}
	return out
}

func stateNames(sts []registryv1.RegistrationState) string {
	names := make([]string, len(sts))
	for i, st := range sts {
		names[i] = strings.TrimPrefix(st.String(), "REGISTRATION_STATE_")
	}
	return strings.Join(names, ", ")
}

// EvictNodes implements AdminService.EvictNodes.
func (s *Server) EvictNodes(ctx context.Context, req *registryv1.EvictNodesRequest) (*registryv1.OperatorCommandResponse, error) {
	refuse := func(field, msg string) (*registryv1.OperatorCommandResponse, error) {
		s.metrics.Commands.WithLabelValues(string(operator.Evict), OutcomeInvalid).Inc()
		return nil, invalid(field, msg)
	}
	evictable := EvictableStates()
	if req.GetState() == registryv1.RegistrationState_REGISTRATION_STATE_UNSPECIFIED {
		return refuse("state", "required, one of "+stateNames(evictable))
	}
	if !slices.Contains(evictable, req.GetState()) {
		return refuse("state", fmt.Sprintf("%s cannot be evicted; one of %s", req.GetState(), stateNames(evictable)))
	}
	state := strings.ToLower(strings.TrimPrefix(req.GetState().String(), "REGISTRATION_STATE_"))
	d := req.GetOlderThan()
	switch {
	case d == nil:
		return refuse("older_than", "required")
	case d.CheckValid() != nil:
		return refuse("older_than", "not a valid duration")
	case d.GetSeconds() < 0 || d.GetNanos() < 0:
		return refuse("older_than", "must be at least 0")
	case d.GetNanos() != 0:
		return refuse("older_than", "whole seconds only")
	}
	secs := d.GetSeconds()
	return s.publish(ctx, &operator.Command{CommandID: uuid.New(), Command: operator.Evict, State: &state, OlderThanSeconds: &secs,
		Reason: strings.TrimSpace(req.GetReason()), RequestedBy: requestedBy(ctx, req.GetRequestedBy()),
		RequestedAt: envelope.Time{Time: s.now().UTC().Truncate(time.Microsecond)}})
}

// publish validates c, publishes it and waits for the broker's ack.
func (s *Server) publish(ctx context.Context, c *operator.Command) (*registryv1.OperatorCommandResponse, error) {
	log := s.log.With(commandAttrs(c)...)
	kind := string(c.Command)
	if err := c.Validate(); err != nil {
		s.metrics.Commands.WithLabelValues(kind, OutcomeInvalid).Inc()
		log.Info("operator command refused", "error", err.Error())
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	msg, corr, err := Record(s.topic, s.source, c, uuid.Nil)
	if err != nil {
		s.metrics.Commands.WithLabelValues(kind, OutcomeInvalid).Inc()
		log.Info("operator command refused", "error", err.Error())
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	log = log.With("correlation_id", corr.String())
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.sender == nil {
		s.metrics.Commands.WithLabelValues(kind, OutcomeUnavailable).Inc()
		log.Warn("operator command not published: not connected to Kafka")
		return nil, status.Error(codes.Unavailable, "not connected to Kafka (starting or stopping); nothing was published")
	}
	if err := s.sender.Send(ctx, msg); err != nil {
		s.metrics.Commands.WithLabelValues(kind, OutcomeUnavailable).Inc()
		safe := infraerr.SanitizeError(err)
		log.Warn("operator command not published", "error", safe)
		return nil, status.Errorf(codes.Unavailable, "publish to %s failed, nothing was published: %s", s.topic, safe)
	}
	s.metrics.Commands.WithLabelValues(kind, OutcomePublished).Inc()
	log.Info("operator command published", "topic", s.topic, "partition", msg.Partition, "offset", msg.Offset)
	return &registryv1.OperatorCommandResponse{CommandId: c.CommandID.String(), CorrelationId: corr.String(), Topic: s.topic}, nil
}

// commandAttrs are the log attributes of a command.
func commandAttrs(c *operator.Command) []any {
	attrs := []any{"command", string(c.Command), "command_id", c.CommandID.String(), "requested_by", c.RequestedBy, "reason", c.Reason}
	if c.NodeID != nil {
		attrs = append(attrs, "node_id", c.NodeID.String())
	}
	if c.State != nil {
		attrs = append(attrs, "state", *c.State)
	}
	if c.OlderThanSeconds != nil {
		attrs = append(attrs, "older_than", c.OlderThan().String())
	}
	return attrs
}
